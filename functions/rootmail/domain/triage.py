"""Triage: from a parsed mail, its accounts and the rules to the decision (category, rule, action).

The same function decides in the pipeline's Classify step and in the offline `rootmail triage` command.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from rootmail.domain.authenticity import Authenticity
from rootmail.domain.credentials import credential_marks
from rootmail.domain.mail.model import ParsedMail, fit
from rootmail.domain.routing import Resolution
from rootmail.domain.rules.index import classify
from rootmail.domain.rules.model import Rule
from rootmail.domain.signals import Suggestion, alarming_words, suggest, urgent_signals
from rootmail.domain.vocabulary import Action, Category

# Actions that deliver to a customer's account and so need a known account; urgent mail goes on without one
# (the operators are alerted and the ticket has no requester) rather than wait in the queue.
NEEDS_ACCOUNT = (Action.FORWARD, Action.TICKET)
# Actions whose ticket a customer could read (the requester is the customer): `private` turns that off.
TICKETS = (Action.TICKET, Action.URGENT)


@dataclass(frozen=True)
class Decision:
    category: Category
    action: Action
    rule_id: str | None
    reason: str
    authentic: bool
    # A ticket no customer hears of: no requester, an internal note (the mail concerns another account than its
    # root's, or carries credentials).
    private: bool = False
    # Credentials: the ticket holds the facts only, neither the mail's text nor its original.
    withhold_text: bool = False
    # Authentic mail no rule knows: its urgent words (the operators are alerted at once while it waits in the
    # queue) and the category its sender and words suggest (shown in the digest and the rule modal).
    signals: tuple[str, ...] = ()
    suggestion: Suggestion | None = None

    @property
    def alert(self) -> bool:
        """Whether the operators hear of this queued mail now rather than in the next digest."""
        return self.action == Action.QUEUE and bool(self.signals)

    def as_copy_of(self, first: str, first_state: str) -> Decision:
        """This mail is a copy (the same Message-ID and content) of `first`, which delivers it: recorded, ignored."""
        reason = f"a copy of {first} (the same Message-ID and content; that one is {first_state}): one mail is triaged once"
        return replace(self, action=Action.IGNORE, reason=reason)

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": str(self.category),
            "action": str(self.action),
            "rule_id": self.rule_id,
            "reason": fit(self.reason, MAX_REASON_BYTES),
            "authentic": self.authentic,
            "private": self.private,
            "withhold_text": self.withhold_text,
            "signals": list(self.signals),
            "alert": self.alert,
            "suggestion": self.suggestion.to_dict() if self.suggestion else None,
        }


MAX_REASON_BYTES = 1024


def decide(
    mail: ParsedMail,
    authenticity: Authenticity,
    resolution: Resolution,
    rules: Sequence[Rule],
    *,
    accounts_checked: bool = True,
) -> Decision:
    """The decision for one mail, with the guards that hold whatever the rules say: inauthentic mail is quarantined;
    credentials never reach a customer (a forward becomes `restricted`, a ticket private with no text); mail about
    another account than its root's reaches no customer without an operator (a forward is queued, a ticket private).
    `accounts_checked=False` (offline triage without an accounts list) skips the checks that need the accounts."""
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
    credentials: list[str] = []
    if Category.CREDENTIALS in classification.matched_categories | {category}:
        credentials.append("a credentials rule matched")
    if action in (Action.FORWARD, *TICKETS):
        credentials += credential_marks(mail)
    if action == Action.FORWARD and credentials:
        reason = f"credentials ({', '.join(credentials)}): never forwarded"
        return Decision(Category.CREDENTIALS, Action.RESTRICTED, rule_id, reason, True)
    if action in (Action.FORWARD, Action.IGNORE) and rule_id is not None:
        # Payment trouble, a compromise or an abuse report worded as no urgent rule knows must not reach a customer as
        # an ordinary notice, nor be silently recorded: it waits for an operator, who is alerted at once.
        signals = alarming_words(mail.subject, mail.text)
        if signals:
            reason = (
                f"urgent words ({', '.join(signals)}) in mail rule {rule_id} would {action}: for an operator"
            )
            return Decision(
                category,
                Action.QUEUE,
                rule_id,
                reason,
                True,
                signals=signals,
                suggestion=suggest(mail.sender, mail.subject, mail.text),
            )
    if accounts_checked and action in NEEDS_ACCOUNT and not resolution.account_ids:
        notes = "; ".join(resolution.notes) or "no account"
        return Decision(category, Action.QUEUE, rule_id, f"no known account to {action} for: {notes}", True)
    if accounts_checked and action == Action.FORWARD and resolution.hold:
        return Decision(category, Action.QUEUE, rule_id, f"not forwarded: {resolution.hold}", True)
    if action in TICKETS and credentials:
        reason = (
            f"{classification.reason}; credentials ({', '.join(credentials)}): the customer is not notified"
        )
        return Decision(category, action, rule_id, reason, True, private=True, withhold_text=True)
    if action in TICKETS and accounts_checked and (resolution.hold or not resolution.account_ids):
        why = resolution.hold or "no known account"
        reason = f"{classification.reason}; the customer is not notified: {why}"
        return Decision(category, action, rule_id, reason, True, private=True)
    if rule_id is None:
        # No rule knows it: it waits for one, and the operators get what its words suggest.
        return Decision(
            category,
            action,
            None,
            classification.reason,
            True,
            signals=urgent_signals(mail.subject, mail.text),
            suggestion=suggest(mail.sender, mail.subject, mail.text),
        )
    return Decision(category, action, rule_id, classification.reason, True)
