"""What the default rules may take, and what they must leave to an operator: authentic AWS mail worded as no urgent
rule knows, AWS's marketing, text a third party writes, and notices about another account. Each mail is stored as
SES stores it for the sample organisation's account 123456789012 and decided as the pipeline decides."""

from __future__ import annotations

from pathlib import Path

import pytest

from rootmail.app.catalogue import as_stored
from rootmail.app.offline import AccountDirectory, load_accounts, triage_file
from rootmail.domain.rules.files import load_rule_files
from rootmail.domain.rules.index import RuleSet

ROOT = Path(__file__).resolve().parents[1]
RULES = RuleSet(load_rule_files(ROOT / "rules"))
CORPUS = ROOT / "tests" / "corpus"
DIRECTORY = AccountDirectory.of(load_accounts(CORPUS / "accounts.json", CORPUS / "contacts.json"))
NOTICES = "Amazon Web Services <no-reply-aws@amazon.com>"


def triage(tmp_path: Path, sender: str, subject: str, body: str) -> dict:
    path = tmp_path / "mail.eml"
    path.write_bytes(as_stored({"from": sender, "subject": subject, "body": body, "source": "test"}))
    return triage_file(path, RULES, DIRECTORY)


@pytest.mark.parametrize(
    ("subject", "body", "words"),
    [
        (
            "Scheduled maintenance for your EC2 instances",
            "Your card has expired. Update it to avoid interruption. Affected resources: i-0abc (us-east-1)",
            "card has expired",
        ),
        (
            "Amazon Web Services Billing Statement Available",
            "Your latest billing statement is available. The payment was declined by your bank.",
            "payment was declined",
        ),
        (
            "[Action Required] Amazon EC2 scheduled maintenance",
            "We have detected suspicious\nactivity from your instance; scheduled maintenance follows.",
            "suspicious activity",
        ),
        (
            "[Action Required] Amazon RDS maintenance",
            "We have received reports that your instance is sending unsolicited messages. Scheduled maintenance follows.",
            "unsolicited",
        ),
    ],
)
def test_a_forward_or_ignore_rule_leaves_mail_with_urgent_words_to_an_operator_who_is_alerted(
    tmp_path, subject, body, words
):
    result = triage(tmp_path, NOTICES, subject, body)
    assert result["rule_id"] is not None  # a rule took it...
    assert (
        result["action"] == "queue" and result["alert"]
    )  # ...but it waits, and the operators hear of it now
    assert words in result["signals"]
    assert f"rule {result['rule_id']} would" in result["reason"]


def test_the_same_notice_without_urgent_words_is_forwarded(tmp_path):
    result = triage(
        tmp_path,
        NOTICES,
        "Scheduled maintenance for your EC2 instances",
        "Affected resources: i-0abc (us-east-1)",
    )
    assert (result["category"], result["action"], result["alert"]) == ("health", "forward", False)


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        (
            "Prepare for end of support",
            "Windows Server 2012 reaches end of support. Plan your scheduled maintenance.",
        ),
        (
            "AWS Marketplace: new offers",
            "Thank you for subscribing to AWS Marketplace news. Private offer inside.",
        ),
        (
            "Save with AWS Budgets",
            "You requested that we alert you when the cost of AWS Budgets webinars changes.",
        ),
    ],
)
def test_aws_marketing_is_never_forwarded(tmp_path, subject, body):
    result = triage(tmp_path, "Amazon Web Services <aws-marketing-email-replies@amazon.com>", subject, body)
    assert result["action"] not in ("forward", "urgent", "ticket"), result["reason"]


