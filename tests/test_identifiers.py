"""Account IDs and support case IDs: every labelled form in the catalogue, and nothing unlabelled."""

from __future__ import annotations

import pytest

from rootmail.domain.mail.identifiers import find_account_ids, find_case_id, find_identifiers
from rootmail.domain.mail.parse import parse_mail
from samples import aws_mail


@pytest.mark.parametrize(
    "text",
    [
        "RE: Your AWS Abuse Report [12905018968-1] [AWS ID 123456789012]",
        "Amazon Web Services Billing Statement Available [Account: 123456789012]",
        "Relevé de facture d'Amazon Web Services disponible [Compte: 123456789012]",
        "Account ID: 123456789012",
        "AWS Account ID: 123456789012",
        "Account: 123456789012",
        "account id 123456789012",
        "You're listed as the primary contact for AWS account 123456789012.",
        "Your AWS account 123456789012 has exceeded 85% of the usage limit for one or more services.",
        "Your AWS account 123456789012 is compromised",
        "Your AWS account <123456789012> is compromised",
        "[Action Required] Suspicious activity in your AWS account [123456789012]",
        "Account ID: 1234-5678-9012",
        "AWS account 1234-5678-9012",
        "アカウント: 123456789012",
        "アカウント：123456789012",
        "アカウント ID：123456789012",
        "アカウントID: 1234-5678-9012",
        "AWS アカウント 123456789012 は停止されました",
        "AWSアカウント「123456789012」",
        "アカウント ID：１２３４５６７８９０１２",
    ],
)
def test_every_labelled_account_id_format(text):
    assert find_account_ids(text, "") == ["123456789012"]
    assert find_account_ids("", f"Hello,\n\n{text}\n\nThanks") == ["123456789012"]


@pytest.mark.parametrize(
    "text",
    [
        "Order 123456789012 has shipped",  # unlabelled
        "Reference: 123456789012",
        "Case ID: 177666106600814",  # a 15-digit case ID
        "Account: 177666106600814",  # too long to be an account ID, even labelled
        "Account ID: 1234567890123",
        "Account ID: 12345678901",
        "Account ID: 1234-5678-9012-3456",
        "subaccount 123456789012",
        "Amazon Web Services: New Support case: 5244329601",
    ],
)
def test_unlabelled_or_wrong_length_numbers_are_not_account_ids(text):
    assert find_account_ids(text, text) == []


def test_health_mail_naming_several_accounts():
    body = (
        "AWS Health Event\nEvent type code: AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED\n"
        "Affected accounts: 111111111111, 222222222222,\n333333333333\n"
        "Account(s):\n- 444444444444 (production)\n- 555555555555\n\nRegion: us-east-1\n"
        "Account ID(s): 666666666666 and 777777777777\n"
        "Order 888888888888\n"
    )
    assert find_account_ids("", body) == [
        "111111111111",
        "222222222222",
        "333333333333",
        "444444444444",
        "555555555555",
        "666666666666",
        "777777777777",
    ]


def test_ids_are_unique_in_order_of_first_appearance_subject_first():
    subject = "Billing Statement Available [Account: 222222222222] / Relevé [Compte: 222222222222]"
    body = "Account ID: 111111111111\nAWS account 222222222222\nAccount: 1111-1111-1111"
    assert find_account_ids(subject, body) == ["222222222222", "111111111111"]


@pytest.mark.parametrize(
    ("subject", "body", "case_id"),
    [
        ("Amazon Web Services: New Support case: 5244329601", "", "5244329601"),
        ("Amazon Web Services: You have opened a new Support case: 177666106600814", "", "177666106600814"),
        ("RE:[CASE 5244329601] EC2 instance unreachable", "", "5244329601"),
        ("Re: [CASE 177666106600814] Quota increase", "", "177666106600814"),
        ("", "Amazon Web Services has opened case 5244329601 on your behalf.", "5244329601"),
        ("", "Case ID: 177666106600814\nSubject: x\nSeverity: Urgent", "177666106600814"),
        (
            "",
            "https://console.aws.amazon.com/support/home#/case/?displayId=5244329601&language=en",
            "5244329601",
        ),
        ("", "ケース ID: 177666106600814", "177666106600814"),
        ("", "ケースID：５２４４３２９６０１", "5244329601"),
        ("[CASE 1111111111] subject wins", "Case ID: 2222222222", "1111111111"),
    ],
)
def test_case_ids_old_and_new(subject, body, case_id):
    assert find_case_id(subject, body) == case_id


