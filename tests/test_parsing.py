"""parse_mail: raw bytes as SES stores them → ParsedMail, never an exception."""

from __future__ import annotations

import base64
import email
import email.policy
import json
import quopri
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rootmail.domain.mail.charsets import decode_bytes
from rootmail.domain.mail.headers import decode_header_text
from rootmail.domain.mail.html_text import html_to_text
from rootmail.domain.mail.model import ParsedMail, Verdicts
from rootmail.domain.mail.parse import parse_mail

RECIPIENT = "Root+Prod@Example.com"


def ses_block(
    *,
    recipient: str = RECIPIENT,
    spam: str | None = "PASS",
    virus: str | None = "PASS",
    spf: str = "pass",
    dkim: str = "pass",
    dmarc: str = "pass",
    domain: str = "amazon.com",
) -> list[tuple[str, str]]:
    """The headers SES puts on top of a received message, in SES's order."""
    block = [
        ("Return-Path", "<0100018f9a@amazonses.com>"),
        (
            "Received",
            "from a8-30.smtp-out.amazonses.com (a8-30.smtp-out.amazonses.com [54.240.8.30])\r\n"
            " by inbound-smtp.us-east-1.amazonaws.com with SMTP id 8n1cbnq1s0atk4i1\r\n"
            f" for {recipient};\r\n Wed, 10 Jul 2024 02:21:09 +0000 (UTC)",
        ),
    ]
    if spam is not None:
        block.append(("X-SES-Spam-Verdict", spam))
    if virus is not None:
        block.append(("X-SES-Virus-Verdict", virus))
    block += [
        (
            "Received-SPF",
            f"{spf} (spfCheck: domain of amazonses.com designates 54.240.8.30 as permitted sender)"
            " client-ip=54.240.8.30; envelope-from=0100018f9a@amazonses.com;",
        ),
        (
            "Authentication-Results",
            f"amazonses.com;\r\n spf={spf} (spfCheck: domain of amazonses.com designates 54.240.8.30 as"
            " permitted sender) client-ip=54.240.8.30; envelope-from=0100018f9a@amazonses.com;\r\n"
            f" dkim={dkim} header.i=@{domain};\r\n dkim=pass header.i=@amazonses.com;\r\n"
            f" dmarc={dmarc} header.from={domain};",
        ),
        ("X-SES-RECEIPT", "AEFBQUFBQUFBQUFHa2ZlNmJ3bnFJb2lDR2pQbUk="),
        ("X-SES-DKIM-SIGNATURE", "a=rsa-sha256; q=dns/txt; b=Zm9v; c=relaxed/simple; d=amazonses.com; v=1;"),
    ]
    return block


SENDER_HEADERS = [
    ("Received", "from smtp-out.amazonses.com by mx.amazon.com with ESMTP; Wed, 10 Jul 2024 02:21:08 +0000"),
    ("From", "Amazon Web Services <no-reply-aws@amazon.com>"),
    ("To", RECIPIENT),
    ("Subject", "Amazon Web Services: New Support case: 5244329601"),
    ("Date", "Wed, 10 Jul 2024 11:21:07 +0900"),
    ("Message-ID", "<0100018f9a-c0ffee@email.amazonses.com>"),
]


def build(
    body: bytes = b"Hello.\r\n",
    *,
    headers: list[tuple[str, str]] | None = None,
    top: list[tuple[str, str]] | None = None,
    content_type: str | None = "text/plain; charset=UTF-8",
    cte: str | None = None,
    extra: list[tuple[str, str]] | None = None,
) -> bytes:
    """A mail as SES stores it: SES's block on top, then the sender's headers, then the body."""
    lines = ses_block() if top is None else top
    lines = lines + (SENDER_HEADERS if headers is None else headers) + (extra or [])
    if content_type is not None:
        lines = [*lines, ("MIME-Version", "1.0"), ("Content-Type", content_type)]
    if cte is not None:
        lines.append(("Content-Transfer-Encoding", cte))
    head = b"".join(f"{name}: {value}\r\n".encode() for name, value in lines)
    return head + b"\r\n" + body


def with_subject(subject: str) -> list[tuple[str, str]]:
    return [(n, subject if n == "Subject" else v) for n, v in SENDER_HEADERS]


def b64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


# --- the ordinary English mail ---------------------------------------------------------------------


def test_support_case_mail_gives_every_field():
    body = (
        b"Amazon Web Services has opened case 5244329601 on your behalf.\r\n"
        b"Account ID: 123456789012\r\nSeverity: Urgent\r\n"
    )
    raw = build(body, extra=[("Cc", "ops@example.com, root+prod@example.com")])
    mail = parse_mail(raw)
    assert mail.message_id == "0100018f9a-c0ffee@email.amazonses.com"
    assert mail.sender == "no-reply-aws@amazon.com"
    assert mail.sender_name == "Amazon Web Services"
    assert mail.sender_domain == "amazon.com"
    assert mail.from_addresses == ["no-reply-aws@amazon.com"]
    assert mail.subject == "Amazon Web Services: New Support case: 5244329601"
    assert mail.date == "2024-07-10T02:21:07+00:00"
    assert mail.envelope_recipient == "root+prod@example.com"
    assert mail.recipients == ["root+prod@example.com", "ops@example.com"]
    assert mail.text == (
        "Amazon Web Services has opened case 5244329601 on your behalf.\n"
        "Account ID: 123456789012\nSeverity: Urgent"
    )
    assert mail.account_ids == ["123456789012"]
    assert mail.case_id == "5244329601"
    assert mail.verdicts == Verdicts(spam="PASS", virus="PASS", spf="PASS", dkim="PASS", dmarc="PASS")
    assert mail.ses_received is True
    assert mail.size == len(raw)
    assert mail.problems == []


