"""The accounts sync against moto's Organizations, Account Management and DynamoDB: paging, throttling, partial
failures, the management role, the contacts rotation, the time budget, batched writes, the refresh marker, the CLI.

Throttling is injected on the wire: a botocore `before-send` hook answers some requests with Organizations'
TooManyRequestsException, so the SDK's own retries handle it as they would on AWS (their sleeps are skipped here).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from rootmail.adapters.dynamodb.accounts import AccountsTable
from rootmail.adapters.organizations import Organization
from rootmail.app.accounts_sync import SyncOptions, SyncReport, sync_accounts
from rootmail.app.ports import ManagedOrganization
from rootmail.bootstrap import Runtime
from rootmail.config import Settings
from rootmail.domain.accounts import Account
from rootmail.domain.sync_plan import hour_index, refresh_slot
from rootmail.entrypoints.cli import main
from rootmail_local.organization import (
    LocalOrganization,
    SeedAccount,
    create_accounts_table,
    synthetic_organization,
)

MANAGEMENT = (
    "123456789012"  # moto's default account: these tests call Organizations as the management account
)
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
TABLE = "rootmail-test-accounts"
RETRYING = Config(retries={"mode": "standard", "max_attempts": 5})


@pytest.fixture
def org(aws) -> LocalOrganization:
    organization = LocalOrganization(MANAGEMENT)
    organization.create(email="aws-root+management@provider.example", name="management")
    organization.add(synthetic_organization(120))
    return organization


def new_table(name: str = TABLE) -> AccountsTable:
    dynamodb = boto3.client("dynamodb")
    create_accounts_table(dynamodb, name)
    return AccountsTable(dynamodb, name, sleep=lambda _: None)


def organization(*, concurrency: int = 4, **kwargs: Any) -> Organization:
    return Organization(
        boto3.client("organizations", config=RETRYING),
        boto3.client("account", config=RETRYING),
        concurrency=concurrency,
        **kwargs,
    )


def run(table: AccountsTable, source: Organization | None = None, **options: Any) -> SyncReport:
    now = options.pop("now", NOW)
    deadline = options.pop("deadline", None)
    organizations = [ManagedOrganization.of("main", source or organization())]
    return sync_accounts(organizations, table, SyncOptions(**options), now=now, deadline=deadline)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **kwargs: Any) -> Iterator[bytes]:
        yield self._body


def throttle(client: Any, operation: str, when: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """Answer the matching requests with a throttling error, before they reach moto. Returns what was refused."""
    refused: list[dict[str, Any]] = []
    service = client.meta.service_model.service_id.hyphenize()

    def handler(request: Any, **_: Any) -> AWSResponse | None:
        body = json.loads(request.body or b"{}")
        if not when(body):
            return None
        refused.append(body)
        error = {"__type": "TooManyRequestsException", "message": "Rate exceeded"}
        headers = {
            "x-amzn-ErrorType": "TooManyRequestsException",
            "Content-Type": "application/x-amz-json-1.1",
        }
        return AWSResponse(request.url, 400, headers, _Raw(json.dumps(error).encode()))

    client.meta.events.register_first(f"before-send.{service}.{operation}", handler)
    return refused


def first_time_only() -> Callable[[dict[str, Any]], bool]:
    seen: set[str] = set()

    def when(body: dict[str, Any]) -> bool:
        key = json.dumps(body, sort_keys=True)
        if key in seen:
            return False
        seen.add(key)
        return True

    return when


def every(n: int, when: Callable[[dict[str, Any]], bool]) -> Callable[[dict[str, Any]], bool]:
    count = Counter[str]()

    def matcher(body: dict[str, Any]) -> bool:
        count["all"] += 1
        return count["all"] % n == 0 and when(body)

    return matcher


# ---- the sync itself ------------------------------------------------------------------------------------------


def test_the_first_sync_writes_every_account_with_its_contacts_and_language(org):
    table = new_table()
    report = run(table)
    stored = table.load_accounts()
    assert report.listing_complete and not report.partial_failure
    assert len(stored) == report.listed == len(report.added) == report.items_written == 121
    tagged = stored["200000000003"]  # tags: a contacts list, language ja
    assert tagged.contacts.all() == ("ops@customer00003.example", "cloud@customer00003.example")
    assert (tagged.language, tagged.contacts_from) == ("ja", "tags")
    per_kind = stored["200000000090"]  # tags per kind
    assert per_kind.contacts.security == ("security@customer00090.example",)
    assert per_kind.contacts.billing == ("billing@customer00090.example",)
    alternate = stored["200000000095"]  # alternate contacts only, no billing contact
    assert alternate.contacts.operations == ("noc@customer00095.example",)
    assert alternate.contacts.security == ("soc@customer00095.example",)
    assert alternate.contacts.billing == () and alternate.contacts_from == "alternate-contacts"
    assert not stored["200000000098"].contacts  # nothing set anywhere
    suspended = stored["200000000007"]
    assert suspended.status == "SUSPENDED" and suspended.inactive_since == "2026-11-23T10:00:00Z"
    assert stored["200000000011"].inactive_reason == "PENDING_CLOSURE in Organizations"
    assert report.api_calls["ListTagsForResource"] == 121


def test_a_second_sync_with_no_change_writes_nothing_and_reads_only_a_slice_of_contacts(org):
    table = new_table()
    run(table)
    again = run(table, now=NOW + timedelta(minutes=5))
    assert again.items_to_write == again.items_written == 0
    assert (len(again.added), len(again.changed), len(again.deactivated)) == (0, 0, 0)
    assert again.unchanged == 121
    hour = hour_index(NOW, 24)
    expected = [a for a, acc in table.load_accounts().items() if acc.active and refresh_slot(a, 24) == hour]
    assert again.details_read == len(expected) < 121 / 6
    assert "BatchWriteItem" not in again.api_calls


def test_an_empty_page_with_a_next_token_is_not_the_end(org):
    class EmptyPagesFirst:
        """ListAccounts as a large organisation may answer it: an empty page, with a NextToken, before each page."""

        def __init__(self, client: Any) -> None:
            self._client = client
            self.pages = 0

        def list_accounts(self, **params: Any) -> dict[str, Any]:
            token = params.get("NextToken")
            self.pages += 1
            if token is None or not token.startswith("empty:"):
                return {"Accounts": [], "NextToken": f"empty:{token or ''}"}
            real = token.removeprefix("empty:")
            return self._client.list_accounts(**({"NextToken": real} if real else {}), MaxResults=20)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._client, name)

    listing = EmptyPagesFirst(boto3.client("organizations"))
    table = new_table()
    report = run(table, Organization(listing, boto3.client("account")))
    assert report.listing_complete and len(table.load_accounts()) == 121
    assert report.pages == listing.pages == 2 * 7  # seven pages of up to 20, each after an empty one


def test_a_failed_page_leaves_the_listing_incomplete_and_deactivates_nothing(org, no_sdk_retry_sleep):
    table = new_table()
    run(table)
    management = boto3.client("organizations")
    for account_id in ("200000000001", "200000000002"):
        management.remove_account_from_organization(AccountId=account_id)
    source = organization()
    refused = throttle(source._organizations, "ListAccounts", lambda body: "NextToken" in body)
    report = run(table, source, now=NOW + timedelta(hours=1))
    assert refused and not report.listing_complete and report.partial_failure
    assert "TooManyRequestsException" in (report.listing_error or "")
    assert report.deactivated == [] and report.items_written == 0
    assert table.stored("200000000001").active
    later = run(table, now=NOW + timedelta(hours=2))
    assert sorted(later.deactivated) == ["200000000001", "200000000002"]
    assert table.stored("200000000001").inactive_reason == "left the organisation"


def test_an_empty_listing_is_never_a_complete_one(aws):
    table = new_table()
    table.put_all([Account("200000000001", "a@provider.example")])
    report = run(table)  # this account has no organisation: nothing listed
    assert not report.listing_complete and "listed no account" in report.listing_error
    assert report.deactivated == [] and table.stored("200000000001").active


def test_the_sync_s_clients_retry_throttling_adaptively(aws):
    source = Runtime(Settings(sync_concurrency=8)).organizations()[0].connect()
    for client in (source._organizations, source._account):
        assert client.meta.config.retries["mode"] == "adaptive"
        assert client.meta.config.max_pool_connections >= 8
    assert source.concurrency == 8


def test_throttled_calls_are_retried_and_the_table_ends_complete_and_correct(org, no_sdk_retry_sleep):
    reference = new_table("reference")
    run(reference)
    source = organization(concurrency=4)
    refused = [
        throttle(source._organizations, "ListAccounts", first_time_only()),
        throttle(source._organizations, "ListTagsForResource", every(5, first_time_only())),
        throttle(source._account, "GetAlternateContact", every(3, first_time_only())),
    ]
    table = new_table()
    report = run(table, source)
    assert all(refused), "every kind of call was throttled at least once"
    assert report.sdk_retries == sum(len(r) for r in refused)
    assert not report.partial_failure
    assert table.load_accounts() == reference.load_accounts()


def test_throttling_that_outlasts_the_retries_is_reported_and_the_next_run_completes(org, no_sdk_retry_sleep):
    stubborn = {"200000000004", "200000000095"}  # one tagged account, one with alternate contacts
    source = organization()
    throttle(source._organizations, "ListTagsForResource", lambda body: body["ResourceId"] in stubborn)
    table = new_table()
    report = run(table, source)
    assert report.partial_failure and set(report.details_failed) == stubborn
    assert all(e.startswith("TooManyRequestsException") for e in report.details_failed.values())
    assert len(table.load_accounts()) == 121  # every account written, the two without their contacts yet
    assert all(table.stored(a).details_pending and not table.stored(a).contacts for a in stubborn)
    assert "contacts not read for 2 account(s) (TooManyRequestsException)" in report.summary_lines()[-1]
    healed = run(table, now=NOW + timedelta(hours=1))
    assert sorted(healed.changed_ids) == sorted(stubborn) and not healed.partial_failure
    assert table.stored("200000000095").contacts.security == ("soc@customer00095.example",)
    assert run(table, now=NOW + timedelta(hours=2)).items_written == 0


def test_the_management_account_s_own_contacts_are_read_without_account_id(aws):
    local = LocalOrganization(MANAGEMENT)
    local.create(email="root@provider.example", name="management")
    local.add(
        [
            SeedAccount(
                MANAGEMENT,
                "root@provider.example",
                "management",
                alternate_contacts={"security": "soc@p.example"},
            ),
            SeedAccount(
                "200000000001", "a@provider.example", "a", alternate_contacts={"operations": "ops@a.example"}
            ),
        ]
    )
    source = organization()
    calls: list[dict[str, Any]] = []
    source._account.meta.events.register(
        "before-call.account.GetAlternateContact",
        lambda params, **_: calls.append(json.loads(params["body"])),
    )
    table = new_table()
    run(table, source)
    assert {c.get("AccountId") for c in calls} == {None, "200000000001"}
    assert table.stored(MANAGEMENT).contacts.security == ("soc@p.example",)
    assert table.stored("200000000001").contacts.operations == ("ops@a.example",)


def test_the_sync_reaches_the_management_account_through_the_configured_role(aws):
    management = "998877665544"
    local = LocalOrganization(management)
    local.create(email="root@provider.example", name="management")
    local.add(synthetic_organization(5))
    new_table()
    settings = Settings(accounts_table=TABLE, organizations=f"arn:aws:iam::{management}:role/rootmail-reader")
    runtime = Runtime(settings)
    report = sync_accounts(runtime.organizations(), runtime.accounts, SyncOptions(), now=NOW)
    assert report.listing_complete and len(report.added) == 6
    assert runtime.accounts.stored(management).email == "root@provider.example"
    assert boto3.client("organizations").list_accounts()["Accounts"] == []  # the default account has none


def test_contacts_changed_outside_this_hour_s_slice_wait_for_their_turn_unless_named(org):
    table = new_table()
    run(table)
    hour = hour_index(NOW, 24)
    later = next(
        a
        for a, account in sorted(table.load_accounts().items())
        if account.active
        and account.contacts_from == "tags"
        and refresh_slot(a, 24) not in (hour, (hour + 1) % 24)
    )
    boto3.client("organizations").tag_resource(
        ResourceId=later, Tags=[{"Key": "rootmail:contacts", "Value": "new@customer.example"}]
    )
    assert run(table, now=NOW + timedelta(minutes=10)).changed == []
    turn = NOW + timedelta(hours=(refresh_slot(later, 24) - hour) % 24)
    picked = run(table, now=turn)
    assert picked.changed == [(later, ("contacts",))]
    assert table.stored(later).contacts.all() == ("new@customer.example",)
    boto3.client("organizations").tag_resource(
        ResourceId=later,
        Tags=[
            {"Key": "rootmail:language", "Value": "en"},
            {"Key": "rootmail:contacts", "Value": "x@c.example"},
        ],
    )
    named = run(table, now=NOW + timedelta(minutes=20), forced=(later,))
    assert named.changed_ids == [later]


def test_the_run_stops_reading_organizations_when_its_time_is_up(org):
    clock = iter(range(1000))
    late = organization(clock=lambda: float(next(clock)))
    table = new_table()
    report = run(table, late, deadline=0.5)  # the clock reads 0 before the first page, 1 before the second
    assert not report.listing_complete and report.listing_error.startswith("main: time was up")
    assert report.details_read == 0 and len(report.details_skipped) == report.listed > 0
    assert report.partial_failure and report.deactivated == []
    assert all(a.details_pending for a in table.load_accounts().values())  # written; contacts next run


def test_a_budget_leaves_new_accounts_for_the_next_run(org):
    table = new_table()
    report = run(table, budget=50)
    assert report.details_read == 50 and len(report.details_deferred) == 71
    assert not report.partial_failure  # deferred by design, not failed
    assert sum(a.details_pending for a in table.load_accounts().values()) == 71
    follow_up = run(table, now=NOW + timedelta(hours=1))
    assert sorted(follow_up.changed_ids) == sorted(report.details_deferred)
    assert not any(a.details_pending for a in table.load_accounts().values())


def test_unprocessed_items_are_retried_a_few_times_then_reported(aws):
    dynamodb = boto3.client("dynamodb")
    create_accounts_table(dynamodb, TABLE)

    class Stingy:
        """BatchWriteItem leaving a whole request unprocessed, `times` times in a row (DynamoDB under load)."""

        def __init__(self, times: int) -> None:
            self.times, self.calls = times, 0

        def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
            self.calls += 1
            if self.times:
                self.times -= 1
                return {"UnprocessedItems": RequestItems}
            return dynamodb.batch_write_item(RequestItems=RequestItems)

    accounts = [Account(f"{n:012d}", f"r{n}@p.example") for n in range(30)]
    patient = Stingy(times=3)
    result = AccountsTable(patient, TABLE, sleep=lambda _: None).write(accounts)
    assert (result.written, result.failed, result.requests) == (
        30,
        (),
        5,
    )  # 2 batches, the first retried 3 times
    assert len(AccountsTable(dynamodb, TABLE).load_accounts()) == 30
    stubborn = Stingy(times=100)
    result = AccountsTable(stubborn, TABLE, sleep=lambda _: None).write(accounts[:5])
    assert result.written == 0 and sorted(result.failed) == [a.account_id for a in accounts[:5]]
    assert stubborn.calls == AccountsTable.UNPROCESSED_ATTEMPTS


def test_one_refresh_per_window_and_a_crashed_one_is_taken_over(aws):
    table = new_table()
    window = timedelta(minutes=5)
    first = table.claim_refresh(NOW, window)
    assert first.claimed
    running = table.claim_refresh(NOW + timedelta(seconds=10), window)
    assert (running.claimed, running.state, running.started_at) == (False, "running", first.started_at)
    table.finish_refresh(first, NOW + timedelta(seconds=40), {"added": 1})
    done = table.claim_refresh(NOW + timedelta(seconds=50), window)
    assert (done.claimed, done.state) == (False, "done") and done.finished_at
    assert table.claim_refresh(NOW + window + timedelta(seconds=1), window).claimed
    crashed = table.claim_refresh(NOW + 3 * window, window)  # the previous claimer never finished
    assert crashed.claimed
    assert table.load_accounts() == {}  # the marker is not an account


# ---- the command line -------------------------------------------------------------------------------------------


def test_accounts_commands_sync_list_show_and_override(org, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ROOTMAIL_ACCOUNTS_TABLE", TABLE)
    from rootmail.config import get_settings

    get_settings.cache_clear()
    new_table()
    assert main(["accounts", "sync", "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert "dry run: 121 item(s) would be written" in out and "listing: 121/121 accounts" in err
    assert AccountsTable(boto3.client("dynamodb"), TABLE).load_accounts() == {}

    assert main(["accounts", "sync"]) == 0
    out, err = capsys.readouterr()
    assert "added 121, changed 0, deactivated 0, unchanged 0" in out
    assert "items written 121 of 121" in out and "partial failures: none" in out
    assert "API calls" in out and "duration" in out and "details: 121/121" in err

    assert main(["accounts", "list", "--inactive"]) == 0
    listed = capsys.readouterr().out
    assert (
        "200000000007" in listed and "SUSPENDED in Organizations" in listed and "200000000003" not in listed
    )

    overrides = tmp_path / "overrides.json"
    overrides.write_text(
        json.dumps({"200000000003": {"security": ["soc@override.example"]}}), encoding="utf-8"
    )
    assert main(["accounts", "override", str(overrides)]) == 0
    assert "set 1 override(s)" in capsys.readouterr().out
    assert main(["accounts", "show", "aws-root+c00003@provider.example", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["stored"]["contacts"] == ["ops@customer00003.example", "cloud@customer00003.example"]
    assert shown["effective"]["contacts"]["security"] == ["soc@override.example"]
    assert shown["effective"]["language"] == "ja"

    assert main(["accounts", "show", "999999999999"]) == 1
    assert "no such account" in capsys.readouterr().err
    overrides.write_text(json.dumps({"200000000003": {"language": "klingon"}}), encoding="utf-8")
    assert main(["accounts", "override", str(overrides)]) == 2
    assert "account 200000000003: language 'klingon'" in capsys.readouterr().err
    get_settings.cache_clear()


def test_accounts_commands_need_a_table(aws, capsys, monkeypatch):
    monkeypatch.delenv("ROOTMAIL_ACCOUNTS_TABLE", raising=False)
    from rootmail.config import get_settings

    get_settings.cache_clear()
    assert main(["accounts", "sync"]) == 2
    assert "ROOTMAIL_ACCOUNTS_TABLE is not set" in capsys.readouterr().err
    get_settings.cache_clear()
