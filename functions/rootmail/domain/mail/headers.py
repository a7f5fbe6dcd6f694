"""Header values as mail writes them: unfolding, RFC 2047 encoded words, Message-IDs, dates, mailboxes and
recipients, each with a fast path for the common form and the stdlib for the rest.
"""

from __future__ import annotations

import binascii
import re
from datetime import UTC, datetime, timedelta, timezone
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

from rootmail.domain.mail.charsets import decode_bytes
from rootmail.domain.mail.model import ParsedMail

# ----------------------------------------------------------------------------------------------------
# Headers

_FOLD = re.compile(r"\r?\n(?=[ \t])|\r?\n$")
_BARE_NEWLINE = re.compile(r"\n(?![ \t])")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_ANGLE_ID = re.compile(r"<([^<>\s]+)>")
# A run of address characters with an @ inside, from the start of the run: what a findall of the pattern less its
# lookbehind finds, in linear time (without it, each position of a long run with no @ was tried to the run's end).
_ADDRESS_TOKEN = re.compile(r"(?<![^\s<>\"(),;:@\[\]\\])[^\s<>\"(),;:@\[\]\\]+@[^\s<>\"(),;:@\[\]\\]+")
# Each pattern is written twice: case-insensitive, and as the lowercase pattern less its leading \b that
# `_search_lowered` uses on ASCII values (re can skip ahead to a literal prefix, but not under IGNORECASE or
# after a \b). Their matches are only ever read lowercased.
_SES_RECEIVED = re.compile(r"\bby\s+inbound-smtp\.[a-z0-9-]+\.amazonaws\.com\b", re.IGNORECASE)
_SES_RECEIVED_LOWER = re.compile(r"by\s+inbound-smtp\.[a-z0-9-]+\.amazonaws\.com\b")
_ENVELOPE_FOR = re.compile(r"\bfor\s+<?([^\s<>;]+@[^\s<>;]+?)>?\s*;", re.IGNORECASE)
_ENVELOPE_FOR_LOWER = re.compile(r"for\s+<?([^\s<>;]+@[^\s<>;]+?)>?\s*;")
_COMMENT = re.compile(r"\([^()]*\)")
# A result, `; method=result properties`: from a `;` to the next, which none of its parts can hold.
_RESULT = re.compile(r";\s*([A-Za-z0-9_.-]+)\s*=\s*([A-Za-z_]+)([^;]*)")
_PROPERTY = re.compile(r"([A-Za-z0-9_.-]+)\s*=\s*([^\s;]+)")
_VERDICT = re.compile(r"\s*([A-Za-z_]+)")
_CONTROLS = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")

_SES_VERDICT_HEADERS = ("x-ses-spam-verdict", "x-ses-virus-verdict")
# The envelope sender, whose local part may be quoted (`"a@b c"@example.com`, spaces and `;` included): its domain
# is what follows the quoted string, never an `@` inside it.
_MAILBOX = r'((?:"(?:[^"\\\r\n]|\\.)*"|[^\s<>;"])+)'
_ENVELOPE_FROM = re.compile(rf"\b(?:envelope-from|smtp\.mailfrom)\s*=\s*<?{_MAILBOX}", re.IGNORECASE)
# Written twice, as _SES_RECEIVED is.
_ENVELOPE_FROM_LOWER = re.compile(rf"(?:envelope-from|smtp\.mailfrom)\s*=\s*<?{_MAILBOX}")
# SES refuses to send a From address its account has not verified: mail whose envelope sender is SES's own
# bounce domain passed SPF only if the From identity was verified by its sender, so it counts as aligned.
_SES_SENDING_DOMAINS = ("amazonses.com",)


def unfold(value: str) -> str:
    if "\n" not in value:
        return value
    if _BARE_NEWLINE.search(value) is None:
        # Every line break is followed by a space or tab, as in any header the parser read: what _FOLD removes
        # is then exactly every line break, and str.replace does that many times faster.
        return value.replace("\r\n", "").replace("\n", "") if "\r" in value else value.replace("\n", "")
    return _FOLD.sub("", value)


def _search_lowered(pattern: re.Pattern[str], lowered: re.Pattern[str], value: str) -> re.Match[str] | None:
    """`pattern.search(value)`, where `pattern` is `lowered` made case-insensitive, after a word boundary.

    On an ASCII value, that is `lowered` searching the value lowercased, where a word boundary before the match's
    first (word) character means no word character before it. The match is then one of the lowercased value."""
    if not value.isascii():
        return pattern.search(value)  # non-ASCII case folding (K and KELVIN SIGN...) is the engine's business
    text = value.lower()
    pos = 0
    while (match := lowered.search(text, pos)) is not None:
        start = match.start()
        if start == 0 or not (text[start - 1].isalnum() or text[start - 1] == "_"):
            return match
        pos = start + 1
    return None


