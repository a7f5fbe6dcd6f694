"""Nothing lost, nothing twice: duplicates of every kind, lost events, stuck executions, on the local emulator."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import pytest

from rootmail.app.offline import load_accounts
from rootmail_local.emulator import LocalPipeline
from samples import sample_pipeline

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"
TERMINAL = {"forwarded", "ticketed", "escalated", "restricted", "quarantined", "ignored", "queued"}
FORWARDED = "11-health-single-account"


@pytest.fixture
def pipeline():
    with sample_pipeline() as local:
        yield local


def raw(name: str) -> bytes:
    return (CORPUS / f"{name}.eml").read_bytes()


def test_the_same_mail_stored_twice_under_different_keys_is_delivered_once(pipeline):
    pipeline.store_mail("0100first", raw(FORWARDED))
    pipeline.store_mail("0100second", raw(FORWARDED))
    pipeline.wait()
    ledger = pipeline.ledger()
    records = sorted((ledger.get(k) for k in ("0100first", "0100second")), key=lambda r: r["state"])
    kept, copy = records[0], records[1]  # whichever Parse claimed the mail first delivers it
    assert (kept["state"], copy["state"]) == ("forwarded", "ignored")
    assert f"a copy of {kept['mail_id']}" in copy["reason"]
    assert len(pipeline.sent_mail()) == 1


def test_copies_stored_at_once_still_deliver_once(pipeline):
    keys = [f"copy-{n}" for n in range(6)]
    threads = [threading.Thread(target=pipeline.store_mail, args=(key, raw(FORWARDED))) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    pipeline.wait()
    states = sorted(pipeline.ledger().get(key)["state"] for key in keys)
    assert states == ["forwarded"] + ["ignored"] * 5
    assert len(pipeline.sent_mail()) == 1


def test_the_same_s3_event_many_times_shuffled_and_concurrent_delivers_once(pipeline):
    names = [
        "11-health-single-account",
        "01-support-case-new",
        "08-abuse-report-ec2",
        "24-credentials-password-reset",
    ]
    keys = [pipeline.store_mail(name, raw(name)) for name in names]
    pipeline.wait()
    sent, tickets, messages = (
        len(pipeline.sent_mail()),
        len(pipeline.zendesk.tickets),
        len(pipeline.slack.messages),
    )
    events = [key for key in keys for _ in range(5)]
    random.Random(7).shuffle(events)
    threads = [
        threading.Thread(target=pipeline.invoke, args=("ingest", pipeline.s3_event(key))) for key in events
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    pipeline.wait()
    assert len(pipeline.executions()) == len(names)
    assert (len(pipeline.sent_mail()), len(pipeline.zendesk.tickets), len(pipeline.slack.messages)) == (
        sent,
        tickets,
        messages,
    )
    assert {pipeline.ledger().get(k.rsplit("/", 1)[-1])["state"] for k in keys} <= TERMINAL


def store_without_event(pipeline: LocalPipeline, key: str, body: bytes) -> str:
    """What a dropped S3 event notification (or a lost async invocation) leaves: the mail stored, nothing started."""
    s3 = pipeline.client("s3")
    saved = s3.get_bucket_notification_configuration(Bucket=pipeline.bucket)
    saved.pop("ResponseMetadata", None)
    s3.put_bucket_notification_configuration(Bucket=pipeline.bucket, NotificationConfiguration={})
    try:
        return pipeline.store_mail(key, body)
    finally:
        s3.put_bucket_notification_configuration(Bucket=pipeline.bucket, NotificationConfiguration=saved)


@pytest.fixture
def reconciling():
    """The reconciler with no grace (the test's mail is seconds old) and the shortest stuck threshold."""
    with sample_pipeline(reconcile_grace_minutes="0", reconcile_stuck_minutes="5") as local:
        yield local


def test_with_a_tenth_of_the_events_dropped_one_reconcile_leaves_nothing_unprocessed(reconciling):
    names = sorted(p.stem for p in CORPUS.glob("*.eml"))[:30]
    dropped = set(random.Random(3).sample(names, 3))
    for name in names:
        if name in dropped:
            store_without_event(reconciling, name, raw(name))
        else:
            reconciling.store_mail(name, raw(name))
    reconciling.wait()
    ledger = reconciling.ledger()
    assert {n for n in names if ledger.get(n) is None} == dropped

    result = reconciling.invoke("reconcile", {})
    assert result["findings"] == 3 and len(result["redriven"]) == 3
    reconciling.wait()
    assert all(ledger.get(n)["state"] in TERMINAL for n in names)
    # The next run finds nothing, and re-drives nothing.
    again = reconciling.invoke("reconcile", {})
    assert (again["findings"], again["redriven"], again["stored"]) == (0, [], 30)


def test_a_mail_stuck_in_flight_is_found_with_its_command_and_re_driven(reconciling, capsys):
    from rootmail.domain.moments import now_iso
    from rootmail.entrypoints.cli import main

    name = FORWARDED
    key = store_without_event(reconciling, name, raw(name))
    ledger = reconciling.ledger()
    # An execution that stopped after Parse (a crash, a timeout): in flight, two hours ago.
    ledger.open(name, bucket=reconciling.bucket, key=key, execution="died", summary={})
    two_hours_ago = now_iso(-__import__("datetime").timedelta(hours=2))
    reconciling.client("dynamodb").update_item(
        TableName=reconciling.tables["ledger"],
        Key={"mail_id": {"S": name}},
        UpdateExpression="SET updated_at = :t",
        ExpressionAttributeValues={":t": {"S": two_hours_ago}},
    )
    assert main(["audit", "--stuck", "30"]) == 1
    out = capsys.readouterr().out
    assert f"{name}: stuck in flight since {two_hours_ago} → rootmail replay {key}" in out
    assert "1 mail(s) need attention" in out

    assert main(["audit", "--stuck", "30", "--redrive"]) == 0
    reconciling.wait()
    assert ledger.get(name)["state"] == "forwarded"
    assert len(reconciling.sent_mail()) == 1
    assert main(["audit"]) == 0
    assert "every stored mail is accounted for" in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["run again under a new execution", "stored again under another key"])
