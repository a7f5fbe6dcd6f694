"""Fault injection on the local emulator: Zendesk answering 500 and 429, SES throttling and rejecting, Slack down,
DynamoDB throttling and conditional-check failures, a handler crashing half-way, a delivery sent but not recorded,
and the state machine execution failing. For each: every mail ends in exactly one terminal ledger state, and no
customer gets a mail twice; once the fault is gone, an operator's retry (or the audit's re-drive) finishes the rest."""

from __future__ import annotations

import email
import email.policy
import itertools
import json
from collections import Counter
from pathlib import Path

import pytest

from rootmail.cli import main
from rootmail.domain.vocabulary import STATE_FOR_ACTION, Action
from rootmail.local.emulator import LocalPipeline
from samples import sample_pipeline

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"
EXPECTED = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
TERMINAL = {"forwarded", "ticketed", "escalated", "restricted", "quarantined", "ignored", "queued"}
MAILS = [
    "11-health-single-account",
    "12-health-multi-account",
    "01-support-case-new",
    "08-abuse-report-ec2",
    "24-credentials-password-reset",
]


def expected_state(name: str) -> str:
    return str(STATE_FOR_ACTION[Action(EXPECTED[f"{name}.eml"]["action"])])


@pytest.fixture
def pipeline(no_retry_sleep, no_sdk_retry_sleep):
    with sample_pipeline() as local:
        yield local


def run(pipeline: LocalPipeline) -> dict[str, str]:
    for name in MAILS:
        pipeline.store_mail(name, (CORPUS / f"{name}.eml").read_bytes())
    pipeline.wait()
    return states(pipeline)


def states(pipeline: LocalPipeline) -> dict[str, str]:
    ledger = pipeline.ledger()
    return {name: ledger.get(name)["state"] for name in MAILS}


def assert_nothing_twice(pipeline: LocalPipeline) -> None:
    forwards = Counter()
    for sent in pipeline.sent_mail():
        message = email.message_from_string(sent["raw"], policy=email.policy.default)
        forwards[message["X-Rootmail-Mail-Id"], message["X-Rootmail-Account"]] += 1
    assert all(count == 1 for count in forwards.values()), forwards
    tickets = Counter(t.get("external_id") for t in pipeline.zendesk.tickets)
    assert all(count == 1 for count in tickets.values()), tickets
    alerts = Counter(m["text"] for m in pipeline.slack.messages if "Digest" not in m["text"])
    assert all(count == 1 for count in alerts.values()), alerts


def retry_everything(pipeline: LocalPipeline) -> dict[str, str]:
    pipeline.slack_command("retry")
    pipeline.wait()
    return states(pipeline)


TRANSIENT = {
    "zendesk answers 500": lambda p: p.zendesk.fail_next(500, times=2),
    "zendesk answers 429": lambda p: p.zendesk.fail_next(429, times=2, retry_after=1),
    "slack answers 500": lambda p: p.slack.fail_next(500, times=2),
}


@pytest.mark.parametrize("fault", sorted(TRANSIENT))
def test_transient_http_faults_are_retried_to_the_expected_end(pipeline, fault):
    TRANSIENT[fault](pipeline)
    assert run(pipeline) == {name: expected_state(name) for name in MAILS}
    assert_nothing_twice(pipeline)


AWS_TRANSIENT = {
    "SES throttling": ("sesv2", "SendEmail", "TooManyRequestsException", lambda params: True),
    "DynamoDB throttling the ledger": (
        "dynamodb",
        "UpdateItem",
        "ProvisionedThroughputExceededException",
        lambda params: params["TableName"].endswith("-ledger"),
    ),
    "a conditional-check failure on a delivery claim": (
        "dynamodb",
        "PutItem",
        "ConditionalCheckFailedException",
        lambda params: params["TableName"].endswith("-deliveries") and "#o" in str(params),
    ),
}


@pytest.mark.parametrize("fault", sorted(AWS_TRANSIENT))
def test_transient_aws_faults_are_retried_to_the_expected_end(pipeline, fault):
    service, operation, code, when = AWS_TRANSIENT[fault]
    with pipeline.aws_fault(service, operation, error=code, times=2, when=when) as failed:
        result = run(pipeline)
    assert len(failed) == 2  # the fault really happened
    assert result == {name: expected_state(name) for name in MAILS}
    assert_nothing_twice(pipeline)


