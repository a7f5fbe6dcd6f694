"""Raw mail bytes → ParsedMail. Never raises: whatever is wrong with the bytes ends up in `problems`.

The MIME structure comes from the stdlib parser (compat32, splitting parts exactly as policy.default does: see
`_Policy`); header values are then read raw, in order (`raw_items()`), and decoded here. That keeps it fast,
sidesteps header-class bugs (gh-105802: IndexError on odd Message-IDs), keeps the SES block's order visible, and
sends Japanese text through one charset fallback chain, body and subject alike. Only text parts are decoded;
attachments are never touched.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from email.message import Message

from rootmail.domain.mail.body import body_text
from rootmail.domain.mail.headers import (
    decode_header_text,
    iso_date,
    message_id_of,
    one_line,
    parse_from,
    recipients_of,
)
from rootmail.domain.mail.identifiers import find_identifiers
from rootmail.domain.mail.mime import (
    _MALFORMED_MIME_BUDGET,
    _MAX_PARTS,
    MAX_HEADER_CHARS,
    MAX_PARSED_BYTES,
    mime_parser,
    parser_prefix,
)
from rootmail.domain.mail.model import ParsedMail
from rootmail.domain.mail.ses_block import parse_ses_block

# ----------------------------------------------------------------------------------------------------
# The whole mail

# Header fields read: what a mail holds is far fewer; more is hostile.
MAX_HEADERS = 1000
# Characters of address headers read, of each kind (From; To and Cc; Sender and Resent-*), in their order.
MAX_ADDRESS_CHARS = 16 * 1024
# Kept of a parsed mail (its summary for the state machine keeps fewer: domain/mail/model.py).
MAX_PARSED_ACCOUNT_IDS = 1000
MAX_PARSED_PROBLEMS = 50


def parse_mail(raw: bytes) -> ParsedMail:
    """Everything rootmail needs from one raw mail as SES stored it. Never raises."""
    mail = ParsedMail(size=len(raw) if isinstance(raw, bytes | bytearray | memoryview) else 0)
    problems = mail.problems
    if not raw:
        problems.append("empty message")
        return mail
    raw = bytes(raw)
    if len(raw) > MAX_PARSED_BYTES:
        cut = raw.rfind(b"\n", 0, MAX_PARSED_BYTES) + 1 or MAX_PARSED_BYTES
        problems.append(
            f"{len(raw):,} bytes: only the first {MAX_PARSED_BYTES // (1024 * 1024)} MB were read "
            "(the rest is attachments, not needed to triage; the stored mail is kept whole)"
        )
        raw = raw[:cut]
        mail.truncated = True
    cut, why = parser_prefix(raw)
    if why is not None:
        problems.append(f"{why}: only the first {cut:,} bytes were read (the stored mail is kept whole)")
        raw = raw[:cut]
        mail.truncated = True
    parser, mime_budget = mime_parser()
    try:
        msg: Message = parser.parsebytes(raw)
    except Exception as exc:  # not seen in practice; belt and braces for the "never raises" promise
        problems.append(f"unparseable message: {type(exc).__name__}")
        return mail
    headers = _read_headers(msg, problems)
    if not headers:
        problems.append("no headers")
    first: dict[str, str] = {}  # the first value of each header, by lowercased name
    for lname, _, value in headers:
        first.setdefault(lname, value)
    top = first.get("content-type"), first.get("content-disposition")

    def step(what: str, action: Callable[[], None]) -> None:
        try:
            action()
        except Exception as exc:  # one broken piece must not cost the others
            problems.append(f"failed to read {what}: {type(exc).__name__}")

    def read_body() -> None:
        mail.text, mail.other_text, cut = body_text(msg, problems, top, parser)
        mail.truncated = mail.truncated or cut

    step("headers", lambda: _parse_headers(mail, headers, first, problems))
    step("SES block", lambda: parse_ses_block(mail, headers, problems))
    step("body", read_body)
    if not mail.text and headers:
        problems.append("no text body")
    if mime_budget.refused:
        problems.append(
            f"malformed MIME headers past the first {_MALFORMED_MIME_BUDGET:,} characters read as written"
        )
    step("identifiers", lambda: _parse_identifiers(mail, problems))
    step("MIME structure", lambda: _record_defects(msg, problems))
    mail.problems = _listed(problems)
    return mail


def _read_headers(msg: Message, problems: list[str]) -> list[tuple[str, str, str]]:
    """The mail's header fields as (lowercased name, name, value), within MAX_HEADERS and MAX_HEADER_CHARS."""
    items = msg.raw_items()
    if len(msg) > MAX_HEADERS:
        problems.append(f"{len(msg):,} header fields: only the first {MAX_HEADERS:,} read")
        items = itertools.islice(items, MAX_HEADERS)
    headers = []
    for name, value in items:
        if len(value) > MAX_HEADER_CHARS:
            problems.append(f"{name[:40]} header of {len(value):,} characters cut to {MAX_HEADER_CHARS:,}")
            value = value[:MAX_HEADER_CHARS].rstrip("\r\n")
        headers.append((name.lower(), name, value))
    return headers