def test_summary_is_json_without_text_and_round_trips():
    mail = parse_mail(build(b"Account ID: 123456789012\r\n"))
    summary = mail.to_summary()
    assert "text" not in summary
    assert summary["verdicts"] == {
        "spam": "PASS",
        "virus": "PASS",
        "spf": "PASS",
        "dkim": "PASS",
        "dmarc": "PASS",
    }
    assert json.loads(json.dumps(summary)) == summary
    assert ParsedMail.from_summary(summary, text=mail.text) == mail


# --- Japanese ---------------------------------------------------------------------------------------

NEC = b"\x1b$B-!-j\x1b(B"  # ①㈱ in ISO-2022-JP as Windows mailers write it (NEC row 13)
JA_TEXT = "AWS アカウント 123456789012 のご請求について"


def test_iso_2022_jp_body_with_nec_characters_decodes_through_cp932():
    body = NEC + JA_TEXT.encode("iso2022_jp") + b"\r\n"
    mail = parse_mail(build(body, content_type="text/plain; charset=ISO-2022-JP", cte="7bit"))
    assert mail.text == "①㈱" + JA_TEXT
    assert mail.account_ids == ["123456789012"]
    assert mail.problems == []


def test_iso_2022_jp_without_charset_parameter_is_recognised():
    body = "アカウント: 123456789012".encode("iso2022_jp")
    mail = parse_mail(build(body, content_type="text/plain"))
    assert mail.text == "アカウント: 123456789012"
    assert mail.account_ids == ["123456789012"]
    assert mail.problems == []


def test_iso_2022_jp_subject_with_nec_characters():
    subject = "=?ISO-2022-JP?B?" + base64.b64encode(NEC + "請求".encode("iso2022_jp")).decode() + "?="
    mail = parse_mail(build(headers=with_subject(subject)))
    assert mail.subject == "①㈱請求"


def test_shift_jis_base64_body_decodes_with_cp932():
    text = "①ケース ID: 177666106600814\r\n髙橋様"
    raw = build(
        b64(text.encode("cp932")),
        headers=with_subject("ケースが更新されました"),
        content_type="text/plain; charset=Shift_JIS",
        cte="base64",
    )
    mail = parse_mail(raw)
    assert mail.text == "①ケース ID: 177666106600814\n髙橋様"
    assert mail.case_id == "177666106600814"
    assert mail.problems == []


def test_euc_jp_quoted_printable_body_with_nec_character():
    raw_text = b"\xad\xa1 " + "アカウント ID：123456789012".encode("euc_jp")
    mail = parse_mail(
        build(
            quopri.encodestring(raw_text), content_type="text/plain; charset=EUC-JP", cte="quoted-printable"
        )
    )
    assert mail.text == "① アカウント ID：123456789012"
    assert mail.account_ids == ["123456789012"]


def test_utf8_base64_and_quoted_printable_bodies():
    text = "AWS アカウント 123456789012 は停止されました。"
    for cte, encoded in (
        ("base64", b64(text.encode())),
        ("quoted-printable", quopri.encodestring(text.encode())),
    ):
        mail = parse_mail(build(encoded, cte=cte))
        assert mail.text == text, cte
        assert mail.account_ids == ["123456789012"]


def test_utf8_subject_split_inside_a_character_across_encoded_words():
    raw = "【重要】AWS アカウント".encode()
    first, second = base64.b64encode(raw[:4]).decode(), base64.b64encode(raw[4:]).decode()
    mail = parse_mail(build(headers=with_subject(f"=?UTF-8?B?{first}?=\r\n =?UTF-8?B?{second}?=")))
    assert mail.subject == "【重要】AWS アカウント"


# --- RFC 2047 ---------------------------------------------------------------------------------------


def test_rfc2047_subjects_and_display_names():
    problems: list[str] = []
    assert decode_header_text("=?utf-8?q?Caf=C3=A9_bill?= for [Account: 123456789012]", problems) == (
        "Café bill for [Account: 123456789012]"
    )
    assert (
        decode_header_text("=?UTF-8?B?44GC?= =?UTF-8?B?44GE?=", problems) == "あい"
    )  # whitespace between dropped
    assert decode_header_text("plain =?UTF-8?B?44GC?= tail", problems) == "plain あ tail"
    assert decode_header_text("=?UTF-8?B?not base64!?=", problems) == "=?UTF-8?B?not base64!?="
    assert problems == []
    headers = [
        ("From", "=?UTF-8?B?QW1hem9uIOOCpuOCp+ODlg==?= <No-Reply-AWS@Amazon.com>"),
        *SENDER_HEADERS[2:],
    ]
    mail = parse_mail(build(headers=headers))
    assert (mail.sender_name, mail.sender) == ("Amazon ウェブ", "no-reply-aws@amazon.com")