def _has_surrogates(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _clean(value: str) -> str:
    """Undecoded 8-bit bytes (the parser keeps them as surrogates) as UTF-8 or U+FFFD: always valid text."""
    if value.isascii():  # most text; a flag of the string, where encoding it to look for surrogates copies it
        return value
    if _has_surrogates(value):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return value


def one_line(value: str) -> str:
    """Header text as one line: decoded values may hold CR/LF or other controls, which never belong there."""
    return _CONTROLS.sub(" ", _clean(value)).strip()


def decode_header_text(value: str, problems: list[str]) -> str:
    """An unstructured header value: raw 8-bit or ISO-2022-JP bytes and RFC 2047 encoded words decoded."""
    value = unfold(value)
    if not value.isascii() or "\x1b" in value:
        try:
            raw = value.encode("ascii", "surrogateescape")
        except UnicodeEncodeError:
            raw = value.encode("utf-8", "surrogateescape")
        value = decode_bytes(raw, None, problems)
    if "=?" not in value:
        return value
    out: list[str] = []
    # [charset, bytearray] of the encoded word(s) being collected (bytes, made anew by each +=, were quadratic)
    pending: list[Any] = []
    pos = 0

    def flush() -> None:
        if pending:
            out.append(decode_bytes(bytes(pending[1]), pending[0], problems))
            pending.clear()

    for match in _ENCODED_WORD.finditer(value):
        between = value[pos : match.start()]
        charset, encoding, data = match.groups()
        charset = charset.split("*", 1)[0]  # RFC 2231 language suffix
        decoded = _decode_encoded_word(encoding, data)
        if decoded is None:  # not really an encoded word: keep it as written
            flush()
            out.append(value[pos : match.end()])
            pos = match.end()
            continue
        if between and not (between.isspace() and pending):
            flush()
            out.append(between)
        # Adjacent words in one charset are joined before decoding: senders split multibyte characters.
        if pending and pending[0].lower() == charset.lower():
            pending[1] += decoded
        else:
            flush()
            pending.extend((charset, bytearray(decoded)))
        pos = match.end()
    flush()
    out.append(value[pos:])
    return "".join(out)


def _decode_encoded_word(encoding: str, data: str) -> bytes | None:
    try:
        if encoding in "bB":
            data = data.strip()
            return binascii.a2b_base64(data + "=" * (-len(data) % 4))
        return binascii.a2b_qp(data.encode("ascii"), header=True)
    except (binascii.Error, ValueError):
        return None


def message_id_of(value: str, problems: list[str]) -> str | None:
    value = _clean(unfold(value)).strip()
    match = _ANGLE_ID.search(value)
    if match:
        return match.group(1)
    token = value.strip("<> \t")
    problems.append("invalid header: Message-ID")
    return token if token and " " not in token else None


# The date as nearly every mail writes it: `Mon, 20 Apr 2026 06:12:05 +0000`, maybe a comment after it. For these,
# what parsedate_to_datetime reads is plain to see (anything after the zone is ignored there too); it costs
# more than the rest of the header's handling. Every other form goes to parsedate_to_datetime.
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, 1)}
_PLAIN_DATE = re.compile(
    rf"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?([0-9]{{1,2}}) ({'|'.join(_MONTH_NAMES)}) "
    r"([1-9][0-9]{3}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})(?:[ \t].*)?",
    re.DOTALL,
)


def _parse_date(value: str) -> datetime:
    """parsedate_to_datetime(value), faster for the plain form; raises as it does on invalid fields.

    "-0000" (no zone: a naive datetime from parsedate_to_datetime) comes back as UTC, as `iso_date` reads it."""
    match = _PLAIN_DATE.fullmatch(value)
    if match is None:
        return parsedate_to_datetime(value)
    day, month, year, hour, minute, second, sign, zone_hours, zone_minutes = match.groups()
    offset = int(zone_hours) * 3600 + int(zone_minutes) * 60
    zone = timezone(timedelta(seconds=-offset if sign == "-" else offset)) if offset else UTC
    return datetime(int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second), tzinfo=zone)


