"""Accounts, contacts per kind, overrides and resolution: plain Python, no AWS."""

from __future__ import annotations

import pytest

from rootmail.app.offline import AccountDirectory
from rootmail.domain.accounts import (
    DEFAULT_CONTACT_KINDS,
    Account,
    ContactOverride,
    Contacts,
    contact_kind,
    normalize_language,
    parse_contact_kinds,
    parse_contacts_entry,
)
from rootmail.domain.mail.model import ParsedMail
from rootmail.domain.routing import RoutingPolicy, resolve
from rootmail.domain.vocabulary import Category


def test_every_category_goes_to_a_contact_kind_and_the_brief_s_defaults_hold():
    assert contact_kind("health") == "operations"
    assert contact_kind("abuse-report") == contact_kind("account-compromise") == "security"
    assert contact_kind("ses-sending-status") == "security"
    assert contact_kind("billing") == contact_kind("cost-alert") == "billing"
    assert contact_kind("marketplace") == contact_kind("unclassified") == "operations"
    assert set(DEFAULT_CONTACT_KINDS) <= {c.value for c in Category}


def test_contact_kinds_are_configurable_over_the_defaults_and_typos_fail_loudly():
    mapping = parse_contact_kinds("marketplace=billing, health=security")
    assert mapping["marketplace"] == "billing" and mapping["health"] == "security"
    assert mapping["cost-alert"] == "billing"  # untouched defaults stay
    assert parse_contact_kinds("") == DEFAULT_CONTACT_KINDS
    for bad in ("helth=operations", "health=ops", "health"):
        with pytest.raises(ValueError, match="category=kind"):
            parse_contact_kinds(bad)


def test_a_contacts_entry_is_every_kind_unless_a_kind_names_its_own():
    contacts, language = parse_contacts_entry(
        {
            "contacts": ["ops@a.example", "cto@a.example"],
            "billing": ["finance@a.example"],
            "language": "ja-JP",
        }
    )
    assert contacts.operations == contacts.security == ("ops@a.example", "cto@a.example")
    assert contacts.billing == ("finance@a.example",)
    assert language == "ja"
    assert list(contacts) == ["ops@a.example", "cto@a.example", "finance@a.example"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"contacts": ["not-an-address"]}, "invalid address"),
        ({"contacts": [], "language": "fr"}, "language 'fr'"),
        ({"contact": ["a@b.example"]}, "unknown key"),
    ],
)
def test_a_bad_contacts_entry_is_a_clear_error(entry, message):
    with pytest.raises(ValueError, match=message):
        parse_contacts_entry(entry)


def test_languages_normalise_to_the_ones_we_have_texts_for():
    assert normalize_language("JA") == normalize_language("ja_JP") == "ja"
    assert normalize_language("en-GB") == "en"
    assert normalize_language("de") is None
    assert normalize_language("") is None


def test_account_round_trips_through_its_item_and_reads_the_old_list_format():
    account = Account(
        "111122223333",
        "root@a.example",
        "A",
        "SUSPENDED",
        Contacts(("ops@a.example",), ("sec@a.example",), ()),
        "ja",
        inactive_since="2026-11-23T10:00:00Z",
        inactive_reason="SUSPENDED in Organizations",
        contacts_from="tags+alternate-contacts",
        details_pending=True,
    )
    assert Account.from_dict(account.to_dict()) == account
    same = Account("111122223333", "root@a.example", contacts=("x@a.example",))
    assert same.to_dict()["contacts"] == ["x@a.example"]  # one list when every kind is the same
    assert "inactive_since" not in same.to_dict() and "details_pending" not in same.to_dict()
    old = Account.from_dict({"account_id": "1", "email": "R@A.example", "contacts": ["x@a.example"]})
    assert old.contacts.billing == ("x@a.example",) and old.email == "r@a.example" and old.active


def test_inactive_means_not_active_in_organizations_or_gone_from_it():
    assert not Account("1", "a@b.example", status="PENDING_CLOSURE").active
    assert not Account("1", "a@b.example", inactive_since="2026-01-01T00:00:00Z").active
    assert Account("1", "a@b.example").active


def test_an_override_wins_kind_by_kind_and_leaves_the_rest_to_organizations():
    account = Account("1", "r@a.example", contacts=("ops@a.example",), language="en", contacts_from="tags")
    override = ContactOverride.from_entry("1", {"security": ["soc@a.example"], "language": "ja"})
    effective = account.with_override(override)
    assert effective.contacts.operations == ("ops@a.example",)
    assert effective.contacts.security == ("soc@a.example",)
    assert effective.contacts.billing == ("ops@a.example",)
    assert effective.language == "ja" and effective.contacts_from == "tags+override"
    everything = ContactOverride.from_entry("1", {"contacts": ["all@a.example"]})
    assert account.with_override(everything).contacts.all() == ("all@a.example",)
    assert ContactOverride.from_entry("1", override.to_entry()) == override
    assert account.with_override(None) is account


def _resolve(envelope: str | None, ids: list[str], *accounts: Account, may_refresh: bool = False):
    mail = ParsedMail(envelope_recipient=envelope, account_ids=ids)
    return resolve(mail, AccountDirectory.of(list(accounts)), RoutingPolicy(), may_refresh=may_refresh)


def test_an_unknown_root_address_asks_for_one_refresh_only_when_allowed():
    first = _resolve("new@root.example", [], may_refresh=True)
    assert first.refresh_needed and not first.account_ids
    again = _resolve("new@root.example", [], may_refresh=False)
    assert not again.refresh_needed
    assert not _resolve(None, [], may_refresh=True).refresh_needed


def test_inactive_accounts_still_resolve_and_say_so():
    gone = Account(
        "111122223333",
        "root@a.example",
        inactive_since="2026-11-23T10:00:00Z",
        inactive_reason="left the organisation",
    )
    resolution = _resolve("ROOT@a.example", ["111122223333"], gone, may_refresh=True)
    assert resolution.account_ids == ("111122223333",) and not resolution.refresh_needed
    assert any("inactive since 2026-11-23T10:00:00Z (left the organisation)" in n for n in resolution.notes)
    assert type(resolution).from_dict(resolution.to_dict()) == resolution


def test_a_bad_contact_kinds_setting_fails_loudly_and_a_good_one_is_read(monkeypatch):
    from rootmail.config import get_settings
    from rootmail.errors import ConfigurationError

    monkeypatch.setenv("ROOTMAIL_CONTACT_KINDS", "helth=operations")
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigurationError, match="contact_kinds"):
            get_settings()
        monkeypatch.setenv("ROOTMAIL_CONTACT_KINDS", "marketplace=billing")
        get_settings.cache_clear()
        assert contact_kind("marketplace", get_settings().contact_kinds) == "billing"
    finally:
        get_settings.cache_clear()
