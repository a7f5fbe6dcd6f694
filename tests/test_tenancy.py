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
import re
from pathlib import Path

import pytest

from rootmail.app.offline import AccountDirectory, load_accounts, triage_file
from rootmail.domain.rules.files import load_rule_files
from rootmail.entrypoints.cli import main
from samples import aws_mail, sample_pipeline

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


THIRD_PARTY = "carries text anyone with an AWS account writes"


def budget_naming_the_victim() -> str:
    """A stranger's budget, in the current layout (the alert names no account of AWS's own), named to look like an
    AWS notice about ACME, with ACME's root address as its subscriber."""
    name = f"AWS account {ACME} SUSPENDED - pay now at https//acme-billing.example or call +1-555-0100"
    html = (
        "<p>Dear AWS Customer,</p><p>You requested that we alert you when the actual cost associated with your "
        f"{name} budget exceeds $0.01 for the current month.</p><table><tr><td>Budget Name</td><td>Budget Type</td>"
        f"</tr><tr><td>{name}</td><td>Cost</td></tr></table>"
    )
    subject = f"AWS Budgets: {name} has exceeded your alert threshold"
    return aws_mail("19-cost-alert-budgets.eml", subject=subject, html=html, root=ROOT_OF[ACME]).decode()


@pytest.mark.parametrize(
    "build",
    [budget_of_globex_to_acme_root, budget_naming_globex_on_a_line_of_its_own, budget_naming_the_victim],
    ids=[
        "another account's budget",
        "a line of its name naming the recipient",
        "its name naming the recipient",
    ],
)
def test_a_budget_alert_reaches_no_customer_without_an_operator_whatever_it_names(tmp_path, capsys, build):
    result = decided(tmp_path, capsys, "budget", build())
    assert (result["category"], result["action"]) == ("cost-alert", "queue")
    assert THIRD_PARTY in result["reason"]


def test_a_free_tier_alert_is_forwarded_for_its_own_account_and_held_for_another(tmp_path, capsys):
    free_tier = corpus("18-cost-alert-free-tier.eml")
    own = decided(tmp_path, capsys, "own", free_tier)
    assert own["action"] == "forward"
    [account] = own["account_ids"]
    other_root = next(root for account_id, root in ROOT_OF.items() if account_id != account)
    envelope = re.search(r"\n for ([^\s;]+);", free_tier)
    assert envelope is not None
    result = decided(tmp_path, capsys, "other", free_tier.replace(envelope.group(1), other_root))
    assert result["action"] == "queue" and f"about account(s) {account}" in result["reason"]


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
    accounts.write_text(json.dumps([{"Id": ACME, "Email": "acme@root.example", "Status": "ACTIVE"}]))
    # A Health notice that names no account: only its root address can tell whose it is.
    text = corpus("11-health-single-account.eml").replace(f"Account: {ACME}", "")
    text = text.replace(f"for {ROOT_OF[ACME]};", "for acme+billing@root.example;", 1)
    path = tmp_path / "tagged.eml"
    path.write_text(text, encoding="utf-8")

    def run() -> dict:
        get_settings.cache_clear()
        capsys.readouterr()
        assert main(["triage", "--json", "--accounts", str(accounts), str(path)]) == 0
        return json.loads(capsys.readouterr().out)

    try:
        untagged = run()  # a tag is part of the address: no such account
        assert (untagged["action"], untagged["account_ids"]) == ("queue", [])
        monkeypatch.setenv("ROOTMAIL_ROOT_ADDRESS_TAG_SEPARATOR", "+")
        tagged = run()
        assert (tagged["action"], tagged["account_ids"]) == ("forward", [ACME])
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


STRANGER = "555555555555"  # an account of no customer of ours


@pytest.mark.parametrize("sender", ["health@aws.com", "notifications@aws.com"])
def test_a_health_notice_reaches_only_the_accounts_it_lists(tmp_path, capsys, sender):
    """AWS also writes to an account's alternate contacts, which anyone can point at a root address of ours: a
    notice about a stranger's account, or another customer's, never reaches the root's customer."""
    notice = corpus("11-health-single-account.eml").replace("<health@aws.com>", f"<{sender}>")
    stranger = decided(
        tmp_path, capsys, "stranger", notice.replace(f"Account: {ACME}", f"Account: {STRANGER}")
    )
    assert (stranger["action"], stranger["account_ids"]) == ("queue", [])
    assert f"not {ACME} whose root address received it" in stranger["reason"]
    globex = decided(tmp_path, capsys, "globex", notice.replace(f"Account: {ACME}", f"Account: {GLOBEX}"))
    assert (globex["action"], globex["account_ids"]) == ("forward", [GLOBEX])


def test_a_stranger_s_urgent_health_notice_tells_no_customer_of_ours(tmp_path, capsys):
    notice = to_root(
        corpus("07-account-compromise-health.eml"),
        "aws-root+wayne-media@cloudprovider.example",
        ROOT_OF[ACME],
    )
    result = decided(
        tmp_path, capsys, "exposed", notice.replace("Account: 901234567890", f"Account: {STRANGER}")
    )
    assert (result["category"], result["action"], result["private"]) == ("account-compromise", "urgent", True)