@pytest.mark.parametrize(
    "text",
    [
        "Account ID: 123456789012",  # 12 digits: an account, not a case
        "case 12345678901",  # 11 digits
        "case 1234567890123456",  # 16 digits
        "Report 5244329601",  # unlabelled
        "case-12345678910-2013-c4c1d2bf33c5cf47",  # the API form is not a display ID
    ],
)
def test_no_case_id(text):
    assert find_case_id(text, text) is None


@pytest.mark.parametrize(
    ("subject", "body", "account_ids", "case_id"),
    [
        # The patterns are only tried before numbers: a label far before its number is still found...
        ("", "Account:" + " " * 300 + "\n" * 50 + "123456789012", ["123456789012"], None),
        ("", "Case ID:" + "\n" * 400 + "5244329601", [], "5244329601"),
        # ... unlabelled numbers of the same shape before and between labelled ones change nothing ...
        (
            "",
            "Order 123456789012, Account: 210987654321, Ref 111122223333, AWS account 1234-5678-9012",
            None,
            None,
        ),
        ("", "Report 1111111111 and 123456789012345, then case 5244329601", [], "5244329601"),
        # ... and case-insensitive matching keeps its Unicode equivalents (ſ is s, K is k).
        ("", "AWſ ID 123456789012", ["123456789012"], None),
        ("ACCOUNT: 123456789012", "", ["123456789012"], None),
        (
            "",
            "アカウント ID：１２３４－５６７８－９０１２ ケース番号：５２４４３２９６０１",
            ["123456789012"],
            "5244329601",
        ),
    ],
)
def test_labels_are_found_wherever_they_are_before_their_number(subject, body, account_ids, case_id):
    expected = ["210987654321", "123456789012"] if account_ids is None else account_ids
    assert find_account_ids(subject, body) == expected
    assert find_case_id(subject, body) == case_id
    found = find_identifiers(subject, body)
    assert (list(found.account_ids), found.case_id) == (expected, case_id)


# ---- where AWS lists the accounts a notice concerns ------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Affected accounts:\n111111111111\n222222222222\n\nThank you",
        "影響を受けるアカウント:\n111111111111\n222222222222\n",
        "影響を受けるアカウント\n1111-1111-1111\n2222-2222-2222\n",
        "Affected account(s)\n\n1111-1111-1111\n2222-2222-2222",
        # An HTML table as the parser reads it: cells apart by tabs, the account in the first column.
        "Affected resources\n\nAccount ID\tResource\tRegion\n111111111111\ti-1\tus-east-1\n"
        "2222-2222-2222\ti-2\tus-east-1\n\nThanks",
        "AWS アカウント ID\tリソース\n111111111111\ti-1\n222222222222\ti-2",
    ],
)
def test_bare_ids_under_a_heading_or_in_a_table_are_listed(text):
    found = find_identifiers("", text)
    assert found.listed_account_ids == ("111111111111", "222222222222")


@pytest.mark.parametrize(
    "text",
    [
        # A sentence that begins with the word is no table header, and an ID in running text is not listed.
        "Account name was set by the owner\n111111111111 is in the name",
        "Account ID\tResource\nThe resource 111111111111\ti-1",
        "Your account 111111111111 is fine.",
        "予算名にアカウント 111111111111 と書かれています",
    ],
)
def test_ids_outside_a_listing_are_not_listed(text):
    assert find_identifiers("", text).listed_account_ids == ()


def test_an_html_table_of_affected_accounts_is_read_as_a_listing():
    html = (
        "<p>Affected resources</p><table><tr><th>Account ID</th><th>Resource</th><th>Region</th></tr>"
        "<tr><td>111111111111</td><td>i-1</td><td>us-east-1</td></tr>"
        "<tr><td>2222-2222-2222</td><td>i-2</td><td>us-east-1</td></tr></table><p>Thanks</p>"
    )
    mail = parse_mail(aws_mail("11-health-single-account.eml", subject="Notice", html=html))
    assert mail.listed_account_ids == ["111111111111", "222222222222"]
