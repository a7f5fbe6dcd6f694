"""Several organisations in one accounts table, and accounts imported from outside them.

First the use case over in-memory organisations (fast: every rule of the plan), then the real adapters over moto:
two organisations in two management accounts, each read through the role the configuration names, and the
`rootmail accounts import` / `accounts list --source` commands.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from fakes import Accounts, Organization
from rootmail.adapters.dynamodb.accounts import AccountsTable
from rootmail.app.accounts_import import import_accounts
from rootmail.app.accounts_sync import SyncOptions, sync_accounts
from rootmail.app.ports import ManagedOrganization
from rootmail.bootstrap import Runtime
from rootmail.config import Settings
from rootmail.domain.accounts import LEFT_ORGANIZATION, Account, Contacts
from rootmail.domain.sync_plan import AccountDetails, ListedAccount
from rootmail.entrypoints.cli import main
from rootmail.errors import OrganizationsUnavailable
from rootmail_local.organization import LocalOrganization, SeedAccount, create_accounts_table

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
EMEA, APAC = "111111111111", "222222222222"  # management accounts


def listed(account_id: str, management: str) -> ListedAccount:
    return ListedAccount(
        account_id, f"root+{account_id}@provider.example", f"n{account_id}", "ACTIVE", management
    )


def details(address: str) -> AccountDetails:
    return AccountDetails(Contacts.for_all([address]), "en", "tags")


def organization(management: str, *account_ids: str, contact: str = "ops") -> Organization:
    accounts = [listed(management, management), *(listed(a, management) for a in account_ids)]
    return Organization(
        accounts, {a.account_id: details(f"{contact}@{a.account_id}.example") for a in accounts}
    )


def sync(table: Accounts, organizations: dict[str, Organization], *, at: datetime = NOW, **options: Any):
    managed = [ManagedOrganization.of(name, o) for name, o in organizations.items()]
    return sync_accounts(managed, table, SyncOptions(**options), now=at)


IMPORTED_ACCOUNT = Account(
    "333333333333",
    "root@customer-owned.example",
    "customer-owned",
    contacts=Contacts.for_all(["it@customer-owned.example"]),
    imported=True,
    contacts_from="import",
)


# ---- the use case over in-memory organisations ---------------------------------------------------------------


def test_two_organisations_fill_one_table_each_item_saying_which_organisation_lists_it():
    table = Accounts()
    emea, apac = organization(EMEA, "100000000001", "100000000002"), organization(APAC, "200000000001")
    report = sync(table, {"emea": emea, "apac": apac})
    stored = table.load_accounts()
    assert len(stored) == 5 and report.listing_complete and not report.partial_failure
    assert {a: s.organization for a, s in stored.items()} == {
        EMEA: "emea",
        "100000000001": "emea",
        "100000000002": "emea",
        APAC: "apac",
        "200000000001": "apac",
    }
    assert stored["200000000001"].contacts.operations == ("ops@200000000001.example",)
    per = report.to_dict()["organizations"]
    assert list(per) == ["emea", "apac"]  # in the configuration's order, though listed at once
    assert (per["emea"]["listed"], per["emea"]["added"], per["emea"]["items_written"]) == (3, 3, 3)
    assert (per["apac"]["listed"], per["apac"]["added"], per["apac"]["items_written"]) == (2, 2, 2)
    assert any(
        line.startswith("organization apac: listing complete, 2 accounts") for line in report.summary_lines()
    )
    again = sync(table, {"emea": emea, "apac": apac}, at=NOW + timedelta(hours=1))
    assert again.items_to_write == 0 and again.unchanged == 5  # an unchanged run writes nothing


@pytest.mark.parametrize("failure", ["listing", "role"])
def test_one_organisation_failing_leaves_its_accounts_and_every_other_s_untouched(failure):
    table = Accounts()
    emea, apac = organization(EMEA, "100000000001", "100000000002"), organization(APAC, "200000000001")
    sync(table, {"emea": emea, "apac": apac})
    before = table.load_accounts()
    # EMEA gains an account and loses one; APAC cannot be read (throttled to the end, or its role removed).
    emea.accounts = [a for a in emea.accounts if a.account_id != "100000000002"] + [
        listed("100000000003", EMEA)
    ]
    emea.details["100000000003"] = details("ops@100000000003.example")
    organizations: dict[str, Any] = {"emea": emea}
    if failure == "listing":
        apac.failure = "ListAccounts page 1: TooManyRequestsException: Rate exceeded"
        organizations["apac"] = apac
        managed = [ManagedOrganization.of(name, o) for name, o in organizations.items()]
    else:

        def refused() -> Organization:
            raise OrganizationsUnavailable(
                "cannot assume arn:aws:iam::222222222222:role/r for organization apac"
            )

        managed = [ManagedOrganization.of("emea", emea), ManagedOrganization("apac", refused)]
    report = sync_accounts(managed, table, SyncOptions(), now=NOW + timedelta(hours=1))
    after = table.load_accounts()
    assert report.added == ["100000000003"] and after["100000000003"].organization == "emea"
    assert report.deactivated == []  # the account EMEA lost may have moved to APAC: nothing is deactivated
    for account_id in ("100000000002", APAC, "200000000001"):
        assert after[account_id] == before[account_id]
    per = report.to_dict()["organizations"]
    assert per["emea"]["listing_complete"] and not per["apac"]["listing_complete"]
    assert per["apac"]["listing_error"].startswith(
        "ListAccounts page 1" if failure == "listing" else "cannot assume"
    )
    assert report.partial_failure and report.listing_error.startswith("apac: ")
    assert "the listing of apac did not complete, so no account was deactivated" in report.summary_lines()[-1]
    # APAC answers again: the account EMEA lost is in no listing, so it has left.
    apac.failure = None
    healed = sync(table, {"emea": emea, "apac": apac}, at=NOW + timedelta(hours=2))
    assert healed.deactivated == ["100000000002"] and not healed.partial_failure


def test_an_account_moving_between_organisations_is_updated_and_read_through_its_new_one():
    table = Accounts()
    emea, apac = organization(EMEA, "100000000001"), organization(APAC, "200000000001", contact="apac")
    sync(table, {"emea": emea, "apac": apac})
    moving = emea.accounts.pop()  # 100000000001 leaves EMEA and joins APAC
    apac.accounts.append(listed(moving.account_id, APAC))
    apac.details[moving.account_id] = details("new-owner@apac.example")
    report = sync(table, {"emea": emea, "apac": apac}, at=NOW + timedelta(minutes=10))
    stored = table.load_accounts()
    assert len(stored) == 4 and stored[moving.account_id].organization == "apac"
    assert stored[moving.account_id].active and stored[moving.account_id].contacts.all() == (
        "new-owner@apac.example",
    )
    assert report.moved == [(moving.account_id, "emea", "apac")] and report.deactivated == []
    assert report.to_dict()["organizations"]["apac"]["moved_in"] == 1
    # Both listings name it for a while (each answered at its own moment): the organisation it is recorded in
    # keeps it, so it does not flap.
    emea.accounts.append(listed(moving.account_id, EMEA))
    for order, minutes in (({"emea": emea, "apac": apac}, 20), ({"apac": apac, "emea": emea}, 30)):
        again = sync(table, order, at=NOW + timedelta(minutes=minutes))
        assert again.moved == [] and table.load_accounts()[moving.account_id].organization == "apac"


def test_imported_accounts_survive_every_sync_and_an_organisation_listing_one_takes_it_over():
    table = Accounts([IMPORTED_ACCOUNT])
    emea = organization(EMEA, "100000000001")
    for hour in range(3):
        report = sync(table, {"emea": emea}, at=NOW + timedelta(hours=hour))
        assert report.listing_complete and report.deactivated == []
        assert table.load_accounts()["333333333333"] == IMPORTED_ACCOUNT
    emea.accounts.append(listed("333333333333", EMEA))
    emea.details["333333333333"] = details("cloud@emea.example")
    report = sync(table, {"emea": emea}, at=NOW + timedelta(hours=4))
    taken = table.load_accounts()["333333333333"]
    assert report.moved == [("333333333333", "imported", "emea")]
    assert (taken.imported, taken.organization, taken.contacts.all()) == (
        False,
        "emea",
        ("cloud@emea.example",),
    )


# ---- importing --------------------------------------------------------------------------------------------------

GOOD_CSV = """account_id,root_address,name,contacts,security,language
333333333333,Root@Customer-Owned.example,customer-owned,it@customer-owned.example,,ja
444444444444,root@standalone.example,standalone,ops@standalone.example noc@standalone.example,soc@standalone.example,
"""


def test_an_import_file_puts_its_accounts_in_the_table_marked_imported():
    table = Accounts()
    report = import_accounts(table, GOOD_CSV, json_format=False)
    assert report.ok and report.added == ["333333333333", "444444444444"] and report.written == 2
    owned, standalone = table.load_accounts()["333333333333"], table.load_accounts()["444444444444"]
    assert (owned.email, owned.language, owned.imported, owned.source) == (
        "root@customer-owned.example",
        "ja",
        True,
        "imported",
    )
    assert standalone.contacts.operations == ("ops@standalone.example", "noc@standalone.example")
    assert standalone.contacts.security == ("soc@standalone.example",)
    again = import_accounts(table, GOOD_CSV, json_format=False)
    assert (again.added, again.updated, again.unchanged, again.written) == ([], [], 2, 0)
    changed = import_accounts(table, GOOD_CSV.replace(",ja\n", ",en\n"), json_format=False)
    assert changed.updated == ["333333333333"] and table.load_accounts()["333333333333"].language == "en"


def test_a_bad_row_is_reported_with_its_line_and_nothing_is_written_unless_partial():
    table = Accounts([Account("555555555555", "root@taken.example", organization="emea")])
    text = (
        "account_id,root_address,name,contacts,language\n"
        "333333333333,root@customer-owned.example,ok,it@customer-owned.example,en\n"
        "12345,root@short.example,,,\n"
        '"444444444444",root@multi.example,"a name\nover two lines",not-an-address,\n'
        "666666666666,root@taken.example,,,\n"
        "555555555555,root@elsewhere.example,,,\n"
        "777777777777,root@lang.example,,,klingon\n"
        "333333333333,root@again.example,,,\n"
    )
    report = import_accounts(table, text, json_format=False)
    assert [(p.line, p.message.split(":")[0]) for p in report.problems] == [
        (3, "account_id '12345' is not a 12-digit account ID"),
        (
            4,
            "a quoted value runs over lines 4–5",
        ),  # a name with a newline: an unterminated quote, most likely
        (6, "root address root@taken.example belongs to account 555555555555"),
        (7, "account 555555555555 is synced from organization emea"),
        (8, "language 'klingon'"),
        (9, "account 333333333333 again (first on line 2)"),
    ]
    assert report.refused and report.written == 0 and set(table.load_accounts()) == {"555555555555"}
    partial = import_accounts(table, text, json_format=False, partial=True)
    assert partial.written == 1 and set(table.load_accounts()) == {"555555555555", "333333333333"}


def test_a_json_import_reports_the_line_each_bad_object_starts_on():
    text = json.dumps(
        [
            {"account_id": "333333333333", "root_address": "root@a.example", "contacts": ["it@a.example"]},
            {"account_id": "444444444444", "root_address": "root@b.example", "billing": ["x"]},
            {"account_id": "555555555555", "root_address": "root@c.example", "colour": "blue"},
        ],
        indent=2,
    )
    report = import_accounts(Accounts(), text, json_format=True)
    assert [(p.line, p.message.split(":")[0]) for p in report.problems] == [
        (9, "invalid address(es)"),
        (16, "unknown field(s) colour"),
    ]
    assert report.refused and report.added == ["333333333333"]
    broken = import_accounts(Accounts(), '[\n  {"account_id": "333333333333",\n  oops\n]', json_format=True)
    assert [p.line for p in broken.problems] == [2] and broken.problems[0].message.startswith("not JSON")


# ---- the real adapters over moto: two management accounts ------------------------------------------------------


def local_organization(management: str, *account_ids: str) -> LocalOrganization:
    local = LocalOrganization(management)
    local.create(email=f"root+{management}@provider.example", name=f"management-{management}")
    local.add(
        SeedAccount(a, f"root+{a}@provider.example", f"n{a}", tags={"rootmail:contacts": f"ops@{a}.example"})
        for a in account_ids
    )
    return local


def role(management: str) -> str:
    return f"arn:aws:iam::{management}:role/rootmail-reader"


def runtime(organizations: list[dict[str, str]]) -> Runtime:
    return Runtime(Settings(accounts_table="accounts", organizations=json.dumps(organizations)))


def test_two_management_accounts_synced_through_their_roles_and_an_account_moving_between_them(aws):
    emea = local_organization(EMEA, "100000000001", "100000000002")
    local_organization(APAC, "200000000001")
    create_accounts_table(boto3.client("dynamodb"), "accounts")
    rt = runtime(
        [
            {"name": "emea", "roleArn": role(EMEA), "externalId": "rootmail-emea"},
            {"name": "apac", "roleArn": role(APAC)},
        ]
    )
    assumed: list[dict[str, Any]] = []
    session = (
        boto3.DEFAULT_SESSION
    )  # the functions' clients come from it (created above, by the table's client)
    assert session is not None
    event = "before-parameter-build.sts.AssumeRole"
    session.events.register(event, lambda params, **_: assumed.append(dict(params)), unique_id="assumed")
    try:
        first = sync_accounts(rt.organizations(), rt.accounts, SyncOptions(), now=NOW)
    finally:
        session.events.unregister(event, unique_id="assumed")
    assert sorted((a["RoleArn"], a.get("ExternalId")) for a in assumed) == [
        (role(EMEA), "rootmail-emea"),  # the external ID the emea role's trust asks for
        (role(APAC), None),
    ]
    stored = rt.accounts.load_accounts()
    assert first.listing_complete and {a: s.organization for a, s in stored.items()} == {
        EMEA: "emea",
        "100000000001": "emea",
        "100000000002": "emea",
        APAC: "apac",
        "200000000001": "apac",
    }
    assert stored["200000000001"].contacts.all() == ("ops@200000000001.example",)  # APAC's tags, through APAC
    assert stored["200000000001"].management_account == APAC  # from the listing's ARNs
    per = first.to_dict()["organizations"]
    assert per["emea"]["api_calls"]["ListAccounts"] == per["apac"]["api_calls"]["ListAccounts"] == 1
    assert boto3.client("organizations").list_accounts()["Accounts"] == []  # the stack's own account has none

    # 100000000002 leaves EMEA for APAC, with APAC's tags.
    emea.backend.remove_account_from_organization(AccountId="100000000002")
    LocalOrganization(APAC).add(
        [
            SeedAccount(
                "100000000002",
                "root+100000000002@provider.example",
                "n",
                tags={"rootmail:contacts": "apac@x.example"},
            )
        ]
    )
    moved = sync_accounts(rt.organizations(), rt.accounts, SyncOptions(), now=NOW + timedelta(hours=1))
    account = rt.accounts.stored("100000000002")
    assert moved.moved == [("100000000002", "emea", "apac")] and moved.deactivated == []
    assert (account.organization, account.active, account.contacts.all()) == (
        "apac",
        True,
        ("apac@x.example",),
    )
    assert len(rt.accounts.load_accounts()) == 5


def test_an_organisation_whose_role_lands_outside_any_organisation_deactivates_nothing(aws):
    local_organization(EMEA, "100000000001")
    local_organization(APAC, "200000000001")
    create_accounts_table(boto3.client("dynamodb"), "accounts")
    both = [{"name": "emea", "roleArn": role(EMEA)}, {"name": "apac", "roleArn": role(APAC)}]
    sync_accounts(runtime(both).organizations(), runtime(both).accounts, SyncOptions(), now=NOW)
    # APAC's role now points at an account that manages no organisation (a wrong ARN, an organisation closed).
    broken = runtime([both[0], {"name": "apac", "roleArn": role("999999999999")}])
    before = broken.accounts.load_accounts()
    report = sync_accounts(
        broken.organizations(), broken.accounts, SyncOptions(), now=NOW + timedelta(hours=1)
    )
    assert not report.organizations["apac"].listing_complete and report.organizations["emea"].listing_complete
    assert "apac: ListAccounts" in (report.listing_error or "")
    assert report.deactivated == [] and broken.accounts.load_accounts() == before


def test_accounts_import_and_list_by_source_from_the_command_line(aws, tmp_path, capsys, monkeypatch):
    local_organization(EMEA, "100000000001")
    create_accounts_table(boto3.client("dynamodb"), "accounts")
    monkeypatch.setenv("ROOTMAIL_ACCOUNTS_TABLE", "accounts")
    monkeypatch.setenv("ROOTMAIL_ORGANIZATIONS", json.dumps([{"name": "emea", "roleArn": role(EMEA)}]))
    from rootmail.config import get_settings

    get_settings.cache_clear()
    try:
        assert main(["accounts", "sync"]) == 0
        capsys.readouterr()
        bad = tmp_path / "outside.csv"
        bad.write_text(GOOD_CSV + "100000000001,root@dup.example,,,,\n", encoding="utf-8")
        assert main(["accounts", "import", str(bad)]) == 1
        err = capsys.readouterr().err
        assert f"{bad}:4: account 100000000001 is synced from organization emea" in err
        assert "1 problem(s)" in err and "nothing written" in err
        good = tmp_path / "outside.csv"
        good.write_text(GOOD_CSV, encoding="utf-8")
        assert main(["accounts", "import", str(good), "--dry-run"]) == 0
        assert "dry run: would import into accounts: 2 new" in capsys.readouterr().out
        assert main(["accounts", "import", str(good)]) == 0
        assert "2 new, 0 changed, 0 unchanged of 2 row(s); 2 item(s) written" in capsys.readouterr().out
        assert main(["accounts", "sync"]) == 0  # a complete listing without them: they stay
        capsys.readouterr()
        assert main(["accounts", "list", "--source"]) == 0
        out = capsys.readouterr().out
        assert "333333333333  root@customer-owned.example  customer-owned  [ja]  active  (imported)" in out
        assert (
            "100000000001  root+100000000001@provider.example  n100000000001  [en]  active  (organization emea)"
            in out
        )
        assert "by source: imported 2, organization emea 2" in out
        assert main(["accounts", "list", "--source", "imported", "--json"]) == 0
        rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert sorted(r["account_id"] for r in rows) == ["333333333333", "444444444444"]
        assert main(["accounts", "sync", "--organizations", "not-a-role"]) == 2
        assert (
            "--organizations: organization 1: 'not-a-role' is not an IAM role ARN" in capsys.readouterr().err
        )
    finally:
        get_settings.cache_clear()


def test_a_root_address_an_organisation_lists_reaches_its_account_not_a_stale_imported_one(aws):
    """AWS gives a root address to one account; an imported row naming it for another account is stale (the
    customer's account moved into a synced organisation under another ID, or the row was wrong): mail to the
    address reaches the organisation's account."""
    create_accounts_table(boto3.client("dynamodb"), "accounts")
    table = AccountsTable(boto3.client("dynamodb"), "accounts")
    listed_account = Account("900000000001", IMPORTED_ACCOUNT.email, "listed", organization="emea")
    table.put_all([IMPORTED_ACCOUNT, listed_account])
    assert table.by_email(IMPORTED_ACCOUNT.email).account_id == "900000000001"
    gone = replace(listed_account, inactive_since="2026-12-01T00:00:00Z", inactive_reason=LEFT_ORGANIZATION)
    table.put_all([gone])
    # Gone from the organisations, it no longer holds the address: the imported account does.
    assert table.by_email(IMPORTED_ACCOUNT.email).account_id == IMPORTED_ACCOUNT.account_id


def test_a_moved_account_whose_contacts_could_not_be_read_through_its_new_organisation_is_read_next_run():
    table = Accounts()
    emea, apac = organization(EMEA, "100000000001"), organization(APAC)
    sync(table, {"emea": emea, "apac": apac})
    moving = emea.accounts.pop()
    apac.accounts.append(replace(listed(moving.account_id, APAC), status="SUSPENDED"))  # not in any rotation
    first = sync(table, {"emea": emea, "apac": apac}, at=NOW + timedelta(hours=1))  # APAC cannot say yet
    assert first.moved == [(moving.account_id, "emea", "apac")]
    assert table.load_accounts()[
        moving.account_id
    ].details_pending  # its old organisation's contacts, owed anew
    apac.details[moving.account_id] = details("new-owner@apac.example")
    second = sync(table, {"emea": emea, "apac": apac}, at=NOW + timedelta(hours=2))
    stored = table.load_accounts()[moving.account_id]
    assert moving.account_id in second.changed_ids and not stored.details_pending
    assert stored.contacts.all() == ("new-owner@apac.example",)


def test_a_run_over_fewer_organisations_leaves_the_others_accounts_as_they_are():
    table = Accounts()
    emea, apac = organization(EMEA, "100000000001"), organization(APAC, "200000000001")
    sync(table, {"emea": emea, "apac": apac})
    before = table.load_accounts()
    report = sync(table, {"emea": emea}, at=NOW + timedelta(hours=1))  # APAC dropped from the configuration
    assert report.listing_complete and report.deactivated == [] and table.load_accounts() == before
    assert report.unconfigured == {"apac": 2}
    assert report.summary_lines()[-1].startswith(
        "warning: active accounts of organisations this run does not sync, left as they are: apac (2)"
    )
    # An account of a synced organisation that no listing has any more is still deactivated.
    emea.accounts.pop()
    later = sync(table, {"emea": emea}, at=NOW + timedelta(hours=2))
    assert later.deactivated == ["100000000001"] and table.load_accounts()[APAC].active


def test_an_organisation_failing_in_any_way_is_its_own_listing_error():
    class Broken(Organization):
        def list_accounts(self, progress: Any = None, *, deadline: float | None = None) -> Any:
            raise RuntimeError("connection reset")

    table = Accounts()
    report = sync(table, {"emea": organization(EMEA, "100000000001"), "apac": Broken()})
    assert report.organizations["apac"].listing_error == "RuntimeError: connection reset"
    assert sorted(table.load_accounts()) == ["100000000001", EMEA] and report.deactivated == []


def test_an_import_never_takes_the_root_address_of_an_account_an_organisation_still_has():
    suspended = Account(
        "100000000001", "root+c@provider.example", status="SUSPENDED", inactive_since="2026-12-01T00:00:00Z",
        inactive_reason="SUSPENDED in Organizations", organization="emea",
    )  # fmt: skip
    left = Account(
        "100000000002", "root+d@provider.example", inactive_since="2026-12-01T00:00:00Z",
        inactive_reason="left the organisation", organization="emea",
    )  # fmt: skip
    table = Accounts([suspended, left])
    text = (
        "account_id,root_address,contacts\n"
        "444444444444,ROOT+C@provider.example,other@othercustomer.example\n"
        "100000000002,root+d@provider.example,it@own-organisation.example\n"
    )
    report = import_accounts(table, text, json_format=False)
    assert [(p.line, p.message) for p in report.problems] == [
        (2, "root address root+c@provider.example belongs to account 100000000001")
    ]
    # The account that left the synced organisations (its customer took it to an organisation of its own) can be.
    partial = import_accounts(table, text, json_format=False, partial=True)
    assert partial.updated == ["100000000002"]
    taken = table.load_accounts()["100000000002"]
    assert (taken.imported, taken.active, taken.contacts.all()) == (
        True,
        True,
        ("it@own-organisation.example",),
    )
    # Whatever the table holds, a suspended organisation account keeps its address over an imported one.
    table.write([replace(IMPORTED_ACCOUNT, account_id="444444444444", email=suspended.email)])
    assert table.by_email(suspended.email).account_id == "100000000001"


@pytest.mark.parametrize(
    ("text", "json_format", "expected"),
    [
        ('account_id,root_address,name\n333333333333,root@a.example,"open\n444444444444,root@b.example,x\n', False,
         [(2, "not CSV: unexpected end of data")]),
        ("account_id,root_address,contacts,contacts\n333333333333,root@a.example,x@a.example,\n", False,
         [(1, "column 'contacts' twice")]),
        ('[{"account_id": "333333333333", "root_address": "root@a.example", "contacts": 5}]', True,
         [(1, "contacts: expected addresses (text, or a list of text)")]),
        ('[\n{"account_id": "333333333333", "root_address": "root@a.example", "language": {}},\n'
         '{"account_id": "444444444444", "root_address": "root@b.example", "name": [1]}]', True,
         [(2, "language: expected text, not an object"), (3, "name: expected text, not a list")]),
        ("[" + "[" * 100_000 + "]" * 100_000 + "]", True, [(1, "not JSON: maximum recursion depth exceeded")]),
    ],
)  # fmt: skip
def test_an_odd_import_file_is_a_problem_on_its_line_never_a_crash_or_a_silent_loss(
    text, json_format, expected
):
    report = import_accounts(Accounts(), text, json_format=json_format)
    assert [
        (p.line, p.message[: len(m)]) for (p, (_, m)) in zip(report.problems, expected, strict=True)
    ] == expected
    assert report.refused and report.written == 0


def test_progress_of_organisations_reporting_at_once_stays_a_few_lines(monkeypatch):
    from io import StringIO

    from rootmail.entrypoints.cli.accounts import ProgressLine

    stream = StringIO()
    progress = ProgressLine(stream)
    for done in range(1, 2001):
        progress("details (emea)", done, 2000)
        progress("details (apac)", done, 2000)
    lines = stream.getvalue().splitlines()
    assert lines[:2] == ["  details (emea): 1/2,000", "  details (apac): 1/2,000"]
    assert lines[-2:] == ["  details (emea): 2,000/2,000", "  details (apac): 2,000/2,000"]
    assert len(lines) <= 10


def test_an_organisation_renamed_in_the_configuration_keeps_its_accounts_it_does_not_move_them():
    """An organisation is its management account: the same one under a new name has the same accounts."""
    table = Accounts()
    emea = organization(EMEA, "100000000001", "100000000002")
    sync(table, {"emea": emea})
    emea.accounts = [a for a in emea.accounts if a.account_id != "100000000002"]  # leaves as the name changes
    report = sync(table, {"europe": emea}, at=NOW + timedelta(hours=1))
    stored = table.load_accounts()
    assert report.moved == [] and report.details_read == 0  # relabelled, not re-read
    assert {stored[a].organization for a in (EMEA, "100000000001")} == {"europe"}
    assert report.deactivated == ["100000000002"] and report.unconfigured == {}


def test_an_account_suspended_then_gone_from_the_organisations_has_left_and_no_longer_holds_its_address():
    table = Accounts()
    emea = organization(EMEA, "100000000001")
    sync(table, {"emea": emea})
    emea.accounts[-1] = replace(emea.accounts[-1], status="SUSPENDED")
    sync(table, {"emea": emea}, at=NOW + timedelta(days=1))
    suspended = table.load_accounts()["100000000001"]
    assert suspended.holds_address and suspended.inactive_since == "2026-12-08T10:00:00Z"
    emea.accounts.pop()  # closed for good: no longer listed
    gone = sync(table, {"emea": emea}, at=NOW + timedelta(days=100))
    left = table.load_accounts()["100000000001"]
    assert gone.deactivated == ["100000000001"] and left.inactive_reason == "left the organisation"
    assert left.inactive_since == "2026-12-08T10:00:00Z" and not left.holds_address
    text = "account_id,root_address\n999999999999,root+100000000001@provider.example\n"
    assert import_accounts(table, text, json_format=False).added == ["999999999999"]


def test_an_account_back_in_an_organisation_after_leaving_has_its_contacts_read_again():
    table = Accounts()
    emea = organization(EMEA, "100000000001")
    sync(table, {"emea": emea})
    back = emea.accounts.pop()
    sync(table, {"emea": emea}, at=NOW + timedelta(hours=1))
    assert not table.load_accounts()["100000000001"].active
    emea.accounts.append(back)
    emea.details["100000000001"] = details("new-team@100000000001.example")
    returned = sync(table, {"emea": emea}, at=NOW + timedelta(hours=2))
    stored = table.load_accounts()["100000000001"]
    assert returned.reactivated == ["100000000001"] and stored.active
    assert stored.contacts.all() == ("new-team@100000000001.example",)


def test_an_unterminated_quote_or_a_field_given_twice_is_a_problem_not_a_silent_loss():
    csv_text = (
        "account_id,root_address,name\n"
        '333333333333,root@a.example,"acme\n'
        "444444444444,root@b.example,globex\n"
        '555555555555,root@c.example,initech 12"\n'
        "666666666666,root@d.example,ok\n"
    )
    report = import_accounts(Accounts(), csv_text, json_format=False)
    assert [(p.line, p.message) for p in report.problems] == [(2, "a quoted value runs over lines 2–4")]
    assert report.refused and report.added == ["666666666666"]
    json_text = (
        '[{"account_id": "333333333333", "root_address": "root@a.example", "account_id": "444444444444"}]'
    )
    twice = import_accounts(Accounts(), json_text, json_format=True)
    assert [(p.line, p.message) for p in twice.problems] == [(1, "field(s) given twice: account_id")]
