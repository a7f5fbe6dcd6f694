"""`rootmail demo` on any folder of .eml files: a summary, a JSON report with the promised fields, an exit code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from rootmail.entrypoints.cli import main

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"
MAILS = ["01-support-case-new.eml", "11-health-single-account.eml", "24-credentials-password-reset.eml"]


def test_demo_reports_every_mail_with_its_terminal_state_and_deliveries(tmp_path, capsys):
    mail_dir = tmp_path / "mails"
    mail_dir.mkdir()
    for name in MAILS:
        shutil.copy(CORPUS / name, mail_dir / name)
    report_path = tmp_path / "out" / "report.json"
    status = main(
        [
            "demo",
            "--mail-dir",
            str(mail_dir),
            "--accounts",
            str(CORPUS / "accounts.json"),
            "--report",
            str(report_path),
        ]
    )
    out = capsys.readouterr().out
    assert status == 0
    assert "Every mail in a terminal state: yes (3/3)" in out
    assert "Evidence matches the ledger's deliveries: yes" in out
    assert f"JSON report: {report_path}" in out
    report = {Path(r["file"]).name: r for r in json.loads(report_path.read_text(encoding="utf-8"))}
    assert set(report) == set(MAILS)
    for entry in report.values():
        assert {"file", "account_ids", "category", "rule_id", "action", "state", "deliveries"} <= set(entry)
    assert report["01-support-case-new.eml"]["state"] == "ticketed"
    assert [d["channel"] for d in report["01-support-case-new.eml"]["deliveries"]] == ["zendesk"]
    forwarded = report["11-health-single-account.eml"]
    assert forwarded["state"] == "forwarded"
    assert forwarded["deliveries"][0]["channel"] == "ses" and "@" in forwarded["deliveries"][0]["recipient"]
    assert report["24-credentials-password-reset.eml"]["deliveries"][0]["channel"] == "slack"


def test_demo_shows_the_operators_digest_a_rule_from_it_and_a_retry(tmp_path, capsys):
    mail_dir = tmp_path / "mails"
    mail_dir.mkdir()
    for name in ("30-unclassified-reinvent-reminder.eml", "18-cost-alert-free-tier.eml"):
        shutil.copy(CORPUS / name, mail_dir / name)
    argv = ["demo", "--mail-dir", str(mail_dir), "--accounts", str(CORPUS / "accounts.json")]
    assert main([*argv, "--report", str(tmp_path / "report.json")]) == 0
    out = capsys.readouterr().out
    operators = out[out.index("Operators in Slack") :]
    assert "2 mail(s) queued: 1 unclassified in 1 pattern(s), 1 for another reason" in operators
    assert (
        "AWS re:Invent <n> session reminder" in operators and "30-unclassified-reinvent-reminder" in operators
    )
    assert "saved by <@U0LOCALOPS>: account-lifecycle → forward" in operators
    assert "1 mail(s) re-run. 1 forwarded" in operators
    # The cost alert's account has no billing contact: still queued, and the operators read why.
    assert "1 still queued" in operators and "no customer contact for billing notices" in operators
    assert "Next digest" in operators and "0 unclassified" in operators


def test_demo_operator_takes_the_proposal_for_mail_with_urgent_words(tmp_path, capsys):
    """Unknown mail with urgent words: the modal proposes its category, the operator takes it, and the retry
    escalates it (a forward rule could not take it: urgent words wait for an operator)."""
    mail_dir = tmp_path / "mails"
    mail_dir.mkdir()
    shutil.copy(CORPUS / "34-unclassified-urgent-words.eml", mail_dir / "34-unclassified-urgent-words.eml")
    argv = ["demo", "--mail-dir", str(mail_dir), "--accounts", str(CORPUS / "accounts.json")]
    assert main([*argv, "--report", str(tmp_path / "report.json")]) == 0
    operators = capsys.readouterr().out.split("Operators in Slack", 1)[1]
    assert "proposed: category abuse-report, action urgent (the demo's operator takes it)" in operators
    assert "saved by <@U0LOCALOPS>: abuse-report → urgent" in operators
    assert "1 mail(s) re-run. 0 forwarded · 0 ticketed · 1 escalated" in operators


def test_demo_on_a_missing_folder_is_a_clear_error(tmp_path, capsys):
    assert main(["demo", "--mail-dir", str(tmp_path / "nope")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_demo_forwards_mail_for_accounts_of_both_organisations_and_of_the_imported_one(tmp_path, capsys):
    """The sample provider runs two organisations (two management accounts in moto) and imports one account from
    a customer's own organisation: the sync and the import fill the table, and mail for each is forwarded."""
    mails = {
        "11-health-single-account.eml": "123456789012",  # organisation cloudprovider
        "13-health-html-only.eml": "678901234567",  # organisation cloudprovider-emea
        "42-health-ja.eml": "567890123456",  # organisation cloudprovider-emea
        "46-health-undeclared-charset-ja.eml": "246813579024",  # imported
    }
    mail_dir = tmp_path / "mails"
    mail_dir.mkdir()
    for name in mails:
        shutil.copy(CORPUS / name, mail_dir / name)
    report_path = tmp_path / "report.json"
    argv = ["demo", "--mail-dir", str(mail_dir), "--accounts", str(CORPUS / "accounts.json")]
    assert main([*argv, "--report", str(report_path)]) == 0
    out = capsys.readouterr().out
    assert "organization cloudprovider: the sync function found 8 account(s) (8 added)" in out
    assert "organization cloudprovider-emea: the sync function found 3 account(s) (3 added)" in out
    assert "imported from " in out and "imported-accounts.csv: 1 account(s) in no synced organisation" in out
    assert (
        "Forwarded, per account, by where the account came from: imported 1, organization cloudprovider 1, "
        "organization cloudprovider-emea 2"
    ) in out
    report = {Path(r["file"]).name: r for r in json.loads(report_path.read_text(encoding="utf-8"))}
    for name, account_id in mails.items():
        assert (report[name]["state"], report[name]["account_ids"]) == ("forwarded", [account_id]), name
    assert "Evidence matches the ledger's deliveries: yes" in out


def test_demo_refuses_accounts_of_an_unmanaged_organisation_that_no_import_file_names(tmp_path, capsys):
    accounts = tmp_path / "accounts.json"
    shutil.copy(CORPUS / "accounts.json", accounts)
    shutil.copy(CORPUS / "contacts.json", tmp_path / "contacts.json")  # no imported-accounts.csv beside it
    mail_dir = tmp_path / "mails"
    mail_dir.mkdir()
    shutil.copy(CORPUS / MAILS[0], mail_dir / MAILS[0])
    assert main(["demo", "--mail-dir", str(mail_dir), "--accounts", str(accounts)]) == 2
    err = capsys.readouterr().err
    assert (
        "account(s) 246813579024 are in organisations whose management account the file does not list" in err
    )
