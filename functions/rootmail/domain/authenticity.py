"""Is a mail really from AWS? The sender domain allowlist plus the verdicts SES wrote on top of the mail."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rootmail.domain.mail import ParsedMail

DEFAULT_AWS_SENDER_DOMAINS: tuple[str, ...] = (
    "amazon.com",
    "amazonaws.com",
    "aws.com",
    "signin.aws",
    "support.aws.com",
    "marketplace.aws",
)


@dataclass(frozen=True)
class Authenticity:
    authentic: bool
    reasons: list[str] = field(default_factory=list)  # every failed condition; empty when authentic

    def to_dict(self) -> dict[str, object]:
        return {"authentic": self.authentic, "reasons": list(self.reasons)}


def domain_allowed(domain: str | None, allowed_domains: Sequence[str]) -> bool:
    """An allowed domain or a subdomain of one, on a dot boundary (evilamazon.com is not amazon.com)."""
    if not domain:
        return False
    domain = domain.lower().rstrip(".")
    for allowed in allowed_domains:
        allowed = allowed.strip().lower().strip(".")
        if allowed and (domain == allowed or domain.endswith("." + allowed)):
            return True
    return False


def assess(mail: ParsedMail, allowed_domains: Sequence[str] = DEFAULT_AWS_SENDER_DOMAINS) -> Authenticity:
    reasons: list[str] = []
    if not mail.from_addresses:
        reasons.append("no From address")
    elif len(mail.from_addresses) > 1:
        reasons.append(f"{len(mail.from_addresses)} From addresses, expected exactly one")
    if not domain_allowed(mail.sender_domain, allowed_domains):
        reasons.append(f"sender domain {mail.sender_domain or '(none)'} is not an allowed AWS sender domain")
    for other in mail.other_senders:
        # Sent on behalf of, or relayed by, someone else: only an AWS sender may stand behind an AWS From.
        if not domain_allowed(other.rpartition("@")[2], allowed_domains):
            reasons.append(f"Sender/Resent-From {other} is not an allowed AWS sender")
    if not mail.ses_received:
        reasons.append("no SES receipt block on top of the message")
    v = mail.verdicts
    if v.spam != "PASS":
        reasons.append(f"SES spam verdict is {v.spam or 'missing'}, not PASS")
    if v.virus != "PASS":
        reasons.append(f"SES virus verdict is {v.virus or 'missing'}, not PASS")
    if v.spf != "PASS" and v.dkim != "PASS":
        reasons.append(f"neither SPF nor DKIM passed (spf={v.spf or 'missing'}, dkim={v.dkim or 'missing'})")
    # GRAY (and other non-FAIL results) are accepted: SES marks legitimate mail GRAY at times.
    if v.dkim == "FAIL":
        reasons.append("DKIM failed")
    if v.dmarc == "FAIL":
        reasons.append("DMARC failed")
    return Authenticity(authentic=not reasons, reasons=reasons)