def test_subject_cannot_smuggle_a_line_break():
    mail = parse_mail(build(headers=with_subject("=?UTF-8?Q?a=0D=0ABcc:_x@evil.com?=")))
    assert mail.subject == "a Bcc: x@evil.com"


# --- MIME structure ---------------------------------------------------------------------------------

HTML = (
    b"<html><head><title>AWS</title><style>p {color: red}</style></head><body>"
    b"<p>Dear customer,<br>your case &amp; account:</p>"
    b"<table><tr><td>Account ID:</td><td>123456789012</td></tr>"
    b"<tr><td>Region:</td><td>us-east-1</td></tr></table>"
    b"<ul><li>one</li><li>two&nbsp;&lt;3&gt;</li></ul>"
    b'<a href="https://console.aws.amazon.com/support/home#/case/?displayId=5244329601">View case</a>'
    b"<script>var x = 'Account ID: 999999999999';</script></body></html>"
)


def test_html_only_mail_is_converted_to_text():
    mail = parse_mail(build(HTML, content_type="text/html; charset=utf-8"))
    assert mail.text == (
        # A table's cells stay apart by a tab: a row reads as its columns.
        "Dear customer,\nyour case & account:\n\nAccount ID:\t123456789012\nRegion:\tus-east-1\n\n"
        "one\ntwo <3>\n"
        "View case <https://console.aws.amazon.com/support/home#/case/?displayId=5244329601>"
    )
    assert mail.account_ids == ["123456789012"]
    assert mail.case_id == "5244329601"


def multipart(
    boundary: str, parts: list[tuple[str, bytes]], declared: str | None = None
) -> tuple[str, bytes]:
    body = b"This is a multi-part message in MIME format.\r\n"
    for headers, content in parts:
        body += f"--{boundary}\r\n{headers}\r\n\r\n".encode() + content + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return f'multipart/mixed; boundary="{declared or boundary}"', body


def test_plain_text_is_preferred_over_html_and_attachments_are_not_in_it():
    alternative_type, alternative = multipart(
        "ALT",
        [
            ("Content-Type: text/plain; charset=utf-8", b"Plain Account ID: 111111111111"),
            ("Content-Type: text/html", HTML),
        ],
    )
    content_type, body = multipart(
        "MIX",
        [
            (f"Content-Type: {alternative_type}", alternative),
            (
                "Content-Type: text/plain; charset=x-never-decoded\r\n"
                "Content-Disposition: attachment; filename=a.txt",
                b"Account ID: 999999999999",
            ),
            (
                "Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
                "Content-Disposition: attachment; filename=invoice.pdf",
                b64(b"%PDF-1.4 Account ID: 888888888888"),
            ),
        ],
    )
    mail = parse_mail(build(body, content_type=content_type))
    assert mail.text == "Plain Account ID: 111111111111"
    assert mail.account_ids == ["111111111111"]
    # A text attachment is read for `other_text` only (a reader can open it); other attachments are never decoded.
    assert "Account ID: 999999999999" in mail.other_text and "888888888888" not in mail.other_text
    assert mail.problems == ["unknown charset: x-never-decoded"]


# --- every text a reader could see: other_text ------------------------------------------------------


def test_a_code_only_in_the_html_alternative_is_in_other_text():
    alternative_type, alternative = multipart(
        "ALT",
        [
            ("Content-Type: text/plain; charset=utf-8", b"Sign in to the console to continue."),
            ("Content-Type: text/html; charset=utf-8", b"<p>Your <b>verification code</b>: 604817</p>"),
        ],
    )
    mail = parse_mail(build(alternative, content_type=alternative_type))
    assert mail.text == "Sign in to the console to continue."
    assert mail.other_text == "Your verification code: 604817"
    summary = json.dumps(mail.to_summary())
    assert "other_text" not in mail.to_summary() and "604817" not in summary
    assert mail.identity() == replace(mail, other_text="").identity()  # identity is unchanged by it


def test_text_attachments_and_text_inside_attached_messages_are_in_other_text_in_document_order():
    inner_type, inner = multipart(
        "IN",
        [
            ("Content-Type: text/plain; charset=utf-8", b"Your one-time password is 551234."),
            (
                "Content-Type: text/html; charset=iso-8859-1",
                b"<p>Reset: <a href='https://x.example/r?t=9'>here</a></p>",
            ),
            ("Content-Type: image/png\r\nContent-Transfer-Encoding: base64", b64(b"\x89PNG 777777")),
        ],
    )
    attached = (
        b"From: AWS <no-reply@signin.aws>\r\nSubject: Your code\r\nMIME-Version: 1.0\r\n"
        + f"Content-Type: {inner_type}\r\n\r\n".encode()
        + inner
    )
    content_type, body = multipart(
        "MIX",
        [
            ("Content-Type: text/plain; charset=utf-8", b"Forwarded for your records."),
            (
                "Content-Type: text/plain\r\nContent-Disposition: attachment; filename=codes.txt",
                b"Backup code 1: 889900",
            ),
            ("Content-Type: message/rfc822\r\nContent-Disposition: attachment", attached),
        ],
    )
    mail = parse_mail(build(body, content_type=content_type))
    assert mail.text == "Forwarded for your records."
    assert mail.other_text == (
        "Backup code 1: 889900\n\nYour one-time password is 551234.\n\nReset: here <https://x.example/r?t=9>"
    )
    assert "777777" not in mail.other_text and mail.account_ids == [] and mail.problems == []


