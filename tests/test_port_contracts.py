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
def ports(request) -> Iterator[dict[str, Any]]:
    if request.param == "fake":
        yield {
            "guard": fakes.DeliveryGuard(),
            "ledger": fakes.Ledger(),
            "accounts": fakes.Accounts(),
            "suppressions": fakes.Suppressions(),
            "pacer": fakes.Pacer(),
            "alert_batches": fakes.AlertBatches(),
        }
        return
    request.getfixturevalue("aws")  # moto, only for the DynamoDB side of the contract
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
    now = 1_800_000_000_000
    # Four at once (a millisecond apart), half a second each.
    slots = [pacer.reserve("ses", 1, 2.0, now_ms=now + n) for n in range(4)]
    assert [b.starts_ms - a.starts_ms for a, b in itertools.pairwise(slots)] == [500, 500, 500]
    assert [slot.due for slot in slots] == [True, True, True, False]  # due: starting within a second
    other = pacer.reserve("zendesk", 3, 1.0, now_ms=now)  # each limit is its own
    # Once the limit is idle again, the next slot is now.
    assert pacer.reserve("ses", 1, 2.0, now_ms=now + 60_000).starts_ms == now + 60_000
    assert other.due


def test_an_alert_batch_counts_each_member_once_whatever_batch_it_joins_again(ports):
    batches = ports["alert_batches"]
    first = batches.join("alerts#k#1", "m-1#alert", ["111111111111"], poster="m-1", now_ms=1000)
    assert (first.batch_id, first.position, first.joined_ms) == ("alerts#k#1", 1, 1000)
    # A retry (even in a later window) finds its first membership: counted once.
    assert batches.join("alerts#k#2", "m-1#alert", ["111111111111"], poster="m-1", now_ms=9000) == first
    second = batches.join("alerts#k#1", "m-2#alert", [], poster="m-2", now_ms=1001)
    assert (second.batch_id, second.position) == ("alerts#k#1", 2)
    batches.join("alerts#k#1", "m-3#alert", ["222222222222"], poster="m-3", now_ms=1002)
    batch = batches.get("alerts#k#1")
    assert (batch.count, batch.accounts, batch.opened_ms, batch.ts) == (
        3,
        ("111111111111", "222222222222"),
        1000,
        None,
    )
    assert batches.get("alerts#k#2") is None and batches.get("alerts#other#1") is None


def test_an_alert_batch_names_its_first_thirty_accounts_and_counts_the_rest(ports):
    batches = ports["alert_batches"]
    for n in range(40):
        batches.join("alerts#k#1", f"m-{n}#alert", [f"{n:012d}"], poster=f"m-{n}", now_ms=1000)
    batch = batches.get("alerts#k#1")
    assert batch.count == 40 and len(batch.accounts) == 30


def test_an_alert_batch_is_posted_by_its_first_mail_or_after_its_lease_by_another(ports):
    batches = ports["alert_batches"]
    batches.join("alerts#k#1", "m-1#alert", [], poster="m-1", now_ms=1000)
    batches.join("alerts#k#1", "m-2#alert", [], poster="m-2", now_ms=1000)
    assert batches.message("alerts#k#1") is None
    assert not batches.claim_post("alerts#k#1", "m-2", now_ms=2000)  # m-1's turn to post
    assert batches.claim_post("alerts#k#1", "m-1", now_ms=2000)
    assert not batches.claim_post("alerts#k#1", "m-2", now_ms=61_000)  # its turn runs a minute
    assert batches.claim_post("alerts#k#1", "m-2", now_ms=62_001)  # m-1 is gone: m-2 takes it over
    batches.save_message("alerts#k#1", "Quarantined mail: x", [{"type": "header"}])
    assert batches.message("alerts#k#1") == ("Quarantined mail: x", [{"type": "header"}])
    assert not batches.posted("alerts#k#1", "m-1", channel="C1", ts="1.1", shown=2)  # no longer m-1's post
    assert batches.posted("alerts#k#1", "m-2", channel="C1", ts="1.2", shown=2)
    assert batches.posted("alerts#k#1", "m-2", channel="C1", ts="1.2", shown=2)  # its retry records it again
    assert not batches.claim_post("alerts#k#1", "m-2", now_ms=999_999)  # posted: nobody posts again
    batch = batches.get("alerts#k#1")
    assert (batch.channel, batch.ts, batch.shown, batch.generation) == ("C1", "1.2", 2, 0)


def test_an_alert_batch_is_updated_by_one_at_a_time_spaced_and_a_deleted_message_posted_anew(ports):
    batches = ports["alert_batches"]
    batches.join("alerts#k#1", "m-1#alert", [], poster="m-1", now_ms=1000)
    assert not batches.take_turn("alerts#k#1", "m-1", now_ms=1000)  # nothing posted yet
    batches.claim_post("alerts#k#1", "m-1", now_ms=1000)
    batches.posted("alerts#k#1", "m-1", channel="C1", ts="1.1", shown=1)
    batches.join("alerts#k#1", "m-2#alert", [], poster="m-2", now_ms=1500)
    assert batches.take_turn("alerts#k#1", "m-2", now_ms=2000)
    assert not batches.take_turn("alerts#k#1", "m-3", now_ms=2001)  # m-2's turn runs
    batches.end_turn("alerts#k#1", "m-3", shown=9, next_ms=0)  # not m-3's turn: nothing
    batches.end_turn("alerts#k#1", "m-2", shown=2, next_ms=5000)
    assert batches.get("alerts#k#1").shows(2)
    assert not batches.take_turn("alerts#k#1", "m-3", now_ms=4999)  # spaced
    assert batches.take_turn("alerts#k#1", "m-3", now_ms=5000)
    assert batches.take_turn("alerts#k#1", "m-4", now_ms=65_001)  # m-3's turn outlived its lease
    assert not batches.message_gone("alerts#k#1", "9.9", "m-4", now_ms=65_002)  # not the message it holds
    assert batches.message_gone("alerts#k#1", "1.1", "m-4", now_ms=65_002)
    batch = batches.get("alerts#k#1")
    assert (batch.ts, batch.shown, batch.generation) == (None, 0, 1)
    assert batches.claim_post("alerts#k#1", "m-4", now_ms=65_003)
