"""What the parser extracts from one raw mail: plain data, no behaviour beyond (de)serialising summaries."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

# A summary travels in Step Functions state, which AWS caps at 256 KB (as UTF-8 JSON) with an error no Catch can
# handle. Each field has a budget in bytes of its JSON encoding (`json_cost`: escaped, the worst way it can be
# written), so a summary of any mail stays under `MAX_SUMMARY_BYTES`, however hostile its headers.
MAX_SUMMARY_BYTES = 32 * 1024
_BUDGET = {
    "message_id": 512,
    "sender": 320,
    "sender_name": 256,
    "sender_domain": 320,
    "subject": 2048,
    "date": 64,
    "envelope_recipient": 320,
    "case_id": 32,
    "verdict": 32,
    "address": 320,  # each entry of the address lists
    "problem": 320,  # each problem
}
MAX_ADDRESSES = 10  # entries kept of each address list (From, Sender/Resent, To/Cc): only shown to operators
MAX_ACCOUNT_IDS = 100  # entries kept of each account ID list (12 digits each)
MAX_PROBLEMS = 20


@dataclass(frozen=True)
class Verdicts:
    """SES's receipt verdicts, uppercased as SES writes them ("PASS", "FAIL", "GRAY", ...); None when absent.

    Only ever filled from the header block SES put on top of the message: copies lower down are the sender's.
    """

    spam: str | None = None
    virus: str | None = None
    spf: str | None = None
    dkim: str | None = None
    dmarc: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Verdicts:
        data = data or {}
        names = ("spam", "virus", "spf", "dkim", "dmarc")
        return cls(**{name: _str_or_none(data.get(name)) for name in names})


@dataclass
class ParsedMail:
    message_id: str | None = None  # without angle brackets
    sender: str | None = None  # the From: addr-spec, lowercased
    sender_name: str | None = None  # the From: display name
    sender_domain: str | None = None  # lowercased domain of `sender`
    from_addresses: list[str] = field(default_factory=list)  # every address in every From: header
    # Every address in Sender:, Resent-From: and Resent-Sender: (a mail relayed or sent on someone's behalf).
    other_senders: list[str] = field(default_factory=list)
    subject: str = ""  # RFC 2047 decoded, "" when missing
    date: str | None = None  # ISO 8601 in UTC
    envelope_recipient: str | None = None  # from SES's own `Received: ... for <addr>;` line, lowercased
    recipients: list[str] = field(default_factory=list)  # To + Cc, lowercased, unique, in order
    text: str = ""  # text/plain part(s), else the HTML converted to text
    # Every other text/plain and text/html part a reader could open (the HTML alternative, text attachments, the
    # text of attached messages), HTML converted, in document order, blank lines between; never in a summary.
    other_text: str = ""
    account_ids: list[str] = field(default_factory=list)  # 12-digit IDs, subject first, then body
    # Those of `account_ids` where AWS lists the accounts a notice concerns (see domain/mail/identifiers.py)
    listed_account_ids: list[str] = field(default_factory=list)
    resource_account_ids: list[str] = field(default_factory=list)  # accounts of ARNs in the text
    account_ids_cut: bool = False  # a summary kept only the first MAX_ACCOUNT_IDS of an account ID list
    case_id: str | None = None  # AWS support case ID (10 or 15 digits)
    verdicts: Verdicts = field(default_factory=Verdicts)
    ses_received: bool = False  # SES's receipt block was found on top
    size: int = 0  # bytes of the raw message
    truncated: bool = False  # only part of the body was read (a very large or intricate mail; see problems)
    problems: list[str] = field(default_factory=list)  # human-readable, empty when none

    def identity(self) -> str | None:
        """The same mail stored twice (SES writing it again under another key) has the same identity: its
        Message-ID, sender, envelope recipient, subject and text. None without a Message-ID or an envelope
        recipient: such a mail is only known by its stored object."""
        if not self.message_id or not self.envelope_recipient:
            return None
        parts = (self.message_id, self.sender or "", self.envelope_recipient or "", self.subject, self.text)
        return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()

    def to_summary(self) -> dict[str, Any]:
        """Every field but the texts, JSON-serialisable and bounded (see `MAX_SUMMARY_BYTES`); what was cut is said
        in `problems`."""
        problems = [fit(p, _BUDGET["problem"]) for p in self.problems[:MAX_PROBLEMS]]
        cut: list[str] = []

        def listed(name: str, values: list[str], keep: int, budget: int) -> list[str]:
            if len(values) > keep:
                cut.append(f"{len(values)} {name}: only the first {keep} kept")
            return [fit(v, budget) for v in values[:keep]]

        def field(name: str, budget: str | None = None) -> str | None:
            value: str | None = getattr(self, name)
            return None if value is None else fit(value, _BUDGET[budget or name])

        summary = {
            "message_id": field("message_id"),
            "sender": field("sender"),
            "sender_name": field("sender_name"),
            "sender_domain": field("sender_domain"),
            "from_addresses": listed(
                "From addresses", self.from_addresses, MAX_ADDRESSES, _BUDGET["address"]
            ),
            "other_senders": listed(
                "Sender/Resent addresses", self.other_senders, MAX_ADDRESSES, _BUDGET["address"]
            ),
            "subject": fit(self.subject, _BUDGET["subject"]),
            "date": field("date"),
            "envelope_recipient": field("envelope_recipient"),
            "recipients": listed("recipients", self.recipients, MAX_ADDRESSES, _BUDGET["address"]),
            "account_ids": listed("account IDs", self.account_ids, MAX_ACCOUNT_IDS, 12),
            "listed_account_ids": listed("listed account IDs", self.listed_account_ids, MAX_ACCOUNT_IDS, 12),
            "resource_account_ids": listed("ARN account IDs", self.resource_account_ids, MAX_ACCOUNT_IDS, 12),
            "case_id": field("case_id"),
            "verdicts": {
                k: None if v is None else fit(v, _BUDGET["verdict"])
                for k, v in self.verdicts.to_dict().items()
            },
            "ses_received": self.ses_received,
            "size": self.size,
            "truncated": self.truncated,
            "problems": problems,
        }
        id_lists = (self.account_ids, self.listed_account_ids, self.resource_account_ids)
        summary["account_ids_cut"] = self.account_ids_cut or any(
            len(ids) > MAX_ACCOUNT_IDS for ids in id_lists
        )
        if len(self.problems) > MAX_PROBLEMS:
            cut.append(f"{len(self.problems) - MAX_PROBLEMS} more problem(s)")
        problems.extend(fit(c, _BUDGET["problem"]) for c in cut)
        return summary

    @classmethod
    def from_summary(cls, summary: dict[str, Any], text: str = "", other_text: str = "") -> ParsedMail:
        """The inverse of `to_summary`; the texts are not in a summary, so they are passed separately."""
        return cls(
            message_id=_str_or_none(summary.get("message_id")),
            sender=_str_or_none(summary.get("sender")),
            sender_name=_str_or_none(summary.get("sender_name")),
            sender_domain=_str_or_none(summary.get("sender_domain")),
            from_addresses=[str(a) for a in summary.get("from_addresses") or []],
            other_senders=[str(a) for a in summary.get("other_senders") or []],
            subject=str(summary.get("subject") or ""),
            date=_str_or_none(summary.get("date")),
            envelope_recipient=_str_or_none(summary.get("envelope_recipient")),
            recipients=[str(a) for a in summary.get("recipients") or []],
            text=text,
            other_text=other_text,
            account_ids=[str(a) for a in summary.get("account_ids") or []],
            listed_account_ids=[str(a) for a in summary.get("listed_account_ids") or []],
            resource_account_ids=[str(a) for a in summary.get("resource_account_ids") or []],
            account_ids_cut=bool(summary.get("account_ids_cut")),
            case_id=_str_or_none(summary.get("case_id")),
            verdicts=Verdicts.from_dict(summary.get("verdicts")),
            ses_received=bool(summary.get("ses_received", False)),
            size=int(summary.get("size") or 0),
            truncated=bool(summary.get("truncated")),
            problems=[str(p) for p in summary.get("problems") or []],
        )


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def json_cost(char: str) -> int:
    """Bytes one character takes in JSON at worst (ASCII-escaped, as json.dumps writes it by default)."""
    code = ord(char)
    if 0x20 <= code < 0x7F:
        return 2 if char in '"\\' else 1
    return 12 if code > 0xFFFF else 6


def may_be_cut(value: str, budget: int) -> bool:
    """Whether `value`, as `fit(…, budget)` left it, may be the start of something longer."""
    return value.endswith("…") and sum(json_cost(c) for c in value) > budget - 12 - json_cost("…")


def subject_may_be_cut(subject: str) -> bool:
    """Whether a mail summary's subject (the ledger's) may be the start of a longer one."""
    return may_be_cut(subject, _BUDGET["subject"])


def fit(value: str, budget: int) -> str:
    """`value`, or its longest start that with a closing "…" fits `budget` bytes of JSON (quotes not counted)."""
    if len(value) * 12 <= budget:
        return value  # fits however it is written
    room = budget - json_cost("…")
    end: int | None = None  # the longest start that fits beside the "…"
    total = 0
    for index, char in enumerate(value):
        total += json_cost(char)
        if end is None and total > room:
            end = index
        if total > budget:
            return value[:end] + "…"
    return value  # fits however it is written
    total = 0
    for index, char in enumerate(value):
        total += json_cost(char)
        if total > budget:
            end = index
            while end and total + 6 > budget:  # room for the "…"
                end -= 1
                total -= json_cost(value[end])
            return value[:end] + "…"
    return value
