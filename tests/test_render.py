"""What customers and operators read: the forwarded mail, ticket text, Slack alert."""

from __future__ import annotations

import email
import email.policy

from hypothesis import given, settings
from hypothesis import strategies as st

from rootmail.domain.accounts import Account
from rootmail.domain.mail.model import ParsedMail
from rootmail.domain.mail.parse import parse_mail
from rootmail.messages.render import header_text, mrkdwn, operator_alert, render_forward

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


def body_of(out) -> str:
    return parse(out.data).get_body(("plain",)).get_content()


def test_header_block_says_what_aws_asks_and_by_when():
    notice = mail(
        subject="[Retirement Notification] EC2 instance retirement",
        text="AWS Health Event\nWe will stop the instance after 2026-05-06 00:00 UTC.\n"
        "We recommend that you stop and start your instance before then.\n",
    )
    body = body_of(render(m=notice))
    assert "AWS says: [Retirement Notification] EC2 instance retirement" in body
    assert "AWS asks: We recommend that you stop and start your instance before then." in body
    assert "Deadline or date: 2026-05-06 00:00 UTC" in body


def test_japanese_header_block():
    notice = mail(subject="[要対応] メンテナンス", text="2026年5月12日 以降に再起動してください。\n")
    body = body_of(render(m=notice, a=account(language="ja")))
    assert "通知の内容: [要対応] メンテナンス" in body
    assert "AWS からの依頼: 2026年5月12日 以降に再起動してください。" in body
    assert "期限・日時: 2026年5月12日" in body


def test_an_original_too_large_for_ses_is_not_attached_and_the_mail_says_so(monkeypatch):
    from rootmail.messages import render as render_module

    monkeypatch.setattr(render_module, "MAX_ATTACHED_ORIGINAL", len(RAW) - 1)
    message = parse(render().data)
    assert list(message.iter_attachments()) == []
    assert "too large to attach" in message.get_body(("plain",)).get_content()


def test_a_shared_notice_shows_each_account_only_its_own_lines():
    notice = mail(text="Account: 111122223333 i-aaa\nAccount: 444455556666 i-bbb\nWe recommend a restart.\n")
    out = render_forward(
        notice,
        RAW,
        account(),
        sender="n@p.example",
        reply_to="s@p.example",
        mail_id="k",
        other_account_ids=["444455556666"],
    )
    message = parse(out.data)
    body = message.get_body(("plain",)).get_content()
    assert "i-aaa" in body and "i-bbb" not in body and "444455556666" not in body
    assert list(message.iter_attachments()) == []


@settings(max_examples=300, deadline=None)
@given(
    subject=st.text(
        alphabet=st.sampled_from(list("aZ :=?\r\n\t\x0b\x0c\x85\u2028\u2029<>@,;\"'=_-ü日")), max_size=80
    ),
    name=st.text(alphabet=st.sampled_from(list("aZ \r\n:\u2028<>@")), max_size=30),
    encoded=st.booleans(),
)
def test_no_generated_message_ever_gains_a_header_line(subject, name, encoded):
    # CVE-2024-6923: re-setting a parsed header that holds an encoded newline could emit an extra header line.
    if encoded:
        subject = "=?utf-8?q?" + subject.replace(" ", "_").replace("\n", "=0A").replace("\r", "=0D") + "?="
    raw = f"From: health@aws.com\r\nSubject: {subject.replace(chr(13), ' ').replace(chr(10), ' ')}\r\n\r\nBody\r\n"
    parsed = parse_mail(raw.encode("utf-8", "surrogateescape"))
    notice = mail(subject=parsed.subject or subject)
    out = render(m=notice, a=account(name=name))
    headers = out.data.split(b"\r\n\r\n", 1)[0]
    names = [
        line.split(b":", 1)[0] for line in headers.split(b"\r\n") if line and line[:1] not in (b" ", b"\t")
    ]
    assert names == [
        b"From",
        b"To",
        b"Reply-To",
        b"Subject",
        b"Date",
        b"Message-ID",
        b"X-Rootmail-Mail-Id",
        b"X-Rootmail-Account",
        b"MIME-Version",
        b"Content-Type",
        b"Content-Language",
    ]


MAX_LINE = 998  # RFC 5322 2.1.1: octets per line, CRLF excluded


def attached_original(data: bytes) -> tuple[str, bytes]:
    """The attachment's content type and the original it carries, as a mail client would save it: a message/rfc822
    part as the bytes between its headers and the closing boundary, anything else decoded from its encoding."""
    message = parse(data)
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename() == "original.eml"
    if attachment.get_content_type() != "message/rfc822":
        return attachment.get_content_type(), attachment.get_content()
    boundary = message.get_boundary().encode()
    part = data.split(b"--" + boundary)[2]  # preamble, the text part, the attachment, the closing "--"
    return "message/rfc822", part.split(b"\r\n\r\n", 1)[1].removesuffix(b"\r\n")


def test_an_original_with_a_line_over_998_octets_is_attached_base64_and_the_forward_stays_valid():
    # A 7-bit clean original whose HTML part is one 5,000-character line (as some senders' mail is).
    raw = b"From: AWS <health@aws.com>\r\nSubject: Notice\r\n\r\n<p>" + b"x" * 5000 + b"</p>\r\n"
    data = render(raw=raw).data
    assert max(len(line) for line in data.split(b"\r\n")) <= MAX_LINE
    assert attached_original(data) == ("application/octet-stream", raw)


def test_an_original_with_lines_of_998_octets_still_travels_as_a_message():
    raw = b"From: AWS <health@aws.com>\r\nSubject: Notice\r\n\r\n" + b"y" * MAX_LINE + b"\r\nend\r\n"
    data = render(raw=raw).data
    assert max(len(line) for line in data.split(b"\r\n")) <= MAX_LINE
    assert attached_original(data) == ("message/rfc822", raw)
    assert attached_original(render().data) == ("message/rfc822", RAW)  # the usual original: unchanged


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(
        st.one_of(
            st.integers(min_value=0, max_value=1200).map(lambda n: b"a" * n),
            st.binary(max_size=40),  # bare CR or LF, NUL, 8-bit bytes
        ),
        min_size=1,
        max_size=8,
    ),
)
def test_every_original_is_attached_recoverably_without_a_line_over_998_octets(lines):
    raw = b"From: health@aws.com\r\nSubject: Notice\r\n\r\n" + b"\r\n".join(lines) + b"\r\n"
    data = render(raw=raw).data
    assert max(len(line) for line in data.split(b"\r\n")) <= MAX_LINE
    kind, original = attached_original(data)
    # Only an original that is valid 7-bit message data once its line ends are CRLF travels as message/rfc822
    # (in that canonical form); any other goes base64, exactly as stored.
    canonical = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    seven_bit = canonical.isascii() and all(
        len(line) <= MAX_LINE and b"\r" not in line and b"\0" not in line for line in canonical.split(b"\r\n")
    )
    assert (kind, original) == (
        ("message/rfc822", canonical) if seven_bit else ("application/octet-stream", raw)
    )