def _listed(problems: list[str]) -> list[str]:
    """Problems quote bytes from the mail (charset names, addresses): valid, short, once each, and not too many."""
    listed = list(dict.fromkeys(one_line(p)[:300] for p in problems))
    if len(listed) > MAX_PARSED_PROBLEMS:
        listed[MAX_PARSED_PROBLEMS - 1 :] = [f"{len(listed) - MAX_PARSED_PROBLEMS + 1:,} more problems"]
    return listed


# Address headers, by what they are: From; recipients; other senders.
_ADDRESS_HEADERS = {"from": 0, "to": 1, "cc": 1, "sender": 2, "resent-from": 2, "resent-sender": 2}
_ADDRESS_KINDS = ("From", "To and Cc", "Sender and Resent-*")


def _parse_headers(
    mail: ParsedMail, headers: list[tuple[str, str, str]], first: dict[str, str], problems: list[str]
) -> None:
    raw: tuple[list[str], list[str], list[str]] = ([], [], [])
    read = [0, 0, 0]  # characters, by kind
    for lname, _, value in headers:  # one dict lookup per header: most are none of these
        if (kind := _ADDRESS_HEADERS.get(lname)) is not None:
            left = MAX_ADDRESS_CHARS - read[kind]
            # Past the budget, or cut by _read_headers (maybe in the middle of an address): whole mailboxes only,
            # up to the last comma that fits (a part of an address would be read as an address of its own).
            if len(value) > left or len(value) >= MAX_HEADER_CHARS:
                problems.append(
                    f"{_ADDRESS_KINDS[kind]} headers of more than {MAX_ADDRESS_CHARS:,} characters: the rest not read"
                )
                comma = value.rfind(",", 0, left)
                value = value[:comma] if comma > 0 else "" if raw[kind] else value[:left]
            read[kind] += len(value)
            if value:
                raw[kind].append(value)
    raw_from, raw_recipients, raw_other_senders = raw
    if "message-id" in first:
        mail.message_id = message_id_of(first["message-id"], problems)
    else:
        problems.append("missing header: Message-ID")
    if "subject" in first:
        mail.subject = one_line(decode_header_text(first["subject"], problems))
    else:
        problems.append("missing header: Subject")
    if "date" in first:
        mail.date = iso_date(first["date"], problems)
    else:
        problems.append("missing header: Date")
    parse_from(mail, raw_from, problems)
    mail.recipients = recipients_of(raw_recipients)
    mail.other_senders = recipients_of(raw_other_senders)


def _parse_identifiers(mail: ParsedMail, problems: list[str]) -> None:
    found = find_identifiers(mail.subject, mail.text)
    if len(found.account_ids) > MAX_PARSED_ACCOUNT_IDS:
        problems.append(
            f"{len(found.account_ids):,} account IDs: only the first {MAX_PARSED_ACCOUNT_IDS:,} kept"
        )
    mail.account_ids = list(found.account_ids[:MAX_PARSED_ACCOUNT_IDS])
    mail.listed_account_ids = list(found.listed_account_ids[:MAX_PARSED_ACCOUNT_IDS])
    mail.resource_account_ids = list(found.resource_account_ids[:MAX_PARSED_ACCOUNT_IDS])
    mail.case_id = found.case_id


def _record_defects(msg: Message, problems: list[str]) -> None:
    for part in _walk_limited(msg):
        for defect in part.defects:
            problems.append(f"MIME defect: {type(defect).__name__}")


def _walk_limited(msg: Message) -> Iterator[Message]:
    stack = [msg]
    seen = 0
    while stack and seen < _MAX_PARTS:
        part = stack.pop()
        seen += 1
        yield part
        payload = part.get_payload() if part.is_multipart() else None
        if isinstance(payload, list):
            stack.extend(child for child in reversed(payload) if isinstance(child, Message))