CASE_CC = """Dear AWS Customer,

You have opened a new support case with Amazon Web Services. The details of the case are as follows:

Case ID: 177666106699999
Subject: Your AWS account is compromised - immediate action required
Severity: Urgent
Correspondence: Your AWS Account is compromised! An exposed access key was found.
To keep your workloads running, sign in at https://aws-console-secure.example/login and re-enter your root
password within 24 hours, or call our security desk at +1-555-0100.

https://console.aws.amazon.com/support/home#/case/?displayId=177666106699999&language=en
"""


def test_a_stranger_s_support_case_copied_to_a_root_address_tells_no_customer():
    """Anyone can open a case in their own account and copy any address on it: AWS then mails the case, in their
    words, from AWS's own sender. The support team gets it at once, the customer hears nothing of it."""
    urgent = aws_mail(
        "01-support-case-new.eml",
        subject="Amazon Web Services: You have opened a new Support case: 177666106699999",
        plain=CASE_CC,
        root=ROOT_OF[ACME],
    )
    plain = aws_mail(
        "01-support-case-new.eml",
        subject="Amazon Web Services: You have opened a new Support case: 177666106688888",
        plain=CASE_CC.replace("177666106699999", "177666106688888")
        .split("Subject:")[0]
        .replace("Case ID:", "Subject: Billing question\nCase ID:")
        + "Correspondence: Please call +1-555-0100 about your account today.\n",
        root=ROOT_OF[ACME],
    )
    with sample_pipeline() as local:
        local.store_mail("case-urgent", urgent)
        local.store_mail("case-plain", plain)
        local.wait()
        ledger = local.ledger()
        records = {name: ledger.get(name) for name in ("case-urgent", "case-plain")}
        tickets = local.zendesk.tickets
        alerts = local.slack.messages
    assert records["case-urgent"]["state"] == "escalated" and records["case-plain"]["state"] == "ticketed"
    assert len(tickets) == 2 and len(alerts) == 1
    for ticket in tickets:
        assert ticket["requester"] is None
        assert not any(comment["public"] for comment in ticket["comments"])


def aggregated_html_notice() -> bytes:
    """AWS Health's aggregated notice to the management account's root for ACME and GLOBEX, HTML only, each field
    in a paragraph of its own (the layout of tests/corpus/13-health-html-only.eml)."""

    def block(account: str, region: str, resources: str) -> str:
        return (
            "<h2>[Retirement Notification] Amazon EC2 instance scheduled for retirement</h2>"
            f"<p>Account: {account}</p><p>Region: {region}</p><p>Service: EC2</p>"
            "<p>Event type code: AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED</p>"
            f"<p>Affected resources: {resources}</p>"
        )

    html = (
        "<p>AWS Health Event</p><p>2 events were aggregated into this notification.</p>"
        + block(ACME, "ap-northeast-1", "i-0acmeacmeacme0001")
        + block(GLOBEX, "eu-west-3", "i-0globexsecretdb01 (globex-payments-primary)")
        + "<h3>Description</h3><p>EC2 has detected degradation of the hardware hosting the instances above.</p>"
    )
    return aws_mail(
        "12-health-multi-account.eml",
        subject="[Retirement Notification] Amazon EC2 instances scheduled for retirement (2 accounts)",
        html=html,
        root="aws-root+management@cloudprovider.example",
    )


def test_each_account_of_an_html_aggregated_notice_reads_only_its_own_part():
    with sample_pipeline() as local:
        local.store_mail("aggregated", aggregated_html_notice())
        local.wait()
        record = local.ledger().get("aggregated")
        bodies = {}
        for sent in local.sent_mail():
            message = email.message_from_string(sent["raw"], policy=email.policy.default)
            bodies[message["X-Rootmail-Account"]] = message.get_body(("plain",)).get_content()
    assert record["state"] == "forwarded" and sorted(bodies) == [ACME, GLOBEX]
    assert "i-0acmeacmeacme0001" in bodies[ACME] and "ap-northeast-1" in bodies[ACME]
    for leaked in (GLOBEX, "eu-west-3", "globex", "i-0globexsecretdb01"):
        assert leaked not in bodies[ACME]
    for leaked in (ACME, "ap-northeast-1", "i-0acmeacmeacme0001"):
        assert leaked not in bodies[GLOBEX]
    assert all("EC2 has detected degradation" in body for body in bodies.values())


CRAFTED = {
    "health-naming-globex": health_naming_globex_in_its_description,
    "budget-of-globex-to-acme": budget_of_globex_to_acme_root,
    "budget-to-unknown-naming-globex": budget_to_unknown_root_naming_globex,
    "budget-line-naming-globex": budget_naming_globex_on_a_line_of_its_own,
    "budget-naming-the-victim": budget_naming_the_victim,
    "aggregated-html": lambda: aggregated_html_notice().decode(),
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
