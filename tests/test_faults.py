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

from rootmail.domain.vocabulary import STATE_FOR_ACTION, Action
from rootmail.entrypoints.cli import main
from rootmail_local.emulator import LocalPipeline
from samples import emf_records, sample_pipeline

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


# ---- a mail that never ends: the reconciler's attempt limit -------------------------------------------------------

LIMIT = 3
MAIL = "11-health-single-account"


@pytest.fixture
def reconciling(no_retry_sleep, no_sdk_retry_sleep):
    """The reconciler with no grace (the test's mail is seconds old), the shortest stuck threshold, and the default
    attempt limit named."""
    with sample_pipeline(
        reconcile_grace_minutes="0", reconcile_stuck_minutes="5", reconcile_max_attempts=str(LIMIT)
    ) as local:
        yield local


def hourly(pipeline: LocalPipeline, hour: int) -> dict:
    """The hourly reconcile `hour` hours from now (each run re-drives under its own hour's name), then its
    re-driven executions to their end."""
    from datetime import UTC, datetime, timedelta

    from rootmail.app.audit import reconcile
    from rootmail.bootstrap import runtime

    result = reconcile(runtime(), now=datetime.now(UTC) + timedelta(hours=hour))
    pipeline.wait()
    return result


def recording(params) -> bool:
    """Record's write of a terminal state (what a state's output over 256 KB, which no Catch handles, prevents)."""
    names = (params.get("ExpressionAttributeNames") or {}).values()
    return params["TableName"].endswith("-ledger") and "deliveries" in names


def opening_or_recording(params) -> bool:
    """Parse's opening of the record too (what a Parse that times out or runs out of memory never does)."""
    names = (params.get("ExpressionAttributeNames") or {}).values()
    return params["TableName"].endswith("-ledger") and bool({"summary", "deliveries"} & set(names))