def test_html_only_mail_has_its_other_parts_in_other_text_and_not_its_html():
    content_type, body = multipart(
        "MIX",
        [
            ("Content-Type: text/html; charset=utf-8", b"<p>Hello</p>"),
            ("Content-Type: text/html\r\nContent-Disposition: attachment", b"<p>Code: 123123</p>"),
        ],
    )
    mail = parse_mail(build(body, content_type=content_type))
    assert (mail.text, mail.other_text) == ("Hello", "Code: 123123")


def test_a_single_part_mail_has_no_other_text():
    mail = parse_mail(build(b"Your sign-in code is 482913.\r\n"))
    assert mail.text == "Your sign-in code is 482913." and mail.other_text == ""
    assert parse_mail(build(HTML, content_type="text/html; charset=utf-8")).other_text == ""


def test_wrong_boundary_is_recovered_and_reported():
    content_type, body = multipart(
        "ACTUAL", [("Content-Type: text/plain", b"Account: 123456789012")], "DECLARED"
    )
    mail = parse_mail(build(body, content_type=content_type))
    assert mail.text == "Account: 123456789012"
    assert mail.account_ids == ["123456789012"]
    assert "MIME defect: StartBoundaryNotFoundDefect" in mail.problems


def test_multipart_without_boundary_keeps_its_body_as_text():
    mail = parse_mail(build(b"Account: 123456789012\r\n", content_type="multipart/mixed"))
    assert mail.text == "Account: 123456789012"
    assert "MIME defect: NoBoundaryInMultipartDefect" in mail.problems


def test_malformed_mime_headers_split_the_mail_as_the_standard_parser_does():
    """The MIME structure is policy.default's, malformed Content-Type and Content-Transfer-Encoding included."""
    _, body = multipart("MIX", [("Content-Type: text/plain", b"Account: 123456789012")])
    for content_type, cte in [
        ('multipart/mixed; boundary="=?utf-8?q?MIX?="', None),  # an encoded word in a quoted parameter
        ("multipart/mixed; boundary==?utf-8?q?MIX?=", None),  # ... unquoted: no boundary at all
        ("multipart/mixed; boundary*=MIX", None),  # RFC 2231
        ("multipart/mixed; boundary='MIX'", None),
        ('multipart/mixed; boundary="MIX"; boundary="OTHER"', None),
        ("multipart/mixed;\r\n boundary=MIX (a comment)", None),
        ("multipart/mixed; boundary=MIX", "base64 (a comment)"),
        ("text/plain", " Quoted-Printable"),
    ]:
        raw = build(body, content_type=content_type, cte=cte)
        reference = email.message_from_bytes(raw, policy=email.policy.default)
        defects = [f"MIME defect: {type(d).__name__}" for part in reference.walk() for d in part.defects]
        mail = parse_mail(raw)
        assert [p for p in mail.problems if p.startswith("MIME defect")] == list(dict.fromkeys(defects)), (
            content_type
        )
        assert mail.account_ids == ["123456789012"], content_type


def test_address_headers_in_their_common_and_uncommon_forms():
    to = 'aws-root+a@cloudprovider.example, "Ops, Team" <Ops@CloudProvider.example>,Root <root@x.example>, <b@x.example>'
    headers = [
        ("From", "Amazon  Web\tServices <no-reply-aws@amazon.com>"),
        ("To", to),
        ("Cc", "c@x.example (a comment), d@x.example, undisclosed-recipients:;"),
        ("Sender", '"a\\"b" <s@x.example>'),
        *SENDER_HEADERS[3:],
    ]
    mail = parse_mail(build(headers=headers))
    assert (mail.sender, mail.sender_name) == ("no-reply-aws@amazon.com", "Amazon Web Services")
    assert mail.recipients == [
        "aws-root+a@cloudprovider.example",
        "ops@cloudprovider.example",
        "root@x.example",
        "b@x.example",
        "c@x.example",
        "d@x.example",
    ]
    assert mail.other_senders == ["s@x.example"]
    headers = [("From", '"Amazon Web Services" <no-reply-aws@amazon.com>'), *SENDER_HEADERS[2:]]
    assert parse_mail(build(headers=headers)).sender_name == "Amazon Web Services"


def test_unknown_charset_falls_back_to_utf8_then_latin1():
    mail = parse_mail(build("Café ①".encode(), content_type="text/plain; charset=x-klingon"))
    assert mail.text == "Café ①"
    assert mail.problems == ["unknown charset: x-klingon"]
    mail = parse_mail(build("Café – ok".encode("cp1252"), content_type="text/plain; charset=x-klingon"))
    assert mail.text == "Café – ok"  # latin-1 read as windows-1252, as browsers do
    assert mail.problems == ["unknown charset: x-klingon"]
    mail = parse_mail(build(b"Caf\xe9 \x81", content_type='text/plain; charset="unknown-8bit"'))
    assert mail.text == "Café \x81"  # a byte windows-1252 leaves undefined: strict latin-1
    assert mail.problems == ["unknown charset: unknown-8bit"]


def test_undecodable_bytes_in_declared_charset_are_replaced_and_reported():
    mail = parse_mail(build(b"ok \xff\xfe end", content_type="text/plain; charset=utf-8"))
    assert mail.text == "ok \ufffd\ufffd end"
    assert mail.problems == ["undecodable text in charset: utf-8"]


