"""The terminal state of every path through the state machine, decided in one place (domain/outcome.py), and the
ledger fields Record writes from an execution's final state."""

from __future__ import annotations

import json

from rootmail.app.payloads import TriageState
from rootmail.app.triage.record import outcome
from rootmail.domain.outcome import NO_DECISION, terminal_state

BASE = {
    "bucket": "mail",
    "key": "incoming/m1",
    "mail_id": "m1",
    "execution": "m1-x",
    "mail": {"message_id": "x@aws", "subject": "s", "problems": []},
    "resolution": {"account_ids": ["111122223333"]},
}


def test_each_action_ends_in_its_state():
    states = {
        action: terminal_state(action, "rule r")[0]
        for action in ("forward", "ticket", "urgent", "restricted", "quarantine", "ignore", "queue")
    }
    assert states == {
        "forward": "forwarded",
        "ticket": "ticketed",
        "urgent": "escalated",
        "restricted": "restricted",
        "quarantine": "quarantined",
        "ignore": "ignored",
        "queue": "queued",
    }
    assert terminal_state("forward", "rule r") == ("forwarded", None)
    assert terminal_state("queue", "no rule matched") == ("queued", "no rule matched")
    assert terminal_state(None, None) == ("queued", NO_DECISION)


def test_a_caught_error_ends_queued_with_the_lambda_error_message():
    cause = json.dumps({"errorMessage": "SES said no", "errorType": "SesRejected"})
    event = {
        **BASE,
        "classification": {"action": "forward", "category": "health"},
        "error": {"Error": "SesRejected", "Cause": cause},
    }
    result = outcome(TriageState.model_validate(event))
    assert result["state"] == "queued"
    assert result["queue_reason"] == "SesRejected: SES said no"
    assert result["action"] == "forward" and result["account_ids"] == ["111122223333"]


def test_an_error_before_classification_is_still_recorded():
    event = {k: BASE[k] for k in ("bucket", "key", "mail_id", "execution")}
    result = outcome(
        TriageState.model_validate({**event, "error": {"Error": "MailNotFound", "Cause": "gone"}})
    )
    assert result["state"] == "queued" and result["queue_reason"] == "MailNotFound: gone"
    assert result["subject"] is None and result["account_ids"] == [] and result["alert"] is False


def test_an_account_without_contacts_queues_the_mail_with_the_reason():
    event = {
        **BASE,
        "classification": {"action": "forward", "category": "health"},
        "delivery": {"deliveries": [], "undelivered": [{"account_id": "1", "reason": "no customer contact"}]},
    }
    result = outcome(TriageState.model_validate(event))
    assert result["state"] == "queued" and result["queue_reason"] == "1: no customer contact"


def test_unclassified_mail_is_queued_with_the_rule_engine_reason_and_its_alert():
    event = {
        **BASE,
        "classification": {
            "action": "queue",
            "category": "unclassified",
            "reason": "no rule matched",
            "alert": True,
            "signals": ["abuse"],
            "suggestion": {"category": "abuse-report", "why": "words: abuse"},
        },
    }
    result = outcome(TriageState.model_validate(event))
    assert result["queue_reason"] == "no rule matched"
    assert (
        result["alert"]
        and result["signals"] == ["abuse"]
        and result["suggestion"]["category"] == "abuse-report"
    )


def test_a_copy_delivers_only_when_the_first_copy_s_triage_did_not():
    from rootmail.domain.outcome import copy_takes_over

    taking_over = {
        state: copy_takes_over(state)
        for state in (None, "in-flight", "queued", "quarantined", "forwarded", "ignored", "restricted")
    }
    assert {state for state, takes in taking_over.items() if takes} == {"queued", "quarantined"}
