"""No customer gets another customer's notice, or an attacker's words, because a mail names their account.

Authentic AWS mail can carry anyone's words (a budget's name, a resource's description) and can be sent to any
address. The envelope's root address decides; only the accounts an AWS notice lists route it further; mail about
another account than its root's, or to an unknown root address, waits for an operator. Decided offline exactly as
the pipeline decides (the same code, the same settings), checked against the pipeline itself.
"""

from __future__ import annotations

import email
import email.policy
import json
from pathlib import Path

import pytest

from rootmail.cli import main
from rootmail.domain.rules import load_rule_files
from rootmail.offline import AccountDirectory, load_accounts, triage_file
from samples import sample_pipeline

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"
ACME, GLOBEX, INITECH = "123456789012", "210987654321", "345678901234"
ROOT_OF = {ACME: "aws-root+acme-prod@cloudprovider.example", GLOBEX: "aws-root+globex@cloudprovider.example"}
RULES = load_rule_files(ROOT / "rules")
DIRECTORY = AccountDirectory.of(load_accounts(CORPUS / "accounts.json", CORPUS / "contacts.json"))


def corpus(name: str) -> str:
    return (CORPUS / name).read_text(encoding="utf-8")


def to_root(text: str, old: str, new: str) -> str:
    """The stored mail as if SES had received it for another root address (envelope and To:)."""
    return text.replace(old, new)


def health_naming_globex_in_its_description() -> str:
    """AWS Health's notice about ACME's instance, whose description (words the customer chose: an instance's name,
    a tag) names GLOBEX's account."""
    text = corpus("11-health-single-account.eml")
    return text.replace(
        "Affected resources: ",
        "Description: the batch host that copies data to AWS account 210987654321 (partner)\nAffected resources: ",
        1,
    )


def budget_of_globex_to_acme_root() -> str:
    """GLOBEX's budget (AWS writes GLOBEX's account) with ACME's root address as its subscriber."""
    return to_root(corpus("19-cost-alert-budgets.eml"), ROOT_OF[GLOBEX], ROOT_OF[ACME])


def budget_to_unknown_root_naming_globex() -> str:
    """A stranger's budget (account 111122223333) sent to a root address no account has, named to look like
    GLOBEX's."""
    text = to_root(
        corpus("19-cost-alert-budgets.eml"), ROOT_OF[GLOBEX], "aws-root+nobody@cloudprovider.example"
    )
    text = text.replace("AWS Account 210987654321", "AWS Account 111122223333")
    return text.replace("monthly-total-cost budget", "Globex AWS Account 210987654321 budget", 1)


def budget_naming_globex_on_a_line_of_its_own() -> str:
    """A stranger's budget sent to GLOBEX's root, its name holding a line break and GLOBEX's account line."""
    text = corpus("19-cost-alert-budgets.eml").replace("AWS Account 210987654321", "AWS Account 111122223333")
    return text.replace("Budget Name: monthly-total-cost", "Budget Name: x\nAWS Account 210987654321\n", 1)


def decided(tmp_path: Path, capsys, name: str, text: str) -> dict:
    """`rootmail triage --json` with the sample accounts, as an operator runs it."""
    path = tmp_path / f"{name}.eml"
    path.write_text(text, encoding="utf-8")
    capsys.readouterr()
    assert main(["triage", "--json", "--accounts", str(CORPUS / "accounts.json"), str(path)]) == 0
    return json.loads(capsys.readouterr().out)


def test_an_account_named_in_a_notice_s_free_text_gets_nothing():
    with sample_pipeline() as local:
        local.store_mail("health", health_naming_globex_in_its_description().encode())
        local.wait()
        record = local.ledger().get("health")
        sent = local.sent_mail()
    assert (record["state"], record["account_ids"]) == ("forwarded", [ACME])
    assert len(sent) == 1 and set(sent[0]["destinations"]) == {"ops@acme.example", "cloud-team@acme.example"}


def test_a_budget_about_one_account_sent_to_another_s_root_reaches_neither(tmp_path, capsys):
    result = decided(tmp_path, capsys, "budget", budget_of_globex_to_acme_root())
    assert result["action"] == "queue"
    assert f"names account(s) {GLOBEX}, not only {ACME} whose root address received it" in result["reason"]


def test_a_notice_about_another_account_than_its_root_s_waits_for_an_operator(tmp_path, capsys):
    mapleleaf = "aws-root+mapleleaf@cloudprovider.example"
    suspended = to_root(corpus("20-account-lifecycle-suspended.eml"), mapleleaf, ROOT_OF[ACME])
    result = decided(tmp_path, capsys, "suspended", suspended)
    assert result["action"] == "queue"
    assert f"about account(s) 678901234567, but received at the root address of {ACME}" in result["reason"]
    # An urgent notice still reaches the support team at once, but not the customer.
    ses_review = to_root(
        corpus("10-ses-sending-review.eml"), "aws-root+wayne-media@cloudprovider.example", ROOT_OF[ACME]
    )
    result = decided(tmp_path, capsys, "ses", ses_review)
    assert (result["action"], result["private"]) == ("urgent", True)
    assert "the customer is not notified: about account(s) 901234567890" in result["reason"]


def test_an_id_in_the_text_never_stands_in_for_an_unknown_root_address(tmp_path, capsys):
    result = decided(tmp_path, capsys, "budget", budget_to_unknown_root_naming_globex())
    assert result["action"] == "queue" and result["account_ids"] == []
    assert "never used in place of an unknown root address" in result["reason"]


