"""The product's vocabulary: what a mail is (category), what happens to it (action), where it ends (state)."""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    SUPPORT_CASE = "support-case"
    ABUSE_REPORT = "abuse-report"
    ACCOUNT_COMPROMISE = "account-compromise"
    SES_SENDING_STATUS = "ses-sending-status"
    CREDENTIALS = "credentials"
    HEALTH = "health"
    BILLING = "billing"
    COST_ALERT = "cost-alert"
    ACCOUNT_LIFECYCLE = "account-lifecycle"
    MARKETPLACE = "marketplace"
    UNCLASSIFIED = "unclassified"


class Action(StrEnum):
    FORWARD = "forward"
    TICKET = "ticket"
    URGENT = "urgent"
    RESTRICTED = "restricted"
    QUARANTINE = "quarantine"
    IGNORE = "ignore"
    QUEUE = "queue"


class State(StrEnum):
    """Terminal ledger states, one per action; `queued` also ends a delivery that kept failing."""

    FORWARDED = "forwarded"
    TICKETED = "ticketed"
    ESCALATED = "escalated"
    RESTRICTED = "restricted"
    QUARANTINED = "quarantined"
    IGNORED = "ignored"
    QUEUED = "queued"


# The ledger's one state that is not terminal: a workflow is deciding or delivering the mail.
IN_FLIGHT = "in-flight"

# When several categories fit one mail, the most urgent wins: lower rank first.
URGENCY: dict[Category, int] = {
    Category.ABUSE_REPORT: 0,
    Category.ACCOUNT_COMPROMISE: 1,
    Category.SES_SENDING_STATUS: 2,
    Category.SUPPORT_CASE: 3,
    # First among "the rest": credential mail must never lose to a forward rule.
    Category.CREDENTIALS: 4,
}
DEFAULT_URGENCY = 10

STATE_FOR_ACTION: dict[Action, State] = {
    Action.FORWARD: State.FORWARDED,
    Action.TICKET: State.TICKETED,
    Action.URGENT: State.ESCALATED,
    Action.RESTRICTED: State.RESTRICTED,
    Action.QUARANTINE: State.QUARANTINED,
    Action.IGNORE: State.IGNORED,
    Action.QUEUE: State.QUEUED,
}


def urgency(category: Category) -> int:
    return URGENCY.get(category, DEFAULT_URGENCY)
