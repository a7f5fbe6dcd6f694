"""Triage: from a parsed mail, its accounts and the rules to the decision (category, rule, action).

The same function decides in the pipeline's Classify step and in the offline `rootmail triage` command.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rootmail.domain.accounts import Resolution
from rootmail.domain.authenticity import Authenticity
from rootmail.domain.mail import ParsedMail
from rootmail.domain.rules import Rule, classify
from rootmail.domain.vocabulary import Action, Category

# Marks of credential mail that hold whatever the rules say: such mail is never forwarded to a customer.
CREDENTIAL_SENDER_DOMAIN = "signin.aws"
CREDENTIAL_MARKERS = (
    "resetpassword",
    "verifyemail",
    "verification code",
    "確認コード",
    "パスワードのリセット",
    # The other languages AWS writes account mail in: de, fr, es, it, pt, ko, zh, id.
    "bestätigungscode",
    "code de vérification",
    "código de verificación",
    "codice di verifica",
    "código de verificação",
    "인증 코드",
    "验证码",
    "驗證碼",
    "kode verifikasi",
)
# Actions that deliver to a customer's account and so need a known account; urgent mail goes on without one
# (the operators are alerted and the ticket has no requester) rather than wait in the queue.
NEEDS_ACCOUNT = (Action.FORWARD, Action.TICKET)


def credential_marks(mail: ParsedMail) -> list[str]:
    """Why a mail looks like credential mail (sign-in sender, reset or verification links, codes), if it does."""
    domain = mail.sender_domain or ""
    marks = (
        [domain]
        if domain == CREDENTIAL_SENDER_DOMAIN or domain.endswith("." + CREDENTIAL_SENDER_DOMAIN)
        else []
    )
    folded = mail.text.casefold()
    return marks + [m for m in CREDENTIAL_MARKERS if m in folded]


@dataclass(frozen=True)
class Decision:
    category: Category
    action: Action
    rule_id: str | None
    reason: str
    authentic: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": str(self.category),
            "action": str(self.action),
            "rule_id": self.rule_id,
            "reason": self.reason,
            "authentic": self.authentic,
        }


def decide(
    mail: ParsedMail,
    authenticity: Authenticity,
    resolution: Resolution,
    rules: Sequence[Rule],
    *,
    accounts_checked: bool = True,
) -> Decision:
    """`accounts_checked=False` (offline triage without an accounts list) skips the "nobody to forward to" check."""
    classification = classify(
        rules, sender=mail.sender, sender_domain=mail.sender_domain, subject=mail.subject, text=mail.text
    )
    category, action, rule_id = classification.category, classification.action, classification.rule_id
    if not authenticity.authentic:
        # Whatever it claims to be, mail that fails the sender allowlist or SES's verdicts stays with operators.
        reasons = "; ".join(authenticity.reasons) or "not authentic"
        return Decision(category, Action.QUARANTINE, rule_id, f"inauthentic: {reasons}", False)
    if mail.truncated and not mail.text.strip():
        # A very large mail whose text was not among what was read: never decided on its subject alone.
        reason = "a large mail whose text was not in the part that was read: for an operator to read"
        return Decision(category, Action.QUEUE, rule_id, reason, True)
    if action == Action.FORWARD and Category.CREDENTIALS in classification.matched_categories | {category}:
        return Decision(
            Category.CREDENTIALS, Action.RESTRICTED, rule_id, "a credentials rule matched too", True
        )
    if action == Action.FORWARD and (marks := credential_marks(mail)):
        reason = f"credential marks ({', '.join(marks)}): never forwarded"
        return Decision(Category.CREDENTIALS, Action.RESTRICTED, rule_id, reason, True)
    if accounts_checked and action in NEEDS_ACCOUNT and not resolution.accounts:
        notes = "; ".join(resolution.notes) or "no account"
        return Decision(category, Action.QUEUE, rule_id, f"no known account to {action} for: {notes}", True)
    return Decision(category, action, rule_id, classification.reason, True)