def iso_date(value: str, problems: list[str]) -> str | None:
    try:
        parsed = _parse_date(unfold(value).strip())
    except Exception:  # ValueError, TypeError, IndexError ... depending on the garbage and Python version
        parsed = None
    if parsed is None:
        problems.append("invalid header: Date")
        return None
    if parsed.tzinfo is None:  # "-0000" or no zone: RFC 5322 says UTC-ish, which is the best guess there is
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC).isoformat()
    except (ValueError, OverflowError):
        problems.append("invalid header: Date")
        return None


# Mailboxes as nearly every mail writes them: `addr@example.com`, `<addr@example.com>`, `Some Name <addr@...>`,
# `"Some Name" <addr@...>`, comma-separated. For these, what getaddresses returns is plain to see, and it costs
# more than the rest of a header's handling: every other form goes to getaddresses.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_DOT_ATOM = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_WORD = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+"  # a phrase's atom may hold dots
_PLAIN_MAILBOX = re.compile(
    rf"[ \t]*(?:(?P<addr>{_DOT_ATOM}@{_DOT_ATOM})"
    rf"|(?:(?P<phrase>{_WORD}(?:[ \t]+{_WORD})*)|\"(?P<quoted>[ !#-\[\]-~]*)\")?"
    rf"[ \t]*<(?P<angle>{_DOT_ATOM}@{_DOT_ATOM})>)[ \t]*"
)


def _plain_mailboxes(value: str) -> list[tuple[str, str]] | None:
    """What getaddresses([value]) gives for a list of plain mailboxes; None for any other value."""
    found = []
    pos = 0
    while (match := _PLAIN_MAILBOX.match(value, pos)) is not None:
        addr, phrase, quoted, angle = match.group("addr", "phrase", "quoted", "angle")
        found.append((addr, "") if addr else (angle, " ".join(phrase.split()) if phrase else quoted or ""))
        pos = match.end()
        if pos == len(value):
            return found
        if value[pos] != ",":
            return None
        pos += 1
    return None


def _mailboxes(values: list[str]) -> list[tuple[str, str]]:
    """(addr-spec, raw display name) of every mailbox in the given address header values."""
    unfolded = [unfold(v) for v in values]
    # getaddresses joins the values with commas: plain lists joined are a plain list.
    plain = [_plain_mailboxes(v) for v in unfolded]
    if all(p is not None for p in plain):
        return [mailbox for p in plain for mailbox in p or ()]
    try:
        return [(addr, name) for name, addr in getaddresses(unfolded)]
    except Exception:  # the address parsers have had crash bugs on hostile input
        return []


def parse_from(mail: ParsedMail, raw_from: list[str], problems: list[str]) -> None:
    addresses: list[str] = []
    name = ""
    # Each From header line counts on its own: two identical From lines are two From headers, not one.
    for value in raw_from:
        found: dict[str, None] = {}
        unfolded = unfold(value)
        plain = _plain_mailboxes(unfolded)
        for addr_spec, display in _mailboxes([value]) if plain is None else plain:
            addr = _clean(addr_spec).strip().lower().rstrip(".")
            if "@" in addr:
                found.setdefault(addr, None)
                name = name or display
        # Parsers disagree on malformed From headers (`a@amazon.com)<b@evil.com>` was one address to some Python
        # versions, CVE-2023-27043): every address-like token counts, so such a header yields several addresses.
        # In a list of plain mailboxes, the address-like tokens are its addresses, unless a quoted name holds an @.
        if plain is None or any("@" in display for _, display in plain):
            for token in _ADDRESS_TOKEN.findall(_clean(unfolded)):
                found.setdefault(token.lower().rstrip("."), None)
        addresses.extend(found)
    mail.from_addresses = addresses
    if not mail.from_addresses:
        present = any(v.strip() for v in raw_from)
        problems.append("invalid header: From" if present else "missing header: From")
        return
    if len(mail.from_addresses) > 1:
        problems.append(f"several From addresses: {', '.join(mail.from_addresses)}")
    mail.sender = mail.from_addresses[0]
    mail.sender_domain = mail.sender.rpartition("@")[2] or None
    mail.sender_name = one_line(decode_header_text(name, problems)) or None


def recipients_of(raw_values: list[str]) -> list[str]:
    if not raw_values:  # as for most Sender/Resent-* headers
        return []
    found: dict[str, None] = {}
    for addr_spec, _ in _mailboxes(raw_values):
        addr = _clean(addr_spec).strip().lower()
        if "@" in addr:
            found.setdefault(addr, None)
    return list(found)
