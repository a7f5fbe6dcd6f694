"""A burst on the real state machine (the local emulator): SES throttling longer than a few retries, a burst paced
to the shared send rate, and StartExecution throttled at ingest. The same at AWS's scale is the burst model's
(scripts/benchmarks/model), which `make bench` runs."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from rootmail.domain.executions import execution_name
from rootmail_local.emulator import PREFIX
from samples import alert_count, copy_of, sample_pipeline

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "corpus"
FORWARDED = "11-health-single-account"  # one account, two operations contacts: one message to two recipients


def raw(name: str = FORWARDED, number: int | None = None) -> bytes:
    mail = (CORPUS / f"{name}.eml").read_bytes()
    return mail if number is None else copy_of(mail, f"burst-{number}")


def entered(pipeline: Any, key: str) -> list[str]:
    """The states a mail's execution entered, in order."""
    sfn = pipeline.client("stepfunctions")
    (execution,) = [e for e in pipeline.executions() if e["name"] == execution_name(PREFIX + key)]
    events = [
        e
        for page in sfn.get_paginator("get_execution_history").paginate(
            executionArn=execution["executionArn"]
        )
        for e in page["events"]
    ]
    return [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]


def lambda_failures(pipeline: Any, key: str) -> list[str]:
    sfn = pipeline.client("stepfunctions")
    (execution,) = [e for e in pipeline.executions() if e["name"] == execution_name(PREFIX + key)]
    events = sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)["events"]
    return [
        e["lambdaFunctionFailedEventDetails"]["error"] for e in events if e["type"] == "LambdaFunctionFailed"
    ]


def test_a_forward_throttled_by_ses_for_longer_than_a_few_retries_is_still_forwarded_once():
    with sample_pipeline() as pipeline:
        # Five throttled sends in a row: more than the four retries every other error gets (about 30 s on AWS).
        with pipeline.aws_fault("sesv2", "SendEmail", error="TooManyRequestsException", times=5) as refused:
            pipeline.store_mail("0100throttled", raw())
            pipeline.wait(timeout=300)
        assert len(refused) == 5
        record = pipeline.ledger().get("0100throttled")
        assert record["state"] == "forwarded", record.get("queue_reason")
        assert len(pipeline.sent_mail()) == 1
        assert lambda_failures(pipeline, "0100throttled") == ["SesThrottled"] * 5


def test_a_burst_is_sent_at_the_configured_send_rate_each_mail_waiting_for_its_slot():
    # A message every 20 s (each has two recipients; the waits pass ten times faster in tests): the first goes at
    # once, each later one waits for its slot, however slowly this machine brings them to Forward.
    with sample_pipeline(ses_send_rate="0.1") as pipeline:
        keys = [f"0100burst-{n}" for n in range(4)]
        for number, key in enumerate(keys):
            pipeline.store_mail(key, raw(number=number))
        pipeline.wait(timeout=300)
        ledger = pipeline.ledger()
        assert [ledger.get(k)["state"] for k in keys] == ["forwarded"] * 4
        assert len(pipeline.sent_mail()) == 4
        waited = [entered(pipeline, k).count("AwaitSendSlot") for k in keys]
        assert sorted(waited) == [0, 1, 1, 1]
        assert all(entered(pipeline, k).count("Forward") == 1 + w for k, w in zip(keys, waited, strict=True))


@pytest.fixture
def throttled_starts(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Step Functions answering StartExecution with its throttling error, `limit` times, as the service does (a
    400 the SDK's own retries see): moto's StartExecution refuses before it starts anything."""
    from moto.core.exceptions import JsonRESTError
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    seen = {"refused": 0, "limit": 0}
    start = StepFunctionsParserBackend.start_execution

    def refusing(self: Any, *args: Any, **kwargs: Any) -> Any:
        if seen["refused"] < seen["limit"]:
            seen["refused"] += 1
            raise JsonRESTError("ThrottlingException", "Rate exceeded")
        return start(self, *args, **kwargs)

    monkeypatch.setattr(StepFunctionsParserBackend, "start_execution", refusing)
    return seen


def test_a_throttled_start_is_retried_by_ingest_until_the_mail_s_execution_starts(
    throttled_starts, no_sdk_retry_sleep
):
    starts = throttled_starts
    with sample_pipeline() as pipeline:
        starts["limit"] = 4
        pipeline.store_mail("0100start", raw())
        pipeline.wait()
        assert starts["refused"] == 4
        assert pipeline.ledger().get("0100start")["state"] == "forwarded"


def test_a_start_still_throttled_after_the_retries_fails_ingest_and_reconcile_re_drives_the_mail(
    throttled_starts, no_sdk_retry_sleep
):
    starts = throttled_starts
    with sample_pipeline(reconcile_grace_minutes="0") as pipeline:
        starts["limit"] = 1_000
        key = pipeline.store_mail("0100refused", raw())
        with pytest.raises(RuntimeError, match="TriageNotStarted"):
            pipeline.invoke("ingest", pipeline.s3_event(key))  # as Lambda retries the event: refused again
        assert pipeline.ledger().get("0100refused") is None and pipeline.executions() == []
        starts["limit"] = 0
        result = pipeline.invoke("reconcile", {})
        assert result["findings"] == 1
        pipeline.wait()
        assert pipeline.ledger().get("0100refused")["state"] == "forwarded"


def test_quarantined_mails_stored_at_once_share_one_slack_message_that_counts_them_all():
    with sample_pipeline() as pipeline:
        keys = [f"0100forged-{n}" for n in range(12)]
        writers = [
            threading.Thread(
                target=pipeline.store_mail, args=(key, raw("31-spoofed-lookalike-abuse", number))
            )
            for number, key in enumerate(keys)
        ]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
        pipeline.wait(timeout=300)
        ledger = pipeline.ledger()
        assert [ledger.get(k)["state"] for k in keys] == ["quarantined"] * 12
        messages = pipeline.slack.messages
        # One message per five-minute window (the run may straddle two), updated through Slack's chat.update.
        assert 1 <= len(messages) <= 2
        assert sum(alert_count(m) for m in messages) == 12
        assert sum(m["updates"] for m in messages) >= 1