def test_zendesk_down_queues_its_mail_then_a_retry_finishes(pipeline):
    pipeline.zendesk.fail_next(500, times=1000)
    first = run(pipeline)
    assert first["01-support-case-new"] == first["08-abuse-report-ec2"] == "queued"
    assert set(first.values()) <= TERMINAL
    pipeline.zendesk.heal()
    assert retry_everything(pipeline) == {name: expected_state(name) for name in MAILS}
    assert_nothing_twice(pipeline)


def test_slack_down_queues_alerts_then_a_retry_finishes(pipeline):
    pipeline.slack.fail_next(500, times=1000)
    first = run(pipeline)
    assert first["24-credentials-password-reset"] == "queued"
    pipeline.slack.heal()
    assert retry_everything(pipeline) == {name: expected_state(name) for name in MAILS}
    assert_nothing_twice(pipeline)


def test_ses_rejecting_queues_the_mail_with_its_reason(pipeline):
    with pipeline.aws_fault("sesv2", "SendEmail", error="MessageRejected", times=1):
        first = run(pipeline)
    queued = [name for name, state in first.items() if state == "queued"]
    assert len(queued) == 1
    assert "SesRejected" in pipeline.ledger().get(queued[0])["queue_reason"]
    assert retry_everything(pipeline) == {name: expected_state(name) for name in MAILS}
    assert_nothing_twice(pipeline)


def test_a_handler_crashing_half_way_delivers_nothing_twice(pipeline):
    calls = itertools.count()
    # The forward of a shared notice crashes after its first account's mail went out.
    with pipeline.aws_fault("sesv2", "SendEmail", error=RuntimeError, when=lambda params: next(calls) == 1):
        first = run(pipeline)
    crashed = [name for name, state in first.items() if state == "queued"]
    assert len(crashed) == 1 and "RuntimeError" in pipeline.ledger().get(crashed[0])["queue_reason"]
    assert retry_everything(pipeline) == {name: expected_state(name) for name in MAILS}
    assert_nothing_twice(pipeline)


def test_a_delivery_sent_but_not_recorded_is_never_sent_again(pipeline):
    def settling_sent(params):
        return (
            params["TableName"].endswith("-deliveries")
            and params.get("ExpressionAttributeValues", {}).get(":status") == {"S": "sent"}
            and "#ses#" in params["Key"]["delivery_id"]["S"]
        )

    with pipeline.aws_fault("dynamodb", "UpdateItem", error="InternalServerError", when=settling_sent):
        first = run(pipeline)
    (unconfirmed,) = [name for name, state in first.items() if state == "queued"]
    reason = pipeline.ledger().get(unconfirmed)["queue_reason"]
    assert "DeliveryUnconfirmed" in reason and "message_id" in reason and "check that it arrived" in reason
    retried = retry_everything(pipeline)
    assert retried[unconfirmed] == "queued"  # held, not re-sent: an operator decides
    assert_nothing_twice(pipeline)


def test_a_failing_execution_leaves_the_mail_in_flight_until_the_audit_re_drives_it(pipeline, capsys):
    def recording(params):
        names = (params.get("ExpressionAttributeNames") or {}).values()
        return params["TableName"].endswith("-ledger") and "deliveries" in names

    with pipeline.aws_fault(
        "dynamodb", "UpdateItem", error="InternalServerError", times=1000, when=recording
    ):
        first = run(pipeline)
    assert set(first.values()) == {"in-flight"}
    assert {e["status"] for e in pipeline.executions()} == {"FAILED"}
    assert main(["audit", "--stuck", "0"]) == 1
    assert "5 mail(s) need attention" in capsys.readouterr().out
    assert main(["audit", "--stuck", "0", "--redrive"]) == 0
    pipeline.wait()
    assert states(pipeline) == {name: expected_state(name) for name in MAILS}
    assert_nothing_twice(pipeline)
