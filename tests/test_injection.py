"""Injection: what a mail (or a contact list) holds can never add a header to a forward, markup to a Zendesk
ticket, or a mention to Slack (the Slack side is tests/test_operator_messages.py)."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

from rootmail.app.offline import load_accounts
from rootmail.domain.accounts import Account
from rootmail.domain.mail.parse import parse_mail
from rootmail.domain.rules.files import load_rule_files
from rootmail.messages.render import render_forward
from rootmail_local.emulator import LocalPipeline

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"
HOSTILE = "<script>alert(1)</script> **bold** [link](https://evil.example) {{ticket.requester.email}}"


def test_a_contact_address_carrying_a_header_is_never_a_recipient():
    raw = (CORPUS / "11-health-single-account.eml").read_bytes()
    account = Account.from_dict(
        {
            "account_id": "123456789012",
            "email": "aws-root+acme-prod@cloudprovider.example",
            "contacts": ["ops@acme.example\r\nBcc: evil@example.net", "cloud-team@acme.example"],
        }
    )
    rendered = render_forward(
        parse_mail(raw),
        raw,
        account,
        sender="no-reply@notices.cloudprovider.example",
        reply_to="support@cloudprovider.example",
        mail_id="m",
        other_account_ids=[],
        kind="operations",
        suppressed=set(),
    )
    assert rendered.to == ("cloud-team@acme.example",)
    message = email.message_from_bytes(rendered.data, policy=email.policy.default)
    assert message["Bcc"] is None and "evil@example.net" not in str(message["To"])


def test_ticket_comments_are_plain_text_whatever_the_mail_holds():
    name = "01-support-case-new"
    raw = (CORPUS / f"{name}.eml").read_text(encoding="utf-8")
    raw = raw.replace("\nSubject: ", f"\nSubject: {HOSTILE} ", 1)
    with LocalPipeline() as pipeline:
        pipeline.seed_accounts(load_accounts(CORPUS / "accounts.json", CORPUS / "contacts.json"))
        pipeline.seed_rules(load_rule_files(ROOT / "rules"))
        pipeline.store_mail(name, raw.encode("utf-8"))
        pipeline.wait()
        assert pipeline.ledger().get(name)["state"] == "ticketed"
        sent = [r["json"] for r in pipeline.zendesk.requests if r["method"] in ("POST", "PUT") and r["json"]]
    comments = [
        body["ticket"]["comment"] for body in sent if "ticket" in body and "comment" in body["ticket"]
    ]
    assert comments
    for comment in comments:
        assert "html_body" not in comment  # Zendesk shows `body` as text: no markup, no placeholders run
        assert "<script>alert(1)</script>" in comment["body"]
