"""How a triage ends: the terminal state of every path through the state machine, decided in one place, and the
reasons a decided delivery could not be made (they become the queued mail's reason, which operators read)."""

from __future__ import annotations

from collections.abc import Sequence

from rootmail.domain.vocabulary import STATE_FOR_ACTION, Action, State

NO_DECISION = "no decision was made"
ACCOUNT_GONE = "the account is no longer in the accounts table"


def copy_takes_over(first_copy_state: str | None) -> bool:
    """A copy of an authentic mail (the same Message-ID and content under another key) delivers it only when the
    first copy's triage ended without delivering it; a copy of one still in flight or delivered is ignored."""
    return first_copy_state in (State.QUEUED, State.QUARANTINED)


def no_contact(kind: str, category: str) -> str:
    return f"the account has no customer contact for {kind} notices ({category})"


def all_suppressed(kind: str, held: Sequence[str]) -> str:
    return f"every {kind} contact is suppressed after bounces or complaints: {', '.join(held)}"


def terminal_state(
    action: str | None,
    reason: str | None,
    *,
    error: str | None = None,
    undelivered: Sequence[tuple[str, str]] = (),
) -> tuple[State, str | None]:
    """The state a mail ends in and, when queued, why: an error caught anywhere queues it with the error; a decided
    delivery that could not be made for an account queues it with each account's reason; otherwise the action's
    state (queue's reason is the decision's)."""
    if error is not None:
        return State.QUEUED, error
    if undelivered:
        return State.QUEUED, "; ".join(f"{account}: {why}" for account, why in undelivered)
    if action in {a.value for a in Action}:
        state = STATE_FOR_ACTION[Action(action)]
        return state, reason if state == State.QUEUED else None
    return State.QUEUED, NO_DECISION