def test_late_duplicates_deliver_nothing_twice(pipeline, kind):
    """A duplicate arriving hours, days or 91 days later (past any idempotency record's expiry and Step Functions'
    90-day name reuse) is, to the pipeline, the same stored object run again under a new execution (what a reused
    name amounts to), or the same mail stored again under another key. What stops both is the delivery guard and
    the identity records, which never expire (no TTL): so no clock needs to move for the test to hold."""
    names = [FORWARDED, "01-support-case-new", "08-abuse-report-ec2"]
    keys = [pipeline.store_mail(name, raw(name)) for name in names]
    pipeline.wait()
    evidence = (len(pipeline.sent_mail()), len(pipeline.zendesk.tickets), len(pipeline.slack.messages))
    if kind.startswith("run again"):
        from rootmail.app import audit
        from rootmail.bootstrap import runtime

        audit.replay(runtime(), keys, run="ninety-one-days-later")
    else:
        for name in names:
            pipeline.store_mail(f"{name}-stored-again", raw(name))
    pipeline.wait()
    assert (
        len(pipeline.sent_mail()),
        len(pipeline.zendesk.tickets),
        len(pipeline.slack.messages),
    ) == evidence
    dynamodb = pipeline.client("dynamodb")
    guard = dynamodb.scan(TableName=pipeline.tables["deliveries"])["Items"]
    assert guard and not any("expires_at" in item or "ttl" in item for item in guard)
    ttl = dynamodb.describe_time_to_live(TableName=pipeline.tables["deliveries"])
    assert ttl["TimeToLiveDescription"]["TimeToLiveStatus"] == "DISABLED"


def test_replay_re_runs_stored_mail_idempotently(pipeline, capsys):
    from rootmail.entrypoints.cli import main

    key = pipeline.store_mail(FORWARDED, raw(FORWARDED))
    pipeline.wait()
    assert main(["replay", key]) == 0
    assert "1 of 1 stored mail(s) re-run" in capsys.readouterr().out
    pipeline.wait()
    assert main(["replay", "--since", "1"]) == 0
    pipeline.wait()
    record = pipeline.ledger().get(FORWARDED)
    assert record["state"] == "forwarded" and record["attempts"] == 3
    assert len(pipeline.sent_mail()) == 1
    assert main(["replay"]) == 2


def test_a_mail_whose_execution_failed_before_any_record_is_re_driven(reconciling, no_retry_sleep):
    name = FORWARDED
    with reconciling.aws_fault(
        "dynamodb",
        "UpdateItem",
        error="InternalServerError",
        times=1000,
        when=lambda params: params["TableName"].endswith("-ledger"),
    ):
        reconciling.store_mail(name, raw(name))
        reconciling.wait()
    assert reconciling.ledger().get(name) is None
    assert [e["status"] for e in reconciling.executions()] == ["FAILED"]
    result = reconciling.invoke("reconcile", {})
    assert result["findings"] == 1 and len(result["redriven"]) == 1
    reconciling.wait()
    assert reconciling.ledger().get(name)["state"] == "forwarded"
    assert len(reconciling.sent_mail()) == 1


def test_a_copy_of_mail_that_was_not_delivered_is_delivered(pipeline):
    # The first copy arrived scanned as a failed virus check (inauthentic: quarantined, it holds no identity) ...
    failed_scan = raw(FORWARDED).replace(
        b"X-SES-Virus-Verdict: PASS", b"X-SES-Virus-Verdict: PROCESSING_FAILED"
    )
    pipeline.store_mail("scan-failed", failed_scan)
    pipeline.wait()
    assert pipeline.ledger().get("scan-failed")["state"] == "quarantined"
    # ... then the sender's retransmission, scanned clean: delivered, not taken for a copy.
    pipeline.store_mail("scan-clean", raw(FORWARDED))
    pipeline.wait()
    assert pipeline.ledger().get("scan-clean")["state"] == "forwarded"
    assert len(pipeline.sent_mail()) == 1


def test_a_copy_takes_over_from_a_first_copy_left_queued(pipeline):
    from rootmail.adapters.suppressions import SuppressionList
    from rootmail.domain.ses_events import Suppression

    name = FORWARDED
    record = pipeline.ledger()
    contacts = load_accounts(CORPUS / "accounts.json", CORPUS / "contacts.json")
    account = next(a for a in contacts if a.account_id == "123456789012")
    suppressions = SuppressionList(pipeline.client("dynamodb"), pipeline.tables["suppressions"])
    for contact in account.contacts.of("operations"):
        suppressions.suppress(Suppression(contact, "bounce", "mailbox full", "m", None))
    pipeline.store_mail("first", raw(name))
    pipeline.wait()
    assert record.get("first")["state"] == "queued"
    for contact in account.contacts.of("operations"):
        suppressions.clear(contact, "operator")
    pipeline.store_mail("again", raw(name))
    pipeline.wait()
    assert record.get("again")["state"] == "forwarded"
    # The first copy, retried now, is the copy: nothing is sent twice.
    pipeline.slack_command("retry")
    pipeline.wait()
    assert record.get("first")["state"] == "ignored" and "a copy of again" in record.get("first")["reason"]
    assert len(pipeline.sent_mail()) == 1
