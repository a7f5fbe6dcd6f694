"""Bounces and complaints: which addresses SES tells us to stop sending to, and the list that remembers them."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from rootmail.adapters.suppressions import SuppressionList
from rootmail.domain.ses_events import Suppression, suppressions_from


def bounce(kind: str = "Permanent", *addresses: str) -> str:
    return json.dumps(
        {
            "eventType": "Bounce",
            "mail": {
                "messageId": "0100-ses-id",
                "headers": [{"name": "X-Rootmail-Mail-Id", "value": "mail-42"}],
            },
            "bounce": {
                "bounceType": kind,
                "bounceSubType": "General",
                "bouncedRecipients": [
                    {"emailAddress": a, "diagnosticCode": "smtp; 550 5.1.1 user unknown"} for a in addresses
                ],
            },
        }
    )


def test_a_permanent_bounce_suppresses_each_bounced_address():
    found = suppressions_from(bounce("Permanent", "Gone@Customer.example", "old@customer.example"))
    assert [s.address for s in found] == ["gone@customer.example", "old@customer.example"]
    assert found[0] == Suppression(
        "gone@customer.example",
        "bounce",
        "permanent bounce (General): smtp; 550 5.1.1 user unknown",
        "0100-ses-id",
        "mail-42",
    )


def test_a_transient_bounce_suppresses_nothing():
    assert suppressions_from(bounce("Transient", "full@customer.example")) == []


def test_a_complaint_suppresses_the_complaining_address():
    message = {
        "notificationType": "Complaint",
        "mail": {"messageId": "m"},
        "complaint": {
            "complaintFeedbackType": "abuse",
            "complainedRecipients": [{"emailAddress": "a@c.example"}],
        },
    }
    (found,) = suppressions_from(message)
    assert (found.address, found.kind, found.reason) == ("a@c.example", "complaint", "complaint (abuse)")


@pytest.mark.parametrize("message", ["not json", "[]", json.dumps({"eventType": "Delivery"}), "{}"])
def test_anything_else_suppresses_nothing(message):
    assert suppressions_from(message) == []


@pytest.fixture
def suppressions(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        dynamodb.create_table(
            TableName="s",
            KeySchema=[{"AttributeName": "address", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "address", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield SuppressionList(dynamodb, "s")


def test_an_address_is_suppressed_once_until_an_operator_clears_it(suppressions):
    (gone,) = suppressions_from(bounce("Permanent", "gone@customer.example"))
    assert suppressions.suppress(gone) is True
    assert suppressions.suppress(gone) is False  # a second bounce: no second alert
    assert suppressions.suppressed(["ok@customer.example", "GONE@customer.example"]) == {
        "gone@customer.example"
    }
    assert suppressions.clear("gone@customer.example", "operator-1") is True
    assert suppressions.suppressed(["gone@customer.example"]) == set()
    assert suppressions.clear("gone@customer.example", "operator-1") is False
    (record,) = list(suppressions.list())
    assert record["cleared_by"] == "operator-1" and record["reason"].startswith("permanent bounce")
    assert suppressions.suppress(gone) is True  # it bounces again later: suppressed again


def test_many_addresses_are_checked_in_batches(suppressions):
    addresses = [f"c{i}@customer.example" for i in range(250)]
    for address in addresses[::50]:
        suppressions.suppress(Suppression(address, "bounce", "r", None, None))
    assert suppressions.suppressed(addresses) == set(addresses[::50])
