"""Is a mail really from AWS? The sender domain allowlist plus the verdicts SES wrote on top of the mail."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rootmail.domain.mail.model import ParsedMail
from rootmail.domain.suffixes import shared_suffix_reason

# Exactly the domains AWS sends mail to root addresses from. An entry allows that domain only, never the names
# under it: AWS's customers own names under amazonaws.com (EC2 and ELB hosts, S3 buckets...), and can have SES
# send from an address there once they verified it. An entry must be a domain of its own by the Public Suffix
# List (config.py refuses others at load, `assess` refuses them all the same).
DEFAULT_AWS_SENDER_DOMAINS: tuple[str, ...] = (
    # no-reply-aws@ (support cases, account and SES sending-status mail, older Health and password mail),
    # aws-account-notifications@ (suspension), ec2-abuse@ (older abuse reports)
    "amazon.com",
    # AWS Accounts Receivable, per seller: aws-receivables-support@, aws-jp-receivables-support@... (payments)
    "email.amazon.com",
    # health@ (AWS Health and its managed notifications), notifications@ (aggregated copies), invoicing@ (bills)
    "aws.com",
    # trustandsafety@ (abuse reports)
    "support.aws.com",
    # no-reply@ (MFA deactivated, compromised-account notices)
    "amazonaws.com",
    # freetier@ (Free Tier usage alerts), budgets@ (AWS Budgets alerts)
    "costalerts.amazonaws.com",
    # no-reply@ (sign-in verification codes)
    "signin.aws",
    # password-reset-no-reply@, recover-mfa-no-reply@, no-reply@ (root e-mail change codes)
    "verify.signin.aws",
    # no-reply@ (AWS Marketplace offers and subscriptions)
    "marketplace.aws",
)
# Not listed: sns.amazonaws.com (SNS topic mail says what any AWS account publishes), amazon.co.jp and the other
# retail domains (no AWS mail to root addresses seen from them). ROOTMAIL_AWS_SENDER_DOMAINS replaces the list.

_SHARED = " (Public Suffix List), not a domain AWS sends from"


@dataclass(frozen=True)
class Authenticity:
    authentic: bool
    reasons: list[str] = field(default_factory=list)  # every failed condition; empty when authentic

    def to_dict(self) -> dict[str, object]:
        return {"authentic": self.authentic, "reasons": list(self.reasons)}


def _listed(domain: str, allowed_domains: Sequence[str]) -> bool:
    return any(domain == allowed.strip().lower().strip(".") for allowed in allowed_domains)


def domain_allowed(domain: str | None, allowed_domains: Sequence[str]) -> bool:
    """One of the allowed domains exactly, not a name under one, and a domain of its own by the Public Suffix
    List (dot boundaries hold too: evilamazon.com is not amazon.com)."""
    if not domain:
        return False
    domain = domain.lower().rstrip(".")
    return _listed(domain, allowed_domains) and shared_suffix_reason(domain) is None


def _unallowed(domain: str | None, allowed_domains: Sequence[str]) -> str | None:
    """Why a sender's domain does not make a mail AWS's: "" when it is not listed, or the Public Suffix List's
    reason when it is listed all the same (an allowlist that was not checked); None when it is allowed."""
    domain = (domain or "").lower().rstrip(".")
    if not domain or not _listed(domain, allowed_domains):
        return ""
    why = shared_suffix_reason(domain)
    return f"{why}{_SHARED}" if why else None


def assess(mail: ParsedMail, allowed_domains: Sequence[str] = DEFAULT_AWS_SENDER_DOMAINS) -> Authenticity:
    reasons: list[str] = []
    if not mail.from_addresses:
        reasons.append("no From address")
    elif len(mail.from_addresses) > 1:
        reasons.append(f"{len(mail.from_addresses)} From addresses, expected exactly one")
    why = _unallowed(mail.sender_domain, allowed_domains)
    if why is not None:
        who = f"sender domain {mail.sender_domain or '(none)'}"
        reasons.append(f"{who} {why or 'is not an allowed AWS sender domain'}")
    for other in mail.other_senders:
        # Sent on behalf of, or relayed by, someone else: only an AWS sender may stand behind an AWS From.
        why = _unallowed(other.rpartition("@")[2], allowed_domains)
        if why is not None:
            reasons.append(f"Sender/Resent-From {other} {why or 'is not an allowed AWS sender'}")
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
    elif v.dmarc == "UNALIGNED":  # SES read another From domain than ours: its result is about that one
        reasons.append("DMARC result is for another domain than the From domain")
    return Authenticity(authentic=not reasons, reasons=reasons)
