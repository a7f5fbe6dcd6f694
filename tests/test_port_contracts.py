"""The in-memory fakes the use-case tests run on keep the promises of the DynamoDB adapters they stand in for: each
check here runs against the fake and against the adapter on moto, so a fake that drifts from its adapter fails."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

import fakes
from rootmail.adapters.dynamodb.accounts import AccountsTable
from rootmail.adapters.dynamodb.alert_batches import AlertBatches
from rootmail.adapters.dynamodb.deliveries import DeliveryGuard
from rootmail.adapters.dynamodb.ledger import Ledger
from rootmail.adapters.dynamodb.pacing import Pacer
from rootmail.adapters.suppressions import SuppressionList
from rootmail.domain.ses_events import Suppression
from rootmail.domain.vocabulary import IN_FLIGHT
from rootmail.errors import DeliveryInProgress, DeliveryUnconfirmed
from rootmail_local.emulator import create_tables

TABLES = {
    name: f"contract-{name}"
    for name in (
        "ledger",
        "accounts",
        "rules",
        "deliveries",
        "suppressions",
        "slack_requests",
        "rules_history",
    )
}


@pytest.fixture(params=["fake", "dynamodb"])
def ports(request, monkeypatch) -> Iterator[dict[str, Any]]:
    if request.param == "fake":
        yield {
            "guard": fakes.DeliveryGuard(),
            "ledger": fakes.Ledger(),
            "accounts": fakes.Accounts(),
            "suppressions": fakes.Suppressions(),
            "pacer": fakes.Pacer(fakes.Clock()),
            "alert_batches": fakes.AlertBatches(),
        }
        return
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        create_tables(dynamodb, TABLES)
        yield {
            "guard": DeliveryGuard(dynamodb, TABLES["deliveries"]),
            "ledger": Ledger(dynamodb, TABLES["ledger"]),
            "accounts": AccountsTable(dynamodb, TABLES["accounts"]),
            "suppressions": SuppressionList(dynamodb, TABLES["suppressions"]),
            "pacer": Pacer(dynamodb, TABLES["deliveries"]),
            "alert_batches": AlertBatches(dynamodb, TABLES["deliveries"]),
        }


def test_a_delivery_is_claimed_once_and_settled_proof_is_kept(ports):
    guard = ports["guard"]
    assert guard.claim("m#ses#1", "run-a")
    with pytest.raises(DeliveryInProgress):
        guard.claim("m#ses#1", "run-b")
    assert guard.claim("m#ses#1", "run-a")  # its own retry
    guard.sending("m#ses#1", "run-a")
    guard.settle("m#ses#1", "sent", {"message_id": "ses-1"})
    assert not guard.claim("m#ses#1", "run-b")
    assert guard.get("m#ses#1")["detail"] == {"message_id": "ses-1"}


def test_a_failed_delivery_may_be_claimed_again_and_a_sending_one_is_unconfirmed(ports):
    guard = ports["guard"]
    guard.claim("m#ses#1", "run-a")
    guard.settle("m#ses#1", "failed", {"error": "x"})
    assert guard.claim("m#ses#1", "run-b")
    guard.sending("m#ses#1", "run-b")
    with pytest.raises(DeliveryUnconfirmed):
        guard.claim("m#ses#1", "run-b")  # sent or not: nobody knows
    with pytest.raises(DeliveryInProgress):
        guard.claim("m#ses#1", "run-c")


def test_a_resend_safe_delivery_left_sending_is_taken_over_by_its_owner(ports):
    guard = ports["guard"]
    guard.claim("m#zendesk#urgent", "run-a", resend_safe=True)
    guard.sending("m#zendesk#urgent", "run-a")
    assert guard.claim("m#zendesk#urgent", "run-a", resend_safe=True)
    with pytest.raises(DeliveryInProgress):
        guard.sending("m#zendesk#urgent", "run-b")


def test_the_first_copy_holds_the_identity_until_another_takes_it_over(ports):
    guard = ports["guard"]
    assert guard.first_copy("id-1", "first") == "first"
    assert guard.first_copy("id-1", "second") == "first"
    assert not guard.take_over("id-1", "someone-else", "second")
    assert guard.take_over("id-1", "first", "second")
    assert guard.first_copy("id-1", "third") == "second"


def test_a_hold_is_exclusive_while_held_and_released_after(ports):
    guard = ports["guard"]
    with (
        guard.holding("case#1", "run-a"),
        pytest.raises(DeliveryInProgress),
        guard.holding("case#1", "run-b"),
    ):
        pass
    with guard.holding("case#1", "run-b"):
        pass


def test_the_ledger_opens_records_and_lists_by_state(ports):
    ledger = ports["ledger"]
    ledger.open("m1", bucket="b", key="incoming/m1", execution="e1", summary={"subject": "s"})
    ledger.open("m1", bucket="b", key="incoming/m1", execution="e2", summary={"subject": "s"})
    record = ledger.get("m1")
    assert (record["state"], record["attempts"], record["execution"]) == (IN_FLIGHT, 2, "e2")
    ledger.record("m2", {"state": "queued", "queue_reason": "why", "alert": None})
    time.sleep(0.002)  # records are ordered by their update, to the millisecond
    ledger.record("m3", {"state": "queued", "queue_reason": "later"})
    assert [r["mail_id"] for r in ledger.in_state("queued", oldest_first=True)] == ["m2", "m3"]
    assert [r["mail_id"] for r in ledger.in_state("queued")] == ["m3", "m2"]
    assert ledger.get("m2")["received_at"] and ledger.get("m2")["alert"] is None
    assert set(ledger.get_many(["m1", "m2", "nope"], fields=("mail_id", "state"))) == {"m1", "m2"}


def test_a_give_up_queues_only_mail_not_yet_terminal_and_re_drives_are_counted(ports):
    ledger = ports["ledger"]
    ledger.count_redrive(
        "m1", execution="r1", bucket="b", key="incoming/m1", received_at="2026-01-01T00:00:00Z"
    )
    ledger.count_redrive(
        "m1", execution="r2", bucket="b", key="incoming/m1", received_at="2026-01-02T00:00:00Z"
    )
    record = ledger.get("m1")
    assert (record["redrives"], record["last_redrive"], record["received_at"]) == (
        2,
        "r2",
        "2026-01-01T00:00:00Z",
    )
    assert "state" not in record
    assert ledger.give_up("m1", reason="gave up", bucket="b", key="incoming/m1")
    ledger.record("m2", {"state": "forwarded"})
    assert not ledger.give_up("m2", reason="gave up", bucket="b", key="incoming/m2")
    assert ledger.get("m2")["state"] == "forwarded"


def test_one_accounts_refresh_per_window(ports):
    accounts = ports["accounts"]
    now = datetime(2026, 12, 6, 10, tzinfo=UTC)
    claim = accounts.claim_refresh(now, timedelta(minutes=5))
    assert claim.claimed
    running = accounts.claim_refresh(now + timedelta(minutes=1), timedelta(minutes=5))
    assert (running.claimed, running.state) == (False, "running")
    accounts.finish_refresh(claim, now + timedelta(minutes=2), {"added": 1})
    done = accounts.claim_refresh(now + timedelta(minutes=3), timedelta(minutes=5))
    assert (done.claimed, done.state, done.finished_at) == (False, "done", "2026-12-06T10:02:00.000Z")
    assert accounts.claim_refresh(now + timedelta(minutes=6), timedelta(minutes=5)).claimed


def test_an_address_is_suppressed_once_whatever_its_case(ports):
    suppressions = ports["suppressions"]
    bounce = Suppression("ops@acme.example", "bounce", "550", "ses-1", None)
    assert suppressions.suppress(bounce)
    assert not suppressions.suppress(bounce)
    assert suppressions.suppressed(["OPS@acme.example", "other@acme.example"]) == {"ops@acme.example"}


def test_a_shared_rate_hands_out_consecutive_slots_in_order(ports):
    pacer = ports["pacer"]
    slots = [pacer.reserve("ses", 1, 2.0) for _ in range(4)]  # half a second each
    assert [b.starts_ms - a.starts_ms for a, b in itertools.pairwise(slots)] == [500, 500, 500]
    assert [slot.due for slot in slots] == [True, True, True, False]  # due: starting within a second
    other = pacer.reserve("zendesk", 3, 1.0)  # each limit is its own
    assert other.due


def test_an_alert_batch_counts_each_mail_once_and_fills_up(ports):
    batches = ports["alert_batches"]
    first = batches.join(
        "alerts#k#1#0", "m-1", ["111111111111"], headline="Quarantined mail", cap=3, now_ms=1000
    )
    assert first is not None and (first.count, first.poster) == (1, True)
    again = batches.join(
        "alerts#k#1#0", "m-1", ["111111111111"], headline="Quarantined mail", cap=3, now_ms=1001
    )
    assert again is not None and (again.count, again.poster) == (1, True)  # a retry joins once
    second = batches.join("alerts#k#1#0", "m-2", [], headline="Quarantined mail", cap=3, now_ms=1002)
    assert second is not None and (second.count, second.poster) == (2, False)
    batches.join("alerts#k#1#0", "m-3", ["222222222222"], headline="Quarantined mail", cap=3, now_ms=1003)
    assert batches.join("alerts#k#1#0", "m-4", [], headline="Quarantined mail", cap=3, now_ms=1004) is None
    batch = batches.get("alerts#k#1#0")
    assert (batch.count, batch.accounts, batch.headline, batch.opened_ms) == (
        3,
        ("111111111111", "222222222222"),
        "Quarantined mail",
        1000,
    )
    assert batches.get("alerts#other#1#0") is None


def test_an_alert_batch_is_updated_by_one_at_a_time_and_never_shows_fewer(ports):
    batches = ports["alert_batches"]
    batches.join("alerts#k#1#0", "m-1", [], headline="Quarantined mail", cap=10, now_ms=1000)
    batches.join("alerts#k#1#0", "m-2", [], headline="Quarantined mail", cap=10, now_ms=1000)
    assert not batches.take_update("alerts#k#1#0", now_ms=1000, next_ms=4000)  # nothing posted yet
    assert not batches.take_post(
        "alerts#k#1#0", "m-2", stale_before_ms=1000, now_ms=1000
    )  # the poster's lease holds
    batches.posted(
        "alerts#k#1#0", channel="C1", ts="1.1", text="Quarantined mail: x", blocks=[{"type": "header"}]
    )
    posted = batches.get("alerts#k#1#0")
    assert (posted.shown, posted.channel, posted.ts, posted.text, posted.blocks) == (
        1,
        "C1",
        "1.1",
        "Quarantined mail: x",
        ({"type": "header"},),
    )
    assert not batches.take_post(
        "alerts#k#1#0", "m-2", stale_before_ms=99_000, now_ms=99_000
    )  # posted already
    assert batches.take_update("alerts#k#1#0", now_ms=1000, next_ms=4000)
    assert not batches.take_update("alerts#k#1#0", now_ms=3999, next_ms=6999)
    assert batches.get("alerts#k#1#0").next_update_ms == 4000
    assert batches.take_update("alerts#k#1#0", now_ms=4000, next_ms=7000)
    batches.mark_shown("alerts#k#1#0", 2)
    batches.mark_shown("alerts#k#1#0", 1)
    assert batches.get("alerts#k#1#0").shows(2)


def test_a_batch_whose_poster_stopped_is_posted_by_another_once(ports):
    batches = ports["alert_batches"]
    batches.join("alerts#k#1#0", "m-1", [], headline="Quarantined mail", cap=10, now_ms=1000)
    batches.join("alerts#k#1#0", "m-2", [], headline="Quarantined mail", cap=10, now_ms=2000)
    assert batches.take_post("alerts#k#1#0", "m-2", stale_before_ms=61_001, now_ms=62_000)
    assert not batches.take_post(
        "alerts#k#1#0", "m-3", stale_before_ms=61_001, now_ms=62_000
    )  # m-2 holds it now