def test_decode_bytes_charset_chains():
    problems: list[str] = []
    assert decode_bytes("①".encode("cp932"), "x-sjis", problems) == "①"
    assert decode_bytes(b"\xad\xa1", "euc-jp", problems) == "①"
    assert decode_bytes("日本".encode(), None, problems) == "日本"
    assert decode_bytes(b"abc", "us-ascii", problems) == "abc"
    assert problems == []
    assert decode_bytes("日本".encode("euc_jp"), None, problems) == "日本"
    assert problems == ["undeclared charset, decoded as euc_jp"]


def test_html_to_text_keeps_line_breaks_and_drops_scripts():
    assert (
        html_to_text("<p>a</p><p>b<br/>c</p><script>d</script><style>e</style>f&eacute;") == "a\n\nb\nc\nfé"
    )


# --- broken and hostile input -----------------------------------------------------------------------


def test_empty_bytes():
    mail = parse_mail(b"")
    assert mail.problems == ["empty message"]
    assert (mail.size, mail.subject, mail.text, mail.sender, mail.ses_received) == (0, "", "", None, False)


def test_binary_junk_gives_a_result_with_problems():
    raw = bytes(range(256)) * 4
    mail = parse_mail(raw)
    assert mail.size == 1024
    assert mail.sender is None and mail.message_id is None and mail.account_ids == []
    assert "missing header: From" in mail.problems
    assert "no SES receipt block on top" in mail.problems
    json.dumps(mail.to_summary(), ensure_ascii=False).encode("utf-8")


def test_missing_headers_are_reported():
    mail = parse_mail(build(b"Account: 123456789012\r\n", top=[], headers=[], content_type=None))
    assert mail.subject == "" and mail.sender is None and mail.date is None and mail.message_id is None
    assert mail.account_ids == ["123456789012"]
    for header in ("From", "Subject", "Date", "Message-ID"):
        assert f"missing header: {header}" in mail.problems
    assert mail.verdicts == Verdicts()


def test_invalid_message_id_and_date():
    headers = [*SENDER_HEADERS[:4], ("Date", "someday soon"), ("Message-ID", "<[abc]>")]
    mail = parse_mail(build(headers=headers))  # <[abc]> raised IndexError in policy.default (gh-105802)
    assert mail.message_id == "[abc]"
    assert mail.date is None
    assert mail.problems == ["invalid header: Date"]
    headers = [*SENDER_HEADERS[:5], ("Message-ID", "no brackets here")]
    assert parse_mail(build(headers=headers)).problems == ["invalid header: Message-ID"]


def test_raw_8bit_headers_are_decoded():
    raw = build(headers=with_subject("placeholder")).replace(b"placeholder", "請求書 ①".encode("cp932"))
    assert parse_mail(raw).subject == "請求書 ①"
    raw = build(headers=with_subject("placeholder")).replace(b"placeholder", "請求書".encode())
    assert parse_mail(raw).subject == "請求書"


# --- From addresses ---------------------------------------------------------------------------------


def test_several_from_headers_or_mailboxes_are_all_listed():
    headers = [
        ("From", "no-reply-aws@amazon.com"),
        ("From", "Mallory <mallory@evil.example>"),
        *SENDER_HEADERS[2:],
    ]
    mail = parse_mail(build(headers=headers))
    assert mail.from_addresses == ["no-reply-aws@amazon.com", "mallory@evil.example"]
    assert "several From addresses: no-reply-aws@amazon.com, mallory@evil.example" in mail.problems
    headers = [("From", "a@amazon.com, b@amazon.com"), *SENDER_HEADERS[2:]]
    assert parse_mail(build(headers=headers)).from_addresses == ["a@amazon.com", "b@amazon.com"]


def test_malformed_from_that_parsers_disagree_on_yields_every_address():
    for value in (
        "no-reply-aws@amazon.com <mallory@evil.example>",
        "no-reply-aws@amazon.com)<mallory@evil.example>",
    ):
        mail = parse_mail(build(headers=[("From", value), *SENDER_HEADERS[2:]]))
        assert sorted(mail.from_addresses) == ["mallory@evil.example", "no-reply-aws@amazon.com"], value


# --- the SES block ----------------------------------------------------------------------------------


def test_gray_and_fail_verdicts_are_read_uppercased():
    mail = parse_mail(
        build(top=ses_block(spam="GRAY", virus="FAIL", spf="softfail", dkim="gray", dmarc="fail"))
    )
    assert mail.verdicts == Verdicts(spam="GRAY", virus="FAIL", spf="SOFTFAIL", dkim="GRAY", dmarc="FAIL")


def test_forged_verdicts_below_the_ses_block_do_not_count():
    forged = [
        ("X-SES-Spam-Verdict", "PASS"),
        ("Authentication-Results", "amazonses.com; spf=pass; dkim=pass header.i=@amazon.com; dmarc=pass"),
    ]
    headers = [SENDER_HEADERS[0], *forged, *SENDER_HEADERS[1:]]
    mail = parse_mail(
        build(top=ses_block(spam="FAIL", dkim="fail", dmarc="fail", spf="fail"), headers=headers)
    )
    assert mail.verdicts == Verdicts(spam="FAIL", virus="PASS", spf="FAIL", dkim="FAIL", dmarc="FAIL")
    assert "SES header below the SES block ignored: X-SES-Spam-Verdict" in mail.problems
    assert "SES header below the SES block ignored: Authentication-Results" in mail.problems


