"""An organisation of 2,500 member accounts on moto (125 ListAccounts pages, 101 BatchWriteItem calls; `make bench`
runs the same sync over 10,000 and records its figures): the first sync writes every account, a second one with no
change writes nothing, changes made between runs (accounts added, removed, suspended, renamed, re-tagged) are picked
up exactly, and inactive accounts still resolve their old mail.

The three syncs run once, in a module fixture; each test checks one fact of them. moto makes this slow, not the
sync: its ListAccounts describes every account for each page, each call costs a few milliseconds in process, and a
scan serialises every item (see `make bench` for the figures). moto finds a request's account by scanning every
account's IAM keys, and each member account has IAM (moto creates its OrganizationAccountAccessRole), so the
requests are pinned to the management account with moto's MOTO_ACCOUNT_ID.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from rootmail.adapters.dynamodb.accounts import AccountsTable
from rootmail.adapters.organizations import Organization
from rootmail.app.accounts_sync import SyncOptions, SyncReport, sync_accounts
from rootmail.app.ports import ManagedOrganization
from rootmail.domain.mail.model import ParsedMail
from rootmail.domain.routing import RoutingPolicy, resolve
from rootmail.domain.sync_plan import hour_index, refresh_slot
from rootmail_local.organization import (
    LocalOrganization,
    SeedAccount,
    create_accounts_table,
    synthetic_organization,
)

SIZE = 2_500
MANAGEMENT = "123456789012"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@dataclass
class Scale:
    table: AccountsTable
    seeds: dict[str, SeedAccount]
    first: SyncReport
    second: SyncReport
    third: SyncReport
    added: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
    suspended: set[str] = field(default_factory=set)
    renamed: set[str] = field(default_factory=set)
    retagged_now: set[str] = field(default_factory=set)  # in this hour's slice: re-read this run
    retagged_later: set[str] = field(default_factory=set)  # outside it: re-read at their hour


def _sync(table: AccountsTable, now: datetime) -> SyncReport:
    # One thread: moto runs in this process, so more threads only contend for the interpreter.
    source = Organization(boto3.client("organizations"), boto3.client("account"), concurrency=1)
    return sync_accounts([ManagedOrganization.of("main", source)], table, SyncOptions(), now=now)


@pytest.fixture(scope="module")
def scale() -> Iterator[Scale]:
    with pytest.MonkeyPatch.context() as env:
        for name, value in {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "MOTO_ACCOUNT_ID": MANAGEMENT,
        }.items():
            env.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
            env.delenv(name, raising=False)
        with mock_aws():
            organization = LocalOrganization(MANAGEMENT)
            organization.create(email="aws-root+management@provider.example", name="management")
            seeds = synthetic_organization(SIZE)
            organization.add(seeds)
            dynamodb = boto3.client("dynamodb")
            create_accounts_table(dynamodb, "accounts")
            table = AccountsTable(dynamodb, "accounts")

            first = _sync(table, NOW)
            second = _sync(table, NOW + timedelta(minutes=5))
            changes = _change(organization, {s.account_id: s for s in seeds})
            third = _sync(table, NOW + timedelta(minutes=10))
            yield Scale(table, {s.account_id: s for s in seeds}, first, second, third, **changes)


def _change(organization: LocalOrganization, seeds: dict[str, SeedAccount]) -> dict[str, set[str]]:
    """Between the second and third runs: what an organisation of this size sees in an hour, and then some."""
    client = boto3.client("organizations")
    hour = hour_index(NOW, 24)
    active = [a for a, s in sorted(seeds.items()) if s.status == "ACTIVE"]
    tagged = [a for a in active if "rootmail:contacts" in seeds[a].tags and len(seeds[a].tags) <= 2]
    removed, suspended, renamed = set(active[0:40]), set(active[40:70]), set(active[70:90])
    now_slice = [a for a in tagged[200:] if refresh_slot(a, 24) == hour][:15]
    later = [a for a in tagged[200:] if refresh_slot(a, 24) not in (hour, (hour + 1) % 24)][:15]
    for account_id in removed:
        client.remove_account_from_organization(AccountId=account_id)
    for account_id in suspended:
        client.close_account(AccountId=account_id)
    for account_id in renamed:
        organization.rename(account_id, f"renamed-{account_id}")
    for account_id in [*now_slice, *later]:
        client.tag_resource(
            ResourceId=account_id, Tags=[{"Key": "rootmail:contacts", "Value": f"new-{account_id}@c.example"}]
        )
    added = [
        SeedAccount(
            f"{300000000000 + i:012d}",
            f"aws-root+new{i}@provider.example",
            f"new-{i}",
            tags={"rootmail:contacts": f"n{i}@c.example"},
        )
        for i in range(25)
    ]
    organization.add(added)
    return {
        "added": {a.account_id for a in added},
        "removed": removed,
        "suspended": suspended,
        "renamed": renamed,
        "retagged_now": set(now_slice),
        "retagged_later": set(later),
    }


def test_the_first_sync_writes_every_account(scale):
    first = scale.first
    assert first.listing_complete and not first.partial_failure
    assert first.listed == len(first.added) == first.items_written == SIZE + 1  # and the management account
    assert first.details_read == SIZE + 1
    assert first.api_calls["BatchWriteItem"] == (SIZE + 1 + 24) // 25
    assert first.api_calls["ListTagsForResource"] == SIZE + 1


def test_a_second_sync_with_no_change_writes_nothing(scale):
    second = scale.second
    assert second.listing_complete and not second.partial_failure
    assert second.items_to_write == second.items_written == 0 and "BatchWriteItem" not in second.api_calls
    assert (second.added, second.changed, second.deactivated) == ([], [], [])
    assert second.unchanged == SIZE + 1
    # The listing, plus this hour's slice of contacts (1/24 of the active accounts): no call per account.
    assert second.details_read < (SIZE + 1) / 20
    assert second.api_calls["ListAccounts"] == scale.first.api_calls["ListAccounts"]


def test_changes_between_runs_are_picked_up_exactly(scale):
    third = scale.third
    assert third.listing_complete and not third.partial_failure
    assert set(third.added) == scale.added
    assert set(third.deactivated) == scale.removed
    changed = dict(third.changed)
    assert set(changed) == scale.suspended | scale.renamed | scale.retagged_now
    assert all(changed[a] == ("inactive_reason", "inactive_since", "status") for a in scale.suspended)
    assert all(changed[a] == ("name",) for a in scale.renamed)
    assert all(changed[a] == ("contacts",) for a in scale.retagged_now)
    assert not scale.retagged_later & set(changed)  # their contacts are re-read at their hour, not before
    assert third.items_written == len(scale.added) + len(changed) + len(scale.removed)
    assert third.unchanged == SIZE + 1 - len(changed) - len(scale.removed)
    account = scale.table.stored(sorted(scale.retagged_now)[0])
    assert account.contacts.all() == (f"new-{account.account_id}@c.example",)


def test_inactive_accounts_still_resolve_old_mail(scale):
    table = scale.table
    gone, suspended = sorted(scale.removed)[0], sorted(scale.suspended)[0]
    for account_id, reason in ((gone, "left the organisation"), (suspended, "SUSPENDED in Organizations")):
        seed = scale.seeds[account_id]
        account = table.by_email(seed.email)
        assert account is not None and account.account_id == account_id
        assert not account.active and account.inactive_reason == reason
        assert account.contacts  # old mail still reaches the customer
        mail = ParsedMail(envelope_recipient=seed.email, account_ids=[account_id])
        resolution = resolve(mail, table, RoutingPolicy())
        assert resolution.account_ids == (account_id,) and resolution.envelope_known
        assert any("inactive since" in note for note in resolution.notes)
    pages = boto3.client("dynamodb").get_paginator("scan").paginate(TableName="accounts", Select="COUNT")
    assert sum(page["Count"] for page in pages) == SIZE + 1 + len(scale.added)  # nothing was ever deleted
