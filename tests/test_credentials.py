"""Credentials never reach a customer, through any door: a forward (even one an operator's rule asks for), the public
comment of an urgent ticket, the requester of a case ticket. Found by what credentials look like (codes next to code
words, sign-in and reset links, one-time passwords in the languages AWS writes) in every text a customer could read:
the text, the HTML alternative, text attachments."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest

from rootmail.entrypoints.cli import main
from samples import aws_mail, sample_pipeline

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"
ACME = "123456789012"
OPERATOR_RULE = """
[[rule]]
id = "operator-forwards-notices"
description = "An operator's rule from the Slack modal, which preselects forward"
priority = 300
category = "health"
action = "forward"
[rule.match]
sender_domains = ["aws.com", "amazon.com", "amazonaws.com"]
subject = '(?i)notice'
"""


NOTICE = "AWS Health Event\nAccount: 123456789012\n\nThis is a notice about your account.\n"
MARKS = {
    "one-time password": {"plain": NOTICE + "Your one-time password is available.\n"},
    "sign-in code": {"plain": NOTICE + "Use this sign-in code to continue.\n"},
    "認証コード (Japanese)": {"plain": NOTICE + "認証コードは 482913 です。\n"},
    "a phrase broken over a line": {"plain": NOTICE + "Enter the verification\ncode below.\n"},
    "an alphanumeric code next to 'code'": {"plain": NOTICE + "Enter this code to confirm: a7K9q2\n"},
    "a code written 482-913": {"plain": NOTICE + "Use code 482-913 to continue.\n"},
    "a code in full-width digits": {"plain": NOTICE + "コード：４８２９１３\n"},
    "認証番号 (Japanese)": {"plain": NOTICE + "認証番号をお知らせします。\n"},
    "an OTP named by its initials, in capitals": {"plain": NOTICE + "Your OTP is waiting in the app.\n"},
    "a code a sentence after its word": {
        "plain": NOTICE + "Here is the code that we generated for your request just a moment ago: 482913\n"
    },
    "an MFA recovery link": {
        "plain": NOTICE + "Continue: https://signin.aws.amazon.com/noMfa?token=QWxhZGRpbjpvcGVu&type=root\n"
    },
    "a sign-in link on signin.aws": {
        "plain": NOTICE + "https://us-east-1.signin.aws/platform/login?workflowStateHandle=af93e0b1\n"
    },
    "an SNS subscription confirmation": {
        "plain": NOTICE
        + "https://sns.us-east-1.amazonaws.com/confirmation.html?TopicArn=arn:aws:sns:us-east-1:111122223333:t"
        + "&Token=2336412f37fb687f5d51e6e2425c464de\n"
    },
    "a reset link inside a tracking link": {
        "plain": NOTICE
        + "https://x.r.us-east-1.awstrack.me/L0/https:%2F%2Fsignin.aws.amazon.com%2Fresetpassword%3Ftype%3D"
        + "RootUser%26token%3Dabc/1/0100019d-000000/Xy0=385\n"
    },
    "a sign-in link escaped inside a tracking link, and nothing else": {
        "plain": NOTICE
        + "https://x.r.us-east-1.awstrack.me/L0/https:%2F%2Fsignin.aws.amazon.com%2Foauth%3Fstate%3Dxyz/1/0100019d-"
        + "000000/Xy0=385\n"
    },
    "a sign-in link inside a tracking link, unescaped": {
        "plain": NOTICE
        + "https://x.r.us-east-1.awstrack.me/L0/https://signin.aws.amazon.com/oauth?state=xyz/1/0100019d\n"
    },
    "a link inside more links than are read": {
        "plain": NOTICE + "https://t.example/" + "https://t.example/" * 40 + "notice\n"
    },
    "a code only in the HTML alternative": {
        "plain": NOTICE + "See the HTML version of this message.\n",
        "html": "<p>AWS Health Event</p><p>Your verification code:</p><p><b>482913</b></p>",
    },
    "a code only in a text attachment": {
        "plain": NOTICE + "Details are attached.\n",
        "attachment": "Your security code is 482913\n",
    },
}


def triage(tmp_path: Path, capsys, raw: bytes, *, operator_rule: bool = False) -> dict:
    """`rootmail triage --json` with the sample accounts and the default rules (and an operator's forward rule)."""
    rules = ROOT / "rules"
    if operator_rule:
        rules = tmp_path / "rules"
        shutil.copytree(ROOT / "rules", rules)
        (rules / "from-slack.toml").write_text(OPERATOR_RULE, encoding="utf-8")
    path = tmp_path / "mail.eml"
    path.write_bytes(raw)
    capsys.readouterr()
    code = main(
        ["triage", "--json", "--rules", str(rules), "--accounts", str(CORPUS / "accounts.json"), str(path)]
    )
    assert code == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("mark", sorted(MARKS))
def test_credentials_are_never_forwarded_whatever_the_rule(tmp_path, capsys, mark):
    raw = aws_mail("11-health-single-account.eml", subject="AWS notice about your account", **MARKS[mark])
    result = triage(tmp_path, capsys, raw, operator_rule=True)
    assert (result["category"], result["action"]) == ("credentials", "restricted"), result["reason"]


def test_the_same_notice_without_credentials_is_forwarded(tmp_path, capsys):
    """The marks above are what makes those mails credential mail: without them the notice is forwarded."""
    plain = NOTICE + (
        "Event type code: AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED\nError code 500 at 2026-05-01 10:00 UTC.\n"
        "Reference 177666106600814. Order 1234567890.\n"
        "https://x.r.us-east-1.awstrack.me/L0/https:%2F%2Fconsole.aws.amazon.com%2Fhealth/1/0100019d-000000/a=1\n"
        "https://docs.aws.amazon.com/ses/latest/dg/verify-email-addresses.html\n"
        "Amazon Web Services, Inc., 410 Terry Avenue North, Seattle, WA 98109-5210\n"
    )
    raw = aws_mail("11-health-single-account.eml", subject="AWS notice about your account", plain=plain)
    result = triage(tmp_path, capsys, raw, operator_rule=True)
    assert result["action"] == "forward", result["reason"]


def uploaded(uploads: dict) -> list[bytes]:
    """The bytes of every file uploaded to the Zendesk stand-in."""
    return [bytes(a["data"]) for upload in uploads.values() for a in upload["attachments"]]


RESET = "https://signin.aws.amazon.com/resetpassword?type=RootUser&token=SECRETRESETTOKEN42&key=k1"


def test_an_urgent_notice_carrying_a_reset_link_tells_no_customer_and_copies_no_token():
    compromised = (
        "Your AWS account 123456789012 is compromised.\n"
        f"We have reset your root password. Choose a new one here: {RESET}\n"
    )
    raw = aws_mail("05-account-compromise.eml", subject="Your AWS account is compromised", plain=compromised)
    with sample_pipeline() as local:
        local.store_mail("compromised", raw)
        local.wait()
        record = local.ledger().get("compromised")
        tickets = local.zendesk.tickets
        uploads = local.zendesk.uploads
        alerts = local.slack.messages
    assert record["state"] == "escalated" and record["category"] == "account-compromise"
    [ticket] = tickets
    assert ticket["priority"] == "urgent" and ticket["requester"] is None  # nobody outside is told
    assert all(not c["public"] for c in ticket["comments"])
    assert "SECRETRESETTOKEN42" not in json.dumps(tickets) + json.dumps(alerts)
    assert not any(b"SECRETRESETTOKEN42" in data for data in uploaded(uploads))
    assert "the customer is not notified" in record["reason"]


def test_a_sign_in_code_in_case_mail_opens_a_ticket_no_customer_is_told_of():
    case = (
        "Amazon Web Services has opened case 5244329601 on your behalf.\n\nCase ID: 5244329601\n"
        "To finish, enter the verification code 482913 in the console.\n"
    )
    raw = aws_mail(
        "01-support-case-new.eml", subject="Amazon Web Services: New Support case: 5244329601", plain=case
    )
    with sample_pipeline() as local:
        local.store_mail("case", raw)
        local.wait()
        record = local.ledger().get("case")
        tickets = local.zendesk.tickets
        uploads = local.zendesk.uploads
    assert record["state"] == "ticketed"
    [ticket] = tickets
    assert ticket["requester"] is None
    assert "482913" not in json.dumps(ticket)
    assert uploaded(uploads) == []  # nor its original


def test_casefolded_text_holds_otp_in_no_other_letters_than_o_t_p():
    """credential_marks looks for the substring "otp" before asking Python's re for `(?i)\\botp\\b` in casefolded
    text: exact, because over every code point, what (?i) reads as o, t or p casefolds to that very letter."""
    everything = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)
    for letter in "otp":
        read_as_letter = set(re.findall(letter, everything, re.IGNORECASE))
        assert {c.casefold() for c in read_as_letter} == {letter}
    assert not {"O", "T", "P"} & set(everything.casefold())
