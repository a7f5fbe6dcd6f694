"""The accounts sync decided without AWS: what to add, change, deactivate, and whose contacts to read."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from rootmail.domain.accounts import Account, Contacts
from rootmail.domain.sync_plan import (
    LEFT_ORGANIZATION,
    AccountDetails,
    ListedAccount,
    combine_details,
    contacts_from_tags,
    hour_index,
    plan_sync,
    refresh_slot,
    select_for_details,
)

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
STAMP = "2026-11-23T10:00:00Z"


def listed(n: int, status: str = "ACTIVE", **changes: str) -> ListedAccount:
    values = {"account_id": f"{n:012d}", "email": f"root+{n}@p.example", "name": f"a{n}", "status": status}
    values.update(changes)
    return ListedAccount(**values)  # type: ignore[arg-type]


def stored(n: int, **changes: object) -> Account:
    values: dict[str, object] = {
        "account_id": f"{n:012d}",
        "email": f"root+{n}@p.example",
        "name": f"a{n}",
        "contacts": (f"ops@{n}.example",),
        "contacts_from": "tags",
    }
    values.update(changes)
    return Account(**values)  # type: ignore[arg-type]


DETAILS = AccountDetails(Contacts.for_all(("ops@c.example",)), "ja", "tags")


def test_a_listing_item_reads_state_over_status_and_the_management_account_from_its_arn():
    item = {
        "Id": "123456789012",
        "Arn": "arn:aws:organizations::998877665544:account/o-abc/123456789012",
        "Email": "Root@P.example",
        "Name": "acme",
        "Status": "ACTIVE",
        "State": "PENDING_CLOSURE",
    }
    account = ListedAccount.from_item(item)
    assert (account.email, account.status, account.management_account_id) == (
        "root@p.example",
        "PENDING_CLOSURE",
        "998877665544",
    )
    assert not account.is_management
    assert ListedAccount.from_item({**item, "Id": "998877665544"}).is_management
    assert (
        ListedAccount.from_item({"Id": "1", "Email": "a@b.example", "Status": "SUSPENDED"}).status
        == "SUSPENDED"
    )


def test_tags_give_contacts_per_kind_a_kind_tag_wins_and_bad_values_are_reported():
    tags = {
        "rootmail:contacts": "ops@a.example  cto@a.example,bad-address",
        "rootmail:contacts:billing": "finance@a.example",
        "rootmail:language": "Japanese",
        "unrelated": "x",
    }
    found = contacts_from_tags(tags, "rootmail:contacts", "rootmail:language")
    assert found.contacts.operations == found.contacts.security == ("ops@a.example", "cto@a.example")
    assert found.contacts.billing == ("finance@a.example",)
    assert found.language is None
    assert len(found.problems) == 2  # one invalid address, one unknown language
    assert contacts_from_tags({}, "rootmail:contacts", "rootmail:language").kinds == ()


def test_alternate_contacts_fill_only_the_kinds_the_tags_leave_open():
    tagged = contacts_from_tags({"c:security": "soc@a.example"}, "c", "l")
    details = combine_details(tagged, {"operations": "noc@a.example", "billing": "not an address"})
    assert details.contacts == Contacts(("noc@a.example",), ("soc@a.example",), ())
    assert details.sources == "alternate-contacts+tags"
    assert details.problems == ("alternate contact BILLING: invalid address ignored",)


def test_the_first_sync_adds_every_account_and_marks_suspended_ones_inactive():
    plan = plan_sync(
        {},
        [listed(1), listed(2, "SUSPENDED")],
        {f"{1:012d}": DETAILS},
        listing_complete=True,
        now=NOW,
    )
    first, second = plan.added
    assert (first.contacts, first.language, first.details_pending) == (DETAILS.contacts, "ja", False)
    assert second.details_pending and not second.active  # contacts not read yet; still added
    assert (second.inactive_since, second.inactive_reason) == (STAMP, "SUSPENDED in Organizations")
    assert plan.writes == plan.added and not plan.changed and not plan.deactivated


def test_an_unchanged_organisation_plans_no_write():
    current = {a.account_id: a for a in (stored(1), stored(2))}
    details = {
        f"{1:012d}": AccountDetails(Contacts.for_all((f"ops@{1}.example",)), None, "tags"),
    }
    plan = plan_sync(current, [listed(1), listed(2)], details, listing_complete=True, now=NOW)
    assert plan.writes == () and plan.unchanged == 2


def test_changes_are_picked_up_field_by_field():
    current = {a.account_id: a for a in (stored(1), stored(2), stored(3))}
    new_details = AccountDetails(Contacts.for_all(("new@3.example",)), "ja", "tags")
    plan = plan_sync(
        current,
        [listed(1, name="renamed"), listed(2, "SUSPENDED"), listed(3)],
        {f"{3:012d}": new_details},
        listing_complete=True,
        now=NOW,
    )
    fields = {c.after.account_id: c.fields for c in plan.changed}
    assert fields == {
        f"{1:012d}": ("name",),
        f"{2:012d}": ("inactive_reason", "inactive_since", "status"),
        f"{3:012d}": ("contacts", "language"),
    }


def test_an_account_missing_from_a_complete_listing_is_deactivated_never_deleted():
    current = {a.account_id: a for a in (stored(1), stored(2))}
    plan = plan_sync(current, [listed(1)], {}, listing_complete=True, now=NOW)
    (change,) = plan.deactivated
    assert change.after == replace(stored(2), inactive_since=STAMP, inactive_reason=LEFT_ORGANIZATION)
    assert change.after.contacts == stored(2).contacts  # old mail still reaches its contacts


def test_a_partial_listing_never_deactivates_anything():
    current = {a.account_id: a for a in (stored(1), stored(2), stored(3))}
    plan = plan_sync(current, [listed(1)], {}, listing_complete=False, now=NOW)
    assert plan.deactivated == () and plan.writes == () and plan.unchanged == 3


def test_inactive_since_stays_the_first_time_and_reactivation_clears_it():
    since = "2026-01-01T00:00:00Z"
    left = stored(1, inactive_since=since, inactive_reason=LEFT_ORGANIZATION)
    suspended = stored(
        2, status="SUSPENDED", inactive_since=since, inactive_reason="SUSPENDED in Organizations"
    )
    plan = plan_sync(
        {a.account_id: a for a in (left, suspended)},
        [listed(1), listed(2, "SUSPENDED")],
        {},
        listing_complete=True,
        now=NOW,
    )
    assert [c.after.account_id for c in plan.reactivated] == [f"{1:012d}"]
    assert plan.changed[0].after.inactive_since is None and plan.unchanged == 1
    later = plan_sync({left.account_id: left}, [], {}, listing_complete=True, now=NOW + timedelta(days=1))
    assert later.deactivated == () and later.unchanged == 1  # still gone: nothing to write


def test_contacts_are_read_for_new_named_and_pending_accounts_then_this_hour_s_slice():
    accounts = [listed(n) for n in range(1, 200)]
    current = {a.account_id: stored(int(a.account_id)) for a in accounts[:150]}
    current[f"{5:012d}"] = stored(5, details_pending=True)
    selection = select_for_details(current, accounts, now=NOW, refresh_hours=24, forced=[f"{9:012d}"])
    ids = [a.account_id for a in selection.fetch]
    new = [a.account_id for a in accounts[150:]]
    assert ids[: len(new)] == new
    assert ids[len(new) : len(new) + 2] == [f"{9:012d}", f"{5:012d}"]
    rotating = ids[len(new) + 2 :]
    hour = hour_index(NOW, 24)
    assert rotating and all(refresh_slot(i, 24) == hour for i in rotating)
    assert {i for i in current if refresh_slot(i, 24) == hour} - {f"{5:012d}", f"{9:012d}"} == set(rotating)
    without_rotation = select_for_details(current, accounts, now=NOW, rotate=False)
    assert without_rotation.fetch == (*accounts[150:], listed(5))


def test_over_the_budget_new_accounts_wait_for_the_next_run_and_are_reported():
    accounts = [listed(n) for n in range(10)]
    selection = select_for_details({}, accounts, now=NOW, budget=4)
    assert len(selection.fetch) == 4
    assert selection.deferred == tuple(a.account_id for a in accounts[4:])


def test_every_account_is_in_exactly_one_hour_of_the_rotation():
    hours = [hour_index(NOW + timedelta(hours=h), 24) for h in range(24)]
    assert sorted(hours) == list(range(24))
    slots = {refresh_slot(f"{n:012d}", 24) for n in range(2000)}
    assert slots == set(range(24))  # 2,000 accounts spread over all 24 hours


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 40), unique=True, max_size=25),
    st.lists(st.integers(0, 40), unique=True, max_size=25),
    st.lists(st.sampled_from(["ACTIVE", "SUSPENDED", "PENDING_CLOSURE"]), min_size=41, max_size=41),
    st.booleans(),
)
def test_applying_a_plan_then_planning_again_writes_nothing(before, after, statuses, complete):
    """Idempotence: whatever the table and the organisation, a second run with no change writes nothing."""
    current = {a.account_id: a for a in (stored(n) for n in before)}
    listing = [listed(n, statuses[n]) for n in after]
    details = {a.account_id: DETAILS for a in listing}
    plan = plan_sync(current, listing, details, listing_complete=complete, now=NOW)
    applied = {**current, **{a.account_id: a for a in plan.writes}}
    assert set(applied) >= set(current)  # nothing is ever deleted
    again = plan_sync(applied, listing, details, listing_complete=complete, now=NOW + timedelta(hours=1))
    assert again.writes == ()
