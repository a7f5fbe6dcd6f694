"""The terminal state of every path through the state machine, decided in one place (pipeline.outcome)."""

from __future__ import annotations

import json

from rootmail.app.triage_steps import outcome

BASE = {
    "mail_id": "m1",
    "mail": {"message_id": "x@aws", "subject": "s", "problems": []},
    "resolution": {"account_ids": ["111122223333"]},
}


def test_each_action_ends_in_its_state():
    states = {}
    for action in ("forward", "ticket", "urgent", "restricted", "quarantine", "ignore", "queue"):
        event = {**BASE, "classification": {"action": action, "category": "health", "reason": "rule r"}}
        event["delivery"] = {"deliveries": [], "undelivered": []}
        states[action] = outcome(event)["state"]
    assert states == {
        "forward": "forwarded",
        "ticket": "ticketed",
        "urgent": "escalated",
        "restricted": "restricted",
        "quarantine": "quarantined",
        "ignore": "ignored",
        "queue": "queued",
    }


def test_a_caught_error_ends_queued_with_the_lambda_error_message():
    cause = json.dumps({"errorMessage": "SES said no", "errorType": "SesRejected"})
    event = {
        **BASE,
        "classification": {"action": "forward"},
        "error": {"Error": "SesRejected", "Cause": cause},
    }
    result = outcome(event)
    assert result["state"] == "queued"
    assert result["queue_reason"] == "SesRejected: SES said no"
    assert result["action"] == "forward"


def test_an_error_before_classification_is_still_recorded():
    result = outcome({"mail_id": "m1", "error": {"Error": "MailNotFound", "Cause": "gone"}})
    assert result["state"] == "queued" and result["queue_reason"] == "MailNotFound: gone"


def test_an_account_without_contacts_queues_the_mail_with_the_reason():
    event = {
        **BASE,
        "classification": {"action": "forward"},
        "delivery": {"deliveries": [], "undelivered": [{"account_id": "1", "reason": "no customer contact"}]},
    }
    result = outcome(event)
    assert result["state"] == "queued" and result["queue_reason"] == "1: no customer contact"


def test_unclassified_mail_is_queued_with_the_rule_engine_reason():
    event = {
        **BASE,
        "classification": {"action": "queue", "category": "unclassified", "reason": "no rule matched"},
    }
    assert outcome(event)["queue_reason"] == "no rule matched"