def emf_metrics(text: str) -> dict[str, float]:
    """The metrics in a function's EMF output, by name."""
    found = {}
    for record in emf_records(text):
        for directive in record["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                value = record[metric["Name"]]  # one value, or the list of them
                found[metric["Name"]] = sum(value) if isinstance(value, list) else value
    return found


def test_a_mail_whose_execution_always_fails_is_queued_after_the_limit_of_re_drives(reconciling, capsys, log):
    with reconciling.aws_fault(
        "dynamodb", "UpdateItem", error="InternalServerError", times=10**6, when=recording
    ):
        key = reconciling.store_mail(MAIL, (CORPUS / f"{MAIL}.eml").read_bytes())
        reconciling.wait()
        assert reconciling.ledger().get(MAIL)["state"] == "in-flight"
        for hour in range(1, LIMIT + 1):
            result = hourly(reconciling, hour)
            assert len(result["redriven"]) == 1 and result["given_up"] == [], hour
            assert reconciling.ledger().get(MAIL)["redrives"] == hour
        assert [e["status"] for e in reconciling.executions()] == ["FAILED"] * (1 + LIMIT)

        # Re-driven LIMIT times and still in flight: the next run queues it for the operators instead (the hourly
        # function itself, its record left two hours ago).
        backdate(reconciling, MAIL, hours=2)
        capsys.readouterr()
        summary = reconciling.invoke("reconcile", {})
        written = capsys.readouterr().out
    assert summary["redriven"] == [] and summary["given_up"] == [MAIL]
    record = reconciling.ledger().get(MAIL)
    assert record["state"] == "queued" and record["redrives"] == LIMIT
    reason = record["queue_reason"]
    assert f"given up after {LIMIT} re-drives" in reason
    assert "FAILED" in reason and "LedgerUnavailable" in reason  # the last execution's status and error
    assert emf_metrics(written)["MailGivenUp"] == 1
    (line,) = [json.loads(x) for x in log.getvalue().splitlines() if '"mail given up"' in x]
    assert line["mail_id"] == MAIL and line["redrives"] == LIMIT and line["queue_reason"] == reason
    # The operators see it: in `rootmail audit`, and in the digest as a pattern of its own.
    assert main(["audit"]) == 0
    out = capsys.readouterr().out
    assert f"{MAIL}: {reason} (queued " in out and f"rootmail replay {key}" in out
    digest = reconciling.invoke("digest", {})
    assert digest["queued"] == 1 and "given up after" in reconciling.slack.messages[-1]["text"] + json.dumps(
        reconciling.slack.messages[-1]["blocks"]
    )
    # It is not re-driven again.
    for hour in (LIMIT + 1, LIMIT + 2):
        again = hourly(reconciling, hour)
        assert (again["redriven"], again["given_up"], again["findings"]) == ([], [], [])
    assert len(reconciling.executions()) == 1 + LIMIT

    # Healed, an operator's replay finishes it and records its real state.
    assert main(["replay", key]) == 0
    reconciling.wait()
    assert reconciling.ledger().get(MAIL)["state"] == expected_state(MAIL)
    assert_nothing_twice(reconciling)
    assert len(reconciling.sent_mail()) == 1


def test_a_mail_that_never_gets_a_record_is_queued_after_the_limit_of_re_drives(reconciling):
    with reconciling.aws_fault(
        "dynamodb", "UpdateItem", error="InternalServerError", times=10**6, when=opening_or_recording
    ):
        reconciling.store_mail(MAIL, (CORPUS / f"{MAIL}.eml").read_bytes())
        reconciling.wait()
        assert reconciling.ledger().get(MAIL) is None
        for hour in range(1, LIMIT + 1):
            result = hourly(reconciling, hour)
            assert [f["problem"] for f in result["findings"]] == ["not triaged"], hour
            assert len(result["redriven"]) == 1 and result["given_up"] == [], hour
            # The count lives in a record of its own, which holds no state: the mail is still not triaged.
            counted = reconciling.ledger().get(MAIL)
            assert counted["redrives"] == hour and "state" not in counted
        given_up = hourly(reconciling, LIMIT + 1)
        assert given_up["redriven"] == [] and [g["mail_id"] for g in given_up["given_up"]] == [MAIL]
        record = reconciling.ledger().get(MAIL)
        assert record["state"] == "queued" and f"given up after {LIMIT} re-drives" in record["queue_reason"]
        assert "FAILED" in record["queue_reason"]
        again = hourly(reconciling, LIMIT + 2)
        assert (again["redriven"], again["given_up"], again["findings"]) == ([], [], [])
    assert len(reconciling.executions()) == 1 + LIMIT

    # Healed, the operators' retry in Slack finishes it.
    reconciling.slack_command("retry")
    reconciling.wait()
    assert reconciling.ledger().get(MAIL)["state"] == expected_state(MAIL)
    assert len(reconciling.sent_mail()) == 1


def test_a_mail_that_succeeds_on_its_second_re_drive_ends_in_its_real_state(reconciling):
    failing = [True]
    with reconciling.aws_fault(
        "dynamodb",
        "UpdateItem",
        error="InternalServerError",
        times=10**6,
        when=lambda params: failing[0] and recording(params),
    ):
        reconciling.store_mail(MAIL, (CORPUS / f"{MAIL}.eml").read_bytes())
        reconciling.wait()
        assert len(hourly(reconciling, 1)["redriven"]) == 1
        assert reconciling.ledger().get(MAIL)["state"] == "in-flight"
        failing[0] = False
        assert len(hourly(reconciling, 2)["redriven"]) == 1
    record = reconciling.ledger().get(MAIL)
    assert record["state"] == expected_state(MAIL) and record["redrives"] == 2
    assert "queue_reason" not in record
    for hour in range(3, 3 + LIMIT):
        assert hourly(reconciling, hour)["redriven"] == []
    assert reconciling.ledger().get(MAIL)["state"] == expected_state(MAIL)
    assert [e["status"] for e in reconciling.executions()].count("SUCCEEDED") == 1
    assert len(reconciling.sent_mail()) == 1


def backdate(pipeline: LocalPipeline, mail_id: str, *, hours: int) -> None:
    from datetime import timedelta

    from rootmail.domain.moments import now_iso

    pipeline.client("dynamodb").update_item(
        TableName=pipeline.tables["ledger"],
        Key={"mail_id": {"S": mail_id}},
        UpdateExpression="SET updated_at = :t",
        ExpressionAttributeValues={":t": {"S": now_iso(-timedelta(hours=hours))}},
    )
