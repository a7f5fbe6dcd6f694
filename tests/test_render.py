"""What customers and operators read: the forwarded mail, ticket text, Slack alert."""

from __future__ import annotations

import email
import email.policy

from rootmail.domain.accounts import Account
from rootmail.domain.mail import ParsedMail
from rootmail.domain.render import header_text, mrkdwn, operator_alert, render_forward

RAW = (
    b"Return-Path: <x@amazon.com>\r\nDKIM-Signature: v=1; a=rsa-sha256; d=amazon.com; b=abc\r\n"
    b"Sender: bounce@amazon.com\r\nFrom: AWS <health@aws.com>\r\nSubject: Notice\r\n\r\nBody\r\n"
)


def mail(**overrides) -> ParsedMail:
    values = {
        "message_id": "m-1@aws.com",
        "sender": "health@aws.com",
        "sender_domain": "aws.com",
        "from_addresses": ["health@aws.com"],
        "subject": "[Action Required] EC2 retirement",
        "date": "2026-11-20T10:00:00Z",
        "text": "AWS Health Event\nAccount: 111122223333\n",
        "account_ids": ["111122223333"],
    }
    values.update(overrides)
    return ParsedMail(**values)


def account(**overrides) -> Account:
    values = {
        "account_id": "111122223333",
        "email": "root@x.example",
        "name": "Customer A",
        "contacts": ("ops@a.example", "cto@a.example"),
        "language": "en",
    }
    values.update(overrides)
    return Account(**values)


def parse(data: bytes):
    return email.message_from_bytes(data, policy=email.policy.default)


def render(m: ParsedMail | None = None, a: Account | None = None, raw: bytes = RAW):
    return render_forward(
        m or mail(),
        raw,
        a or account(),
        sender="no-reply@p.example",
        reply_to="support@p.example",
        mail_id="k1",
    )


def test_forward_headers_come_from_parsed_values_not_the_original():
    out = render()
    message = parse(out.data)
    assert message["From"] == "no-reply@p.example"
    assert message["Reply-To"] == "support@p.example"
    assert message["To"] == "ops@a.example, cto@a.example"
    assert message["Subject"] == "[AWS notice] [Action Required] EC2 retirement"
    for copied in ("DKIM-Signature", "Return-Path", "Sender"):
        assert copied not in message
    assert out.to == ("ops@a.example", "cto@a.example")


def test_forward_attaches_the_original_byte_for_byte():
    message = parse(render().data)
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_content_type() == "message/rfc822"
    assert attachment.get_filename() == "original.eml"
    inner = attachment.get_content()
    assert inner["DKIM-Signature"].startswith("v=1")  # inside the attachment, untouched


def test_forward_is_in_the_account_language():
    message = parse(render(a=account(language="ja")).data)
    assert message["Subject"].startswith("【AWS通知】")
    assert message["Content-Language"] == "ja"
    assert "AWS アカウント 111122223333" in message.get_body(("plain",)).get_content()


def test_subject_with_newlines_cannot_add_a_header():
    hostile = mail(subject="Hello\r\nBcc: victim@evil.example\nX-Injected: 1")
    data = render(m=hostile).data
    message = parse(data)
    assert "Bcc" not in message and "X-Injected" not in message
    assert "victim@evil.example" in message["Subject"]  # kept as text on the subject line
    header_block = data.split(b"\r\n\r\n", 1)[0]
    assert not any(line.startswith((b"Bcc:", b"X-Injected:")) for line in header_block.split(b"\r\n"))


def test_invalid_contact_addresses_are_dropped():
    out = render(a=account(contacts=("ok@a.example", "bad\r\nBcc: x@evil.example", "no-at-sign")))
    assert out.to == ("ok@a.example",)


def test_eight_bit_original_is_attached_base64():
    message = parse(render(raw=b"Subject: x\r\n\r\n\x93\xfa\x96\x7b\r\n").data)
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/octet-stream"
    assert attachment.get_content() == b"Subject: x\r\n\r\n\x93\xfa\x96\x7b\r\n"


def test_header_text_bounds_and_flattens():
    assert header_text("a\r\nb\tc\x00d") == "a b c d"
    assert len(header_text("x" * 500)) == 200


def test_slack_alert_neutralises_mentions_and_links():
    text, blocks = operator_alert(
        headline="Quarantined mail",
        mail=mail(subject="<!channel> click <https://evil.example|here>"),
        account_ids=["111122223333"],
        category="abuse-report",
        action="quarantine",
        mail_id="k1",
        reason="inauthentic",
    )
    rendered = json_text = text + str(blocks)
    assert "<!channel>" not in rendered and "<https://evil.example" not in json_text
    assert "&lt;!channel&gt;" in text
    assert mrkdwn("a & <b>") == "a &amp; &lt;b&gt;"
