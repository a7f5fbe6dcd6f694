"""Record: the mail's terminal state in the ledger (the domain decides it), and one figure per mail."""

from __future__ import annotations

from typing import Any

from rootmail.app.payloads import (
    DeliveryOutcome,
    FinalState,
    MailSummary,
)
from rootmail.app.ports import Services
from rootmail.domain.outcome import terminal_state
from rootmail.observability import logger


def outcome(event: FinalState) -> dict[str, Any]:
    """The terminal ledger fields for one execution's final state (the domain decides the state and its reason)."""
    mail = event.mail or MailSummary()
    decision = event.classification
    delivery = event.delivery or DeliveryOutcome()
    state, queue_reason = terminal_state(
        decision.action if decision else None,
        decision.reason if decision else None,
        error=event.error.text() if event.error else None,
        undelivered=[(u.account_id, u.reason) for u in delivery.undelivered],
    )
    fields: dict[str, Any] = {
        "message_id": mail.message_id,
        "subject": mail.subject if event.mail else None,
        "sender": mail.sender,
        "case_id": mail.case_id,
        "problems": mail.problems,
        "account_ids": list(event.resolution.account_ids) if event.resolution else [],
        "category": decision.category if decision else None,
        "rule_id": decision.rule_id if decision else None,
        "action": decision.action if decision else None,
        "reason": decision.reason if decision else None,
        "authentic": decision.authentic if decision else mail.authentic,
        "deliveries": delivery.deliveries,
        # Written every time, so a retry that no longer alerts does not keep an earlier run's alert.
        "alert": bool(decision and decision.alert),
        "signals": list(decision.signals) if decision else [],
        "state": state.value,
    }
    if decision and decision.suggestion:
        fields["suggestion"] = decision.suggestion
    if queue_reason is not None:
        fields["queue_reason"] = queue_reason
    return fields


def record_step(event: FinalState, rt: Services) -> dict[str, Any]:
    fields = outcome(event)
    where = {"execution": event.execution, "bucket": event.bucket, "object_key": event.key}
    rt.ledger.record(event.mail_id, {**fields, **where})
    # One figure per mail, by category, action and terminal state.
    rt.metrics.put(
        "MailTriaged",
        1,
        category=str(fields["category"] or "none"),
        action=str(fields["action"] or "none"),
        state=str(fields["state"]),
    )
    logger.info("mail recorded", extra={"state": fields["state"], "rule_id": fields["rule_id"]})
    return {"mail_id": event.mail_id, **fields}