def test_forged_verdict_right_after_the_block_of_a_mail_without_its_own_received_line():
    # SES's block ends with X-SES-DKIM-SIGNATURE; with no sender Received: line below, that is the boundary.
    headers = [("X-SES-Spam-Verdict", "PASS"), *SENDER_HEADERS[1:]]
    mail = parse_mail(build(top=ses_block(spam=None), headers=headers))
    assert mail.verdicts.spam is None
    assert mail.verdicts.dmarc == "PASS"


def test_a_block_without_spam_and_virus_verdicts_is_read_as_ses_writes_it_when_not_scanning():
    # A receipt rule that does not scan writes no verdict headers (SES's notification says DISABLED); older
    # blocks had no DMARC result.
    top = [
        (n, v.replace("\r\n dmarc=pass header.from=amazon.com;", ""))
        for n, v in ses_block(spam=None, virus=None)
    ]
    mail = parse_mail(build(top=top))
    assert mail.verdicts == Verdicts(spam=None, virus=None, spf="PASS", dkim="PASS", dmarc=None)
    assert not [p for p in mail.problems if "SES" in p]


SES_KINDS = ("Return-Path", "X-SES-Spam-Verdict", "Received-SPF", "Authentication-Results", "X-SES-RECEIPT")


@pytest.mark.parametrize(
    "kind", ["Authentication-Results", "X-SES-RECEIPT", "X-SES-DKIM-SIGNATURE", "Received-SPF"]
)
def test_a_block_missing_a_header_ses_always_writes_has_no_verdicts(kind):
    # Where SES's block ends early, the sender's own headers may start right there: nothing in it is SES's word.
    mail = parse_mail(build(top=[(n, v) for n, v in ses_block() if n != kind]))
    assert mail.verdicts == Verdicts()
    assert mail.ses_received and mail.envelope_recipient == RECIPIENT.lower()
    assert f"incomplete SES block (no {kind}): its verdicts are not read" in mail.problems


@pytest.mark.parametrize("kind", SES_KINDS)
def test_a_repeated_or_out_of_order_ses_header_ends_the_block(kind):
    top = ses_block(spam="FAIL", dkim="fail", dmarc="fail", spf="fail")
    forged = {
        "Return-Path": "<bounce@amazon.com>",
        "X-SES-Spam-Verdict": "PASS",
        "Received-SPF": "pass (spfCheck: ok) client-ip=192.0.2.1; envelope-from=bounce@amazon.com;",
        "Authentication-Results": "amazonses.com; spf=pass; dkim=pass header.i=@amazon.com; dmarc=pass",
        "X-SES-RECEIPT": "AEFBQUFB",
    }
    # The sender's copy as the first of its headers, right below SES's whole block.
    mail = parse_mail(build(top=top, headers=[(kind, forged[kind]), *SENDER_HEADERS[1:]]))
    assert mail.verdicts == Verdicts(spam="FAIL", virus="PASS", spf="FAIL", dkim="FAIL", dmarc="FAIL")
    # And a header SES writes earlier, after one it writes later, is not SES's either: here SES's block lacks its
    # signature, and the sender's copy comes after SES's receipt.
    top = [(n, v) for n, v in top if n != "X-SES-DKIM-SIGNATURE"]
    mail = parse_mail(build(top=top, headers=[(kind, forged[kind]), *SENDER_HEADERS[1:]]))
    assert mail.verdicts == Verdicts()
    assert "incomplete SES block (no X-SES-DKIM-SIGNATURE): its verdicts are not read" in mail.problems


def test_a_header_of_another_kind_on_top_means_no_ses_block():
    mail = parse_mail(build(top=[("X-Forwarded-To", "root@example.com"), *ses_block()]))
    assert mail.ses_received is False and mail.verdicts == Verdicts()
    assert "no SES receipt block on top" in mail.problems


def test_authentication_results_of_another_server_are_ignored():
    top = ses_block()
    top[5] = (
        "Authentication-Results",
        "mx.example.net; spf=pass; dkim=pass header.i=@amazon.com; dmarc=pass",
    )
    mail = parse_mail(build(top=top))
    assert mail.verdicts == Verdicts(spam="PASS", virus="PASS", spf="PASS", dkim=None, dmarc=None)


def test_without_ses_received_on_top_no_verdict_is_trusted():
    top = [
        ("Received", "from mx.evil.example by mx.evil.example; Wed, 10 Jul 2024 02:21:09 +0000"),
        *ses_block(),
    ]
    mail = parse_mail(build(top=top))
    assert mail.ses_received is False
    assert mail.verdicts == Verdicts()
    assert "no SES receipt block on top" in mail.problems


def test_dkim_verdict_prefers_the_signature_of_the_from_domain():
    top = ses_block()
    top[5] = (
        "Authentication-Results",
        "amazonses.com; spf=pass; dkim=fail header.i=@amazon.com; dkim=pass header.d=evil.example;"
        " dmarc=fail",
    )
    assert parse_mail(build(top=top)).verdicts.dkim == "FAIL"
    top[5] = (
        "Authentication-Results",
        "amazonses.com; dkim=fail header.d=list.example; dkim=pass header.i=@amazon.com",
    )
    assert parse_mail(build(top=top)).verdicts.dkim == "PASS"


