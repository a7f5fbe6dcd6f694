"""The pipeline on the local emulator with its accounts table filled the real way: the local organisation (moto's
Organizations and Account Management) read by the `sync` function. Forwarded mail and tickets use the contacts of
the mail's kind and the account's language from that table; mail for an unknown root address refreshes the accounts
once (rate-limited); inactive accounts still resolve their mail; an operator's override wins at once.
"""

from __future__ import annotations

import email
import email.policy
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from rootmail.adapters.dynamodb.accounts import AccountsTable
from rootmail.app.offline import load_accounts
from rootmail.domain.accounts import ContactOverride, Contacts
from rootmail.domain.rules.files import load_rule_files
from rootmail.entrypoints.cli import main
from rootmail_local.demo import load_demo_accounts
from rootmail_local.emulator import LocalPipeline
from rootmail_local.organization import SeedAccount

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"
GLOBEX, HOOLI, MAPLELEAF, UMBRELLA, ACME = (
    "210987654321",
    "890123456789",
    "678901234567",
    "789012345678",
    "123456789012",
)
GLOBEX_CONTACTS = Contacts(("ops@globex.example",), ("soc@globex.example",), ("finance@globex.example",))


@pytest.fixture
def pipeline():
    accounts = {a.account_id: a for a in load_accounts(CORPUS / "accounts.json", CORPUS / "contacts.json")}
    # Globex: a contact per kind and Japanese; Hooli: an operations contact only.
    accounts[GLOBEX] = replace(accounts[GLOBEX], contacts=GLOBEX_CONTACTS, language="ja")
    accounts[HOOLI] = replace(accounts[HOOLI], contacts=Contacts(operations=("dev@hooli.example",)))
    with LocalPipeline(settings={"accounts_refresh_wait_seconds": "1"}) as local:
        local.seed_organization(accounts.values())
        local.sync_accounts()
        local.seed_rules(load_rule_files(ROOT / "rules"))
        yield local


def table(local: LocalPipeline) -> AccountsTable:
    return AccountsTable(local.client("dynamodb"), local.tables["accounts"])


