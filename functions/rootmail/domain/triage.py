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
    if accounts_checked and action == Action.FORWARD and not resolution.accounts:
        notes = "; ".join(resolution.notes) or "no account"
        return Decision(category, Action.QUEUE, rule_id, f"nobody to forward to: {notes}", True)
    return Decision(category, action, rule_id, classification.reason, True)
