"""The in-memory fakes the use-case tests run on keep the promises of the DynamoDB adapters they stand in for: each
check here runs against the fake and against the adapter on moto, so a fake that drifts from its adapter fails."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

import fakes
from rootmail.adapters.dynamodb.accounts import AccountsTable
from rootmail.adapters.dynamodb.deliveries import DeliveryGuard
from rootmail.adapters.dynamodb.ledger import Ledger
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