def test_a_third_party_s_line_naming_the_recipient_does_not_make_its_budget_theirs(tmp_path, capsys):
    result = decided(tmp_path, capsys, "budget", budget_naming_globex_on_a_line_of_its_own())
    assert result["action"] == "queue"
    assert "carries text anyone with an AWS account can set" in result["reason"]


def test_the_customer_s_own_budget_is_still_forwarded(tmp_path, capsys):
    result = decided(tmp_path, capsys, "budget", corpus("19-cost-alert-budgets.eml"))
    assert (result["action"], result["account_ids"]) == ("forward", [GLOBEX])


@pytest.mark.parametrize(
    "spelling",
    [
        "aws-root+acme-prod@cloudprovider.example.",  # a trailing dot: the root domain, fully qualified
        "AWS-Root+Acme-Prod@CloudProvider.Example",
        "<aws-root+acme-prod@cloudprovider.example>",
        '"aws-root+acme-prod"@cloudprovider.example',
    ],
)
def test_another_spelling_of_a_root_address_finds_the_same_account(tmp_path, capsys, spelling):
    # A Health notice that names no account: only its root address can tell whose it is.
    text = corpus("11-health-single-account.eml").replace(f"Account: {ACME}", "")
    text = text.replace(f"for {ROOT_OF[ACME]};", f"for {spelling};", 1)
    result = decided(tmp_path, capsys, "health", text)
    assert (result["action"], result["account_ids"]) == ("forward", [ACME])


def test_a_tag_on_a_root_address_is_part_of_it_unless_the_provider_says_otherwise(
    tmp_path, capsys, monkeypatch
):
    from rootmail.config import get_settings

    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps([{"Id": GLOBEX, "Email": "globex@root.example", "Status": "ACTIVE"}]))
    text = corpus("19-cost-alert-budgets.eml").replace(
        f"for {ROOT_OF[GLOBEX]};", "for globex+billing@root.example;"
    )
    path = tmp_path / "tagged.eml"
    path.write_text(text, encoding="utf-8")

    def run() -> dict:
        get_settings.cache_clear()
        capsys.readouterr()
        assert main(["triage", "--json", "--accounts", str(accounts), str(path)]) == 0
        return json.loads(capsys.readouterr().out)

    try:
        untagged = run()  # a tag is part of the address: no such account, and the ID in the text is not used
        assert (untagged["action"], untagged["account_ids"]) == ("queue", [])
        monkeypatch.setenv("ROOTMAIL_ROOT_ADDRESS_TAG_SEPARATOR", "+")
        tagged = run()
        assert (tagged["action"], tagged["account_ids"]) == ("forward", [GLOBEX])
    finally:
        get_settings.cache_clear()


def test_each_account_of_a_shared_notice_reads_only_its_own_part():
    with sample_pipeline() as local:
        local.store_mail("shared", (CORPUS / "12-health-multi-account.eml").read_bytes())
        local.wait()
        record = local.ledger().get("shared")
        assert record["state"] == "forwarded" and sorted(record["account_ids"]) == [GLOBEX, INITECH]
        bodies = {}
        for sent in local.sent_mail():
            message = email.message_from_string(sent["raw"], policy=email.policy.default)
            bodies[message["X-Rootmail-Account"]] = message.get_body(("plain",)).get_content()
    # Each account's paragraph in the notice: its ID, Region, event and affected resources.
    own = {GLOBEX: ("i-0b6e2d9f4c1a7e3d5",), INITECH: ("i-04a8c3e7b2d9f1c6e", "i-0e9d1f5a3b7c2e8d4")}
    for account, body in bodies.items():
        other = INITECH if account == GLOBEX else GLOBEX
        assert all(resource in body for resource in own[account]), account
        assert other not in body and not any(resource in body for resource in own[other]), account
        assert "EC2 has detected degradation" in body  # what they share stays


CRAFTED = {
    "health-naming-globex": health_naming_globex_in_its_description,
    "budget-of-globex-to-acme": budget_of_globex_to_acme_root,
    "budget-to-unknown-naming-globex": budget_to_unknown_root_naming_globex,
    "budget-line-naming-globex": budget_naming_globex_on_a_line_of_its_own,
}


def test_offline_triage_decides_every_mail_as_the_pipeline_does(tmp_path):
    """Operators and rule previews see exactly what the pipeline will do: the corpus and the crafted mails above,
    through `triage_file` and through the pipeline on the emulator, give the same accounts and decision."""
    mails = {p.stem: p for p in sorted(CORPUS.glob("*.eml"))}
    for name, build in CRAFTED.items():
        path = tmp_path / f"{name}.eml"
        path.write_text(build(), encoding="utf-8")
        mails[name] = path
    offline = {name: triage_file(path, RULES, DIRECTORY) for name, path in mails.items()}
    with sample_pipeline() as local:
        for name, path in mails.items():
            local.store_mail(name, path.read_bytes())
        local.wait(timeout=300)
        ledger = local.ledger()
        for name, result in offline.items():
            record = ledger.get(name)
            assert record is not None, name
            seen = (record["category"], record["action"], sorted(record["account_ids"]))
            assert seen == (result["category"], result["action"], sorted(result["account_ids"])), name