def test_budgets_wording_from_another_sender_is_not_taken_as_a_budgets_alert(tmp_path):
    subject = "AWS Budgets: Call +1-555-0100 now has exceeded your alert threshold"
    body = "AWS Budget Notification\nYou requested that we alert you when the ACTUAL Cost is greater than $1."
    assert triage(tmp_path, NOTICES, subject, body)["action"] == "queue"
    # From Budgets' own sender it is a cost alert, held for an operator: its name is the budget owner's text.
    held = triage(tmp_path, "AWS Budgets <budgets@costalerts.amazonaws.com>", subject, body)
    assert (held["category"], held["action"]) == ("cost-alert", "queue")


@pytest.mark.parametrize(
    "sender", ["AWS Health <health@aws.com>", "AWS Notifications <notifications@aws.com>"]
)
def test_a_health_notice_tagged_for_another_account_reaches_not_the_roots_customer(tmp_path, sender):
    body = "AWS Health Event\nWe will retire your instance i-0abc on 2026-12-24.\n"
    other = triage(tmp_path, sender, "Amazon EC2 Instance Retirement [AWS Account: 111122223333]", body)
    assert other["action"] == "queue" and other["account_ids"] == []
    assert other["unknown_account_ids"] == ["111122223333"]
    own = triage(tmp_path, sender, "Amazon EC2 Instance Retirement [AWS Account: 123456789012]", body)
    assert (own["action"], own["account_ids"]) == ("forward", ["123456789012"])


def test_a_hold_on_the_account_stays_with_the_operators(tmp_path):
    result = triage(
        tmp_path,
        "no-reply@amazonaws.com",
        "Your Amazon Web Services (AWS) Account",
        "We have placed a temporary hold on your account until we can verify your information.",
    )
    assert (result["category"], result["action"]) == ("account-lifecycle", "restricted")


def test_a_payment_problem_that_mentions_the_support_center_is_payment_trouble_not_a_case(tmp_path):
    result = triage(
        tmp_path,
        "no-reply@amazonaws.com",
        "Amazon Web Services Account Alert",
        "We were unable to charge your credit card. Contact us through the AWS Support Center. "
        "We value your feedback.",
    )
    assert (result["category"], result["action"]) == ("billing", "restricted")


def test_a_notices_subject_tag_lists_only_for_the_senders_that_write_about_several_accounts(tmp_path):
    """Mail from another sender is about the accounts its text names: its own tag does not hide another account."""
    result = triage(
        tmp_path,
        NOTICES,
        "[AWS Account: 123456789012] AWS Free Tier limit alert",
        "Your AWS account 210987654321 has exceeded 85% of the usage limit for one or more AWS Free Tier services.",
    )
    assert result["action"] == "queue" and "210987654321" in result["hold"]


@pytest.mark.parametrize(
    "subject",
    [
        "Amazon EC2 Instance Retirement [AWS Account: 111122223333] [AWS Account: 123456789012]",
        "Amazon EC2 Instance Retirement [AWS Account: 123456789012, 111122223333]",
    ],
)
def test_a_subject_tagging_more_than_one_account_waits_for_an_operator(tmp_path, subject):
    result = triage(tmp_path, "AWS Health <health@aws.com>", subject, "AWS Health Event\nInstance i-0abc.\n")
    assert result["action"] == "queue" and "not exactly one" in result["hold"]


def test_a_hold_that_says_the_account_was_suspended_stays_with_the_operators(tmp_path):
    result = triage(
        tmp_path,
        "no-reply@amazonaws.com",
        "Your AWS account has been suspended",
        "We placed a temporary hold on your account. Your AWS account has been suspended until we verify it.",
    )
    assert (result["category"], result["action"]) == ("account-lifecycle", "restricted")


def test_aws_security_advice_in_ordinary_mail_does_not_hold_it(tmp_path):
    result = triage(
        tmp_path,
        NOTICES,
        "Welcome to Amazon Web Services",
        "Thank you for creating an Amazon Web Services (AWS) account. To prevent unauthorized access, turn on MFA. "
        "AWS will never ask for your password: beware of phishing.",
    )
    assert (result["action"], result["alert"]) == ("ignore", False)
