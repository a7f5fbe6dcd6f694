"""What the parser extracts from one raw mail: plain data, no behaviour beyond (de)serialising summaries."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any


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
    account_ids: list[str] = field(default_factory=list)  # 12-digit IDs, subject first, then body
    case_id: str | None = None  # AWS support case ID (10 or 15 digits)
    verdicts: Verdicts = field(default_factory=Verdicts)
    ses_received: bool = False  # SES's receipt block was found on top
    size: int = 0  # bytes of the raw message
    truncated: bool = False  # only the first MAX_PARSED_BYTES were read (a very large mail)
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
        """Every field but the body text, JSON-serialisable (small enough for a Step Functions payload)."""
        return {
            "message_id": self.message_id,
            "sender": self.sender,
            "sender_name": self.sender_name,
            "sender_domain": self.sender_domain,
            "from_addresses": list(self.from_addresses),
            "other_senders": list(self.other_senders),
            "subject": self.subject,
            "date": self.date,
            "envelope_recipient": self.envelope_recipient,
            "recipients": list(self.recipients),
            "account_ids": list(self.account_ids),
            "case_id": self.case_id,
            "verdicts": self.verdicts.to_dict(),
            "ses_received": self.ses_received,
            "size": self.size,
            "truncated": self.truncated,
            "problems": list(self.problems),
        }

    @classmethod
    def from_summary(cls, summary: dict[str, Any], text: str = "") -> ParsedMail:
        """The inverse of `to_summary`; the body text is not in a summary, so it is passed separately."""
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
            account_ids=[str(a) for a in summary.get("account_ids") or []],
            case_id=_str_or_none(summary.get("case_id")),
            verdicts=Verdicts.from_dict(summary.get("verdicts")),
            ses_received=bool(summary.get("ses_received", False)),
            size=int(summary.get("size") or 0),
            truncated=bool(summary.get("truncated")),
            problems=[str(p) for p in summary.get("problems") or []],
        )


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