def run_mails(local: LocalPipeline, mails: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    keys = {name: local.store_mail(name, raw) for name, raw in mails.items()}
    local.wait()
    ledger = local.ledger()
    return {name: ledger.get(key.rsplit("/", 1)[-1]) for name, key in keys.items()}


def corpus(*names: str) -> dict[str, bytes]:
    return {Path(name).stem: (CORPUS / name).read_bytes() for name in names}


def sent_by_account(local: LocalPipeline) -> dict[str, email.message.EmailMessage]:
    messages = (email.message_from_string(m["raw"], policy=email.policy.default) for m in local.sent_mail())
    return {m["X-Rootmail-Account"]: m for m in messages}


def to(message: email.message.EmailMessage) -> list[str]:
    return sorted(a.strip() for a in message["To"].split(","))


def refresh_outputs(local: LocalPipeline) -> list[dict[str, Any]]:
    """What each execution's RefreshAccounts state returned."""
    sfn = local.client("stepfunctions")
    found = []
    for execution in local.executions():
        for event in sfn.get_execution_history(executionArn=execution["executionArn"])["events"]:
            details = event.get("stateExitedEventDetails", {})
            if details.get("name") == "RefreshAccounts":
                found.append(json.loads(details["output"])["refresh"])
    return found


def states_entered(local: LocalPipeline) -> set[str]:
    sfn = local.client("stepfunctions")
    return {
        event["stateEnteredEventDetails"]["name"]
        for execution in local.executions()
        for event in sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
        if "stateEnteredEventDetails" in event
    }


def test_the_sync_function_fills_the_table_from_the_organisation(pipeline):
    accounts = table(pipeline).load_accounts()
    assert len(accounts) == 12
    assert accounts[GLOBEX].contacts == GLOBEX_CONTACTS and accounts[GLOBEX].language == "ja"
    assert accounts[GLOBEX].contacts_from == "tags"
    assert (
        accounts[MAPLELEAF].contacts_from == "alternate-contacts"
    )  # one address: the three alternate contacts
    assert accounts[UMBRELLA].status == "SUSPENDED" and not accounts[UMBRELLA].active


def test_forwarded_mail_and_tickets_use_the_contacts_of_the_mail_s_kind_and_the_account_s_language(pipeline):
    mails = corpus("18-cost-alert-free-tier.eml", "12-health-multi-account.eml", "08-abuse-report-ec2.eml")
    # GLOBEX's own Free Tier alert (the sample is HOOLI's).
    free_tier = mails.pop("18-cost-alert-free-tier")
    free_tier = free_tier.replace(b"aws-root+hooli-sandbox@", b"aws-root+globex@").replace(
        HOOLI.encode(), GLOBEX.encode()
    )
    records = run_mails(pipeline, {"free-tier": free_tier, **mails})
    assert records["free-tier"]["state"] == "forwarded"
    assert records["12-health-multi-account"]["state"] == "forwarded"
    assert records["08-abuse-report-ec2"]["state"] == "escalated"
    sent = [email.message_from_string(m["raw"], policy=email.policy.default) for m in pipeline.sent_mail()]
    globex = [m for m in sent if m["X-Rootmail-Account"] == GLOBEX]
    by_subject = {("Free Tier" in m["Subject"]): m for m in globex}
    cost, health = by_subject[True], by_subject[False]
    assert to(cost) == ["finance@globex.example"]  # cost-alert → billing
    assert to(health) == ["ops@globex.example"]  # health → operations
    for message in (cost, health):
        assert message["Content-Language"] == "ja" and message["Subject"].startswith("【AWS通知】")
    (ticket,) = pipeline.zendesk.tickets
    assert ticket["requester"]["email"] == "soc@globex.example"  # abuse report → security


def test_an_account_without_a_contact_of_the_kind_is_queued_saying_which_kind(pipeline):
    record = run_mails(pipeline, corpus("18-cost-alert-free-tier.eml"))["18-cost-alert-free-tier"]
    assert record["state"] == "queued" and record["account_ids"] == [HOOLI]
    assert "no customer contact for billing notices (cost-alert)" in record["queue_reason"]
    assert pipeline.sent_mail() == []


def test_mail_for_an_account_created_since_the_last_sync_refreshes_once_then_is_forwarded(pipeline):
    new_address = (
        "aws-root+legacy-archive@cloudprovider.example"  # the envelope of 15-health-unknown-recipient
    )
    pipeline.organization().add(
        [
            SeedAccount(
                "555566667777",
                new_address,
                "legacy-archive",
                tags={"rootmail:contacts": "archive@legacy.example", "rootmail:language": "ja"},
            )
        ]
    )
    unknown = (CORPUS / "15-health-unknown-recipient.eml").read_bytes()
    first = run_mails(pipeline, {"new-account": unknown})["new-account"]
    assert first["state"] == "forwarded" and first["account_ids"] == ["555566667777"]
    message = sent_by_account(pipeline)["555566667777"]
    assert to(message) == ["archive@legacy.example"] and message["Content-Language"] == "ja"
    # Another unknown address within the window: no second listing, the mail is queued saying why.
    stranger = unknown.replace(b"legacy-archive", b"nobody-knows")
    second = run_mails(pipeline, {"stranger": stranger})["stranger"]
    assert second["state"] == "queued"
    assert (
        "no account has the root address aws-root+nobody-knows@cloudprovider.example"
        in second["queue_reason"]
    )
    assert "the accounts were refreshed at" in second["queue_reason"]
    assert sorted(r["status"] for r in refresh_outputs(pipeline)) == ["recent", "refreshed"]
    known = run_mails(pipeline, corpus("11-health-single-account.eml"))["11-health-single-account"]
    assert known["state"] == "forwarded"
    assert len(refresh_outputs(pipeline)) == 2  # a known address never asks for a refresh


def test_a_mail_finding_a_refresh_running_waits_for_it_then_resolves_again(pipeline):
    from datetime import UTC, datetime, timedelta

    accounts = table(pipeline)
    assert accounts.claim_refresh(datetime.now(UTC), timedelta(minutes=5)).claimed  # someone else's refresh
    unknown = (CORPUS / "15-health-unknown-recipient.eml").read_bytes()
    record = run_mails(pipeline, {"waiting": unknown})["waiting"]
    assert [r["status"] for r in refresh_outputs(pipeline)] == ["in-progress"]
    assert {"WaitForRefresh", "ResolveAgain"} <= states_entered(pipeline)
    assert record["state"] == "queued" and "an accounts refresh was still running" in record["queue_reason"]


def test_mail_about_inactive_accounts_still_resolves_and_reaches_their_contacts(pipeline):
    pipeline.organization().backend.remove_account_from_organization(AccountId=MAPLELEAF)
    report = pipeline.sync_accounts()
    assert report["deactivated_ids"] == [MAPLELEAF]
    records = run_mails(pipeline, corpus("13-health-html-only.eml", "16-billing-statement.eml"))
    gone, suspended = records["13-health-html-only"], records["16-billing-statement"]
    assert gone["account_ids"] == [MAPLELEAF] and gone["state"] == "forwarded"
    assert to(sent_by_account(pipeline)[MAPLELEAF]) == ["it@mapleleaf-retail.example"]
    assert suspended["account_ids"] == [UMBRELLA] and suspended["state"] == "ignored"
    assert refresh_outputs(pipeline) == []  # known, if inactive: no refresh


def test_an_operator_override_wins_over_organizations_at_once(pipeline):
    table(pipeline).put_override(ContactOverride.from_entry(ACME, {"operations": ["noc@override.example"]}))
    record = run_mails(pipeline, corpus("11-health-single-account.eml"))["11-health-single-account"]
    assert record["state"] == "forwarded"
    assert to(sent_by_account(pipeline)[ACME]) == ["noc@override.example"]


def test_the_demo_fills_the_accounts_table_with_the_sync_and_shows_it(tmp_path, capsys):
    mail_dir = tmp_path / "mails"
    mail_dir.mkdir()
    for name in ("42-health-ja.eml", "07-account-compromise-health.eml"):
        (mail_dir / name).write_bytes((CORPUS / name).read_bytes())
    status = main(
        [
            "demo",
            "--mail-dir",
            str(mail_dir),
            "--accounts",
            str(CORPUS / "accounts.json"),
            "--report",
            str(tmp_path / "report.json"),
        ]
    )
    out = capsys.readouterr().out
    assert status == 0
    assert "Accounts (synced from the local AWS Organizations by the sync function): added 11" in out
    assert "567890123456 fujiyama-logistics" in out and "[ja]" in out
    assert "system@fujiyama-logistics.example [ja] 【AWS通知】" in out  # the forward, in the table's language
    assert "requester security@wayne-media.example" in out  # the urgent ticket, to the security contact


def test_mail_for_a_new_account_of_the_second_organisation_is_resolved_by_one_refresh_in_its_execution():
    """The sample provider's two organisations (two management accounts in moto) and its imported account: an
    account created in the second organisation since the sync gets its first mail; the refresh lists every
    organisation, finds it there, and the same execution forwards the mail to its contacts."""
    provider = load_demo_accounts(CORPUS / "accounts.json")
    with LocalPipeline(organizations=provider.management_accounts) as local:
        setup = provider.set_up(local)
        assert set(setup["sync"]["organizations"]) == {"cloudprovider", "cloudprovider-emea"}
        local.seed_rules(load_rule_files(ROOT / "rules"))
        local.organization("cloudprovider-emea").add(
            [
                SeedAccount(
                    "555566667777",
                    "aws-root+legacy-archive@cloudprovider.example",  # the envelope of 15-health-unknown-recipient
                    "legacy-archive",
                    tags={"rootmail:contacts": "archive@legacy.example"},
                )
            ]
        )
        record = run_mails(local, corpus("15-health-unknown-recipient.eml"))["15-health-unknown-recipient"]
        assert (record["state"], record["account_ids"]) == ("forwarded", ["555566667777"])
        assert len(local.executions()) == 1 and {"RefreshAccounts", "ResolveAgain"} <= states_entered(local)
        (refresh,) = refresh_outputs(local)
        assert refresh["status"] == "refreshed" and refresh["added"] == 1
        assert to(sent_by_account(local)["555566667777"]) == ["archive@legacy.example"]
        stored = table(local).load_accounts()
        assert stored["555566667777"].organization == "cloudprovider-emea"
        assert stored["246813579024"].imported and stored["246813579024"].active  # the refresh left it alone