# --- never raises -----------------------------------------------------------------------------------


def assert_valid(mail: ParsedMail) -> None:
    assert isinstance(mail, ParsedMail)
    json.dumps(mail.to_summary(), ensure_ascii=False).encode("utf-8")  # no lone surrogates anywhere
    mail.text.encode("utf-8")


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(raw):
    mail = parse_mail(raw)
    assert_valid(mail)
    assert mail.problems  # junk is never taken for a well-formed mail: it says what is wrong


HEADER_NAMES = st.sampled_from(
    [
        "From",
        "To",
        "Cc",
        "Subject",
        "Date",
        "Message-ID",
        "Received",
        "Content-Type",
        "Content-Transfer-Encoding",
        "Content-Disposition",
        "X-SES-Spam-Verdict",
        "Authentication-Results",
        "X-SES-DKIM-SIGNATURE",
        "MIME-Version",
    ]
) | st.text(min_size=1, max_size=20)
HEADER_VALUES = st.sampled_from(
    [
        "multipart/mixed; boundary=X",
        "text/plain; charset=iso-2022-jp",
        "text/html; charset=x-bogus",
        "base64",
        "quoted-printable",
        "<[abc]>",
        "=?utf-8?b?4?=",
        "=?iso-2022-jp?q?=1B$B-!?=",
        "a@b, <c@d>)<e@f>",
        "from x by inbound-smtp.us-east-1.amazonaws.com for <a@b>;",
        "amazonses.com; dkim=pass (((",
    ]
) | st.text(max_size=80)


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=12), st.binary(max_size=300), st.booleans())
def test_arbitrary_header_soup_never_raises(headers, body, crlf):
    eol = b"\r\n" if crlf else b"\n"
    head = b"".join(f"{n}: {v}".encode("utf-8", "surrogatepass") + eol for n, v in headers)
    assert_valid(parse_mail(head + eol + body + eol + b"--X" + eol + head + eol + body + eol + b"--X--"))


CORPUS_MAILS = [
    p.read_bytes() for p in sorted((Path(__file__).parent / "corpus").glob("*.eml")) if p.stat().st_size
]


@settings(max_examples=1000, deadline=None)
@given(
    st.sampled_from(CORPUS_MAILS),
    st.lists(st.tuples(st.floats(0, 1), st.binary(min_size=0, max_size=8)), min_size=1, max_size=6),
)
def test_real_mail_with_bytes_cut_and_spliced_never_raises(raw, edits):
    """Real AWS mail damaged the way transport and storage damage mail: bytes cut out or spliced in anywhere."""
    for where, splice in edits:
        at = int(where * len(raw))
        raw = raw[:at] + splice + raw[at + len(splice) // 2 :]
    assert_valid(parse_mail(raw))


# The fast paths below must read exactly what the general code they shortcut reads.


def _reference_iso_date(value: str) -> str | None:
    from datetime import UTC
    from email.utils import parsedate_to_datetime

    try:
        parsed = parsedate_to_datetime(value)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC).isoformat()
    except Exception:
        return None


@settings(max_examples=400, deadline=None)
@given(
    day_name=st.sampled_from(["", "Mon, ", "Sun, "]),
    day=st.integers(0, 99).map(str) | st.integers(0, 9).map(lambda d: f"0{d}"),
    month=st.sampled_from(["Jan", "Feb", "Jun", "Dec"]),
    year=st.integers(1000, 9999),
    clock=st.tuples(*[st.integers(0, 99)] * 3).map(lambda t: ":".join(f"{n:02d}" for n in t)),
    zone=st.tuples(st.sampled_from("+-"), st.integers(0, 9999)).map(lambda z: f"{z[0]}{z[1]:04d}"),
    tail=st.sampled_from(["", " (UTC)", "\t(x y)"]),
)
def test_plain_dates_read_as_parsedate_to_datetime_reads_them(
    day_name: str, day: str, month: str, year: int, clock: str, zone: str, tail: str
) -> None:
    from rootmail.domain.mail.headers import iso_date

    value = f"{day_name}{day} {month} {year} {clock} {zone}{tail}"
    problems: list[str] = []
    expected = _reference_iso_date(value)
    assert iso_date(value, problems) == expected
    assert problems == ([] if expected else ["invalid header: Date"])


def test_runs_of_jis_pairs_map_as_each_pair_does() -> None:
    from rootmail.domain.mail.charsets import _jis_pair_to_sjis, _jis_pairs_to_sjis

    pairs = [bytes((j1, j2)) for j1 in range(0x21, 0x7F) for j2 in range(0x21, 0x7F)]
    assert _jis_pairs_to_sjis(b"".join(pairs)) == b"".join(_jis_pair_to_sjis(*pair) for pair in pairs)
    assert _jis_pairs_to_sjis(b"$B$") is None  # odd length
    assert _jis_pairs_to_sjis(b"$B\n") is None  # not a pair


# Pieces of Received and Received-SPF values, in any case, with non-ASCII letters that fold to ASCII ones.
_SEARCH_PIECES = [
    " ",
    "\r\n ",
    "by",
    "BY",
    "for",
    "For",
    "inbound-smtp.",
    "us-east-1",
    ".amazonaws.com",
    "<",
    ">",
    "x",
    "_",
    "9",
    ";",
    "=",
    "a@b",
    "A@B.C",
    "envelope-from",
    "SMTP.MailFrom",
    "K",
    "\u212a",
    "ſ",
]


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.sampled_from(_SEARCH_PIECES),
        max_size=20,
    ).map("".join)
)
def test_lowercased_searches_find_what_the_case_insensitive_patterns_find(value: str) -> None:
    from rootmail.domain.mail import headers

    for pattern, lowered in [
        (headers._SES_RECEIVED, headers._SES_RECEIVED_LOWER),
        (headers._ENVELOPE_FOR, headers._ENVELOPE_FOR_LOWER),
        (headers._ENVELOPE_FROM, headers._ENVELOPE_FROM_LOWER),
    ]:
        expected = pattern.search(value)
        found = headers._search_lowered(pattern, lowered, value)
        assert (found and found.group(0).lower()) == (expected and expected.group(0).lower())


# Where CP932 (Windows, and the fallback for text carrying NEC characters) maps a JIS X 0208 character to another
# code point than the standard ISO-2022-JP codec: the same glyph, Microsoft's choice of code point.
CP932_FORMS = {
    "\u301c": "\uff5e",  # 〜 → ～
    "\u2016": "\u2225",  # ‖ → ∥
    "\u2212": "\uff0d",  # − → －
    "\u00a2": "\uffe0",  # ¢ → ￠
    "\u00a3": "\uffe1",  # £ → ￡
    "\u00ac": "\uffe2",  # ¬ → ￢
    "\u2014": "\u2015",  # — → ―
}


def _sjis(row: int, cell: int) -> bytes:
    """JIS X 0208 row/cell to Shift_JIS, as the Shift_JIS definition writes it."""
    lead = (row - 0x21) // 2 + 0x81
    lead += 0x40 if lead > 0x9F else 0
    trail = (cell + 0x1F if cell < 0x60 else cell + 0x20) if row % 2 else cell + 0x7E
    return bytes((lead, trail))


def test_iso_2022_jp_matches_the_standard_codec_character_by_character_nec_rows_included():
    problems: list[str] = []
    standard = nec = 0
    for row in range(0x21, 0x7F):
        for cell in range(0x21, 0x7F):
            pair = bytes((row, cell))
            try:
                expected = (b"\x1b$B" + pair + b"\x1b(B").decode("iso2022_jp")
            except UnicodeDecodeError:
                try:  # not JIS X 0208: an NEC or NEC-selected IBM extension, if CP932 has it
                    expected = _sjis(row, cell).decode("cp932")
                except UnicodeDecodeError:
                    continue
                nec += 1
                assert decode_bytes(b"\x1b$B" + pair + b"\x1b(B", "iso-2022-jp", problems) == expected, pair
                continue
            standard += 1
            assert decode_bytes(b"\x1b$B" + pair + b"\x1b(B", "iso-2022-jp", problems) == expected, pair
            # After an NEC character the text is read through CP932: the same character, in CP932's form.
            mixed = decode_bytes(b"\x1b$B-!" + pair + b"\x1b(B", "iso-2022-jp", problems)
            assert mixed == "①" + CP932_FORMS.get(expected, expected), pair
    assert standard == 6879 and nec > 300  # all of JIS X 0208, and the NEC rows
    assert problems == []


_SPACE = st.sampled_from(["", " ", "  ", "\t", " \t "])
_ATOM = st.sampled_from(["a", "ops", "x.y", "AWS", "Web", "o'neil", "é", "a+b"])
_ADDRESS = st.builds(
    lambda local, domain: f"{local}@{domain}", _ATOM, st.sampled_from(["b.c", "acme.example", "z"])
)
_NAME = st.lists(_ATOM, min_size=1, max_size=3).flatmap(
    lambda words: st.lists(_SPACE.filter(bool), min_size=len(words) - 1, max_size=len(words) - 1).map(
        lambda gaps: words[0] + "".join(g + w for g, w in zip(gaps, words[1:], strict=True))
    )
)
_MAILBOX_FORM = st.one_of(
    _ADDRESS,
    st.builds(lambda name, space, address: f"{name}{space}<{address}>", _NAME, _SPACE, _ADDRESS),
    st.builds(
        lambda name, address: f'"{name}" <{address}>',
        st.sampled_from(["Web Services", "a, b", "a@b", ""]),
        _ADDRESS,
    ),
    st.sampled_from(["(c)", ";", '"', "<", "@", "a@", "<a@b.c"]),  # what is not a plain mailbox
)


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(
        st.tuples(_SPACE, _MAILBOX_FORM, _SPACE, st.sampled_from([",", ",", ";", " "])),
        min_size=1,
        max_size=4,
    )
)
def test_plain_mailboxes_read_as_getaddresses_reads_them(mailboxes: list[tuple[str, str, str, str]]) -> None:
    """The mailbox shortcut answers only for the plain forms, and then exactly what the stdlib answers."""
    from email.utils import getaddresses

    from rootmail.domain.mail import headers

    value = "".join("".join(parts) for parts in mailboxes)[:-1]
    found = headers._plain_mailboxes(
        value
    )  # (address, display name), where getaddresses gives (name, address)
    assert found is None or found == [(address, name) for name, address in getaddresses([value])], value
