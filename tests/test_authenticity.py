"""Authenticity: the AWS sender allowlist plus the verdicts SES wrote on top of the message."""

from __future__ import annotations

import dataclasses

import pytest

from rootmail.domain.authenticity import DEFAULT_AWS_SENDER_DOMAINS, Authenticity, assess, domain_allowed
from rootmail.domain.mail import ParsedMail, Verdicts
from rootmail.domain.parsing import parse_mail

ALL_PASS = Verdicts(spam="PASS", virus="PASS", spf="PASS", dkim="PASS", dmarc="PASS")


def aws_mail(sender: str | None = "no-reply-aws@amazon.com", **changes: object) -> ParsedMail:
    mail = ParsedMail(
        sender=sender,
        sender_domain=sender.rpartition("@")[2] if sender else None,
        from_addresses=[sender] if sender else [],
        verdicts=ALL_PASS,
        ses_received=True,
    )
    return dataclasses.replace(mail, **changes)  # type: ignore[arg-type]


def verdicts(**changes: str | None) -> Verdicts:
    return dataclasses.replace(ALL_PASS, **changes)


def test_genuine_aws_mail_is_authentic():
    assert assess(aws_mail()) == Authenticity(authentic=True, reasons=[])


@pytest.mark.parametrize(
    "sender",
    [
        "no-reply-aws@amazon.com",
        "no-reply@amazonaws.com",
        "freetier@costalerts.amazonaws.com",
        "health@aws.com",
        "password-reset-no-reply@verify.signin.aws",
        "no-reply@signin.aws",
        "trustandsafety@support.aws.com",
        "no-reply@marketplace.aws",
        "ec2-abuse@AMAZON.COM",
    ],
)
def test_aws_domains_and_their_subdomains_are_allowed(sender):
    assert assess(aws_mail(sender, sender_domain=sender.rpartition("@")[2].lower())).authentic


@pytest.mark.parametrize(
    "domain",
    [
        "amazon.com.evil.net",
        "evilamazon.com",
        "amazon.co",
        "aws.com.cn",
        "signin.aws.example",
        "xaws.com",
        "aws",
    ],
)
def test_look_alike_domains_are_refused(domain):
    result = assess(aws_mail(f"no-reply@{domain}"))
    assert not result.authentic
    assert result.reasons == [f"sender domain {domain} is not an allowed AWS sender domain"]


def test_configured_allowlist_replaces_the_default():
    assert domain_allowed("mail.example.org", [" .Example.ORG "])
    assert not domain_allowed("amazon.com", ["example.org"])
    assert not domain_allowed(None, DEFAULT_AWS_SENDER_DOMAINS)
    assert not assess(aws_mail(), allowed_domains=["example.org"]).authentic


def test_exactly_one_from_address():
    two = aws_mail(from_addresses=["no-reply-aws@amazon.com", "mallory@evil.example"])
    assert assess(two).reasons == ["2 From addresses, expected exactly one"]
    none = aws_mail(None)
    assert assess(none).reasons == [
        "no From address",
        "sender domain (none) is not an allowed AWS sender domain",
    ]


def test_gray_dkim_and_dmarc_are_accepted():
    assert assess(aws_mail(verdicts=verdicts(dkim="GRAY", dmarc="GRAY"))).authentic
    assert assess(aws_mail(verdicts=verdicts(spf="GRAY", dmarc="NONE"))).authentic  # DKIM passed
    assert assess(aws_mail(verdicts=verdicts(dkim=None, dmarc=None))).authentic  # SPF passed


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"dkim": "FAIL"}, "DKIM failed"),
        ({"dmarc": "FAIL"}, "DMARC failed"),
        ({"spam": "FAIL"}, "SES spam verdict is FAIL, not PASS"),
        ({"spam": "GRAY"}, "SES spam verdict is GRAY, not PASS"),
        ({"spam": None}, "SES spam verdict is missing, not PASS"),
        ({"virus": "FAIL"}, "SES virus verdict is FAIL, not PASS"),
        ({"spf": "FAIL", "dkim": "GRAY"}, "neither SPF nor DKIM passed (spf=FAIL, dkim=GRAY)"),
    ],
)
def test_fail_verdicts_are_refused(changes, reason):
    result = assess(aws_mail(verdicts=verdicts(**changes)))
    assert not result.authentic
    assert result.reasons == [reason]


def test_every_failed_condition_is_listed():
    mail = aws_mail(
        "x@evil.example",
        from_addresses=["x@evil.example", "y@evil.example"],
        ses_received=False,
        verdicts=Verdicts(spam="FAIL", virus=None, spf="FAIL", dkim="FAIL", dmarc="FAIL"),
    )
    assert assess(mail).reasons == [
        "2 From addresses, expected exactly one",
        "sender domain evil.example is not an allowed AWS sender domain",
        "no SES receipt block on top of the message",
        "SES spam verdict is FAIL, not PASS",
        "SES virus verdict is missing, not PASS",
        "neither SPF nor DKIM passed (spf=FAIL, dkim=FAIL)",
        "DKIM failed",
        "DMARC failed",
    ]


# --- end to end, from the raw bytes -----------------------------------------------------------------

SES_TOP = (
    "Return-Path: <0100018f9a@amazonses.com>\r\n"
    "Received: from a8-30.smtp-out.amazonses.com by inbound-smtp.eu-west-1.amazonaws.com with SMTP id x1\r\n"
    " for root@example.com; Wed, 10 Jul 2024 02:21:09 +0000 (UTC)\r\n"
    "X-SES-Spam-Verdict: {spam}\r\n"
    "X-SES-Virus-Verdict: PASS\r\n"
    "Received-SPF: pass (spfCheck: ok) client-ip=54.240.8.30;\r\n"
    "Authentication-Results: amazonses.com;\r\n spf=pass; dkim={dkim} header.i=@amazon.com;\r\n"
    " dmarc={dmarc} header.from=amazon.com;\r\n"
    "X-SES-RECEIPT: AEFBQUFB\r\n"
    "X-SES-DKIM-SIGNATURE: a=rsa-sha256; d=amazonses.com; v=1;\r\n"
)


def raw_mail(*, spam: str = "PASS", dkim: str = "pass", dmarc: str = "pass", sender_part: str = "") -> bytes:
    return (
        SES_TOP.format(spam=spam, dkim=dkim, dmarc=dmarc)
        + "Received: from mx by mx; Wed, 10 Jul 2024 02:21:08 +0000\r\n"
        + sender_part
        + "Subject: Your AWS account has been suspended\r\nTo: root@example.com\r\n\r\nBody.\r\n"
    ).encode()


def test_parsed_genuine_mail_is_authentic():
    assert assess(
        parse_mail(raw_mail(sender_part="From: AWS <aws-account-notifications@amazon.com>\r\n"))
    ).authentic


def test_forged_pass_verdicts_below_the_ses_block_do_not_make_spam_authentic():
    forged = (
        "X-SES-Spam-Verdict: PASS\r\n"
        "Authentication-Results: amazonses.com; spf=pass; dkim=pass header.i=@amazon.com; dmarc=pass\r\n"
        "From: no-reply-aws@amazon.com\r\n"
    )
    result = assess(parse_mail(raw_mail(spam="FAIL", dkim="fail", dmarc="fail", sender_part=forged)))
    assert not result.authentic
    assert result.reasons == ["SES spam verdict is FAIL, not PASS", "DKIM failed", "DMARC failed"]


def test_parsed_gray_dkim_is_accepted_and_spoofed_from_refused():
    gray = parse_mail(raw_mail(dkim="gray", dmarc="gray", sender_part="From: no-reply@signin.aws\r\n"))
    assert assess(gray).authentic
    spoof = parse_mail(raw_mail(sender_part="From: no-reply-aws@amazon.com <mallory@evil.example>\r\n"))
    assert "2 From addresses, expected exactly one" in assess(spoof).reasons


# ---- end to end through the parser: what a forger controls must not count -----------------------------------


def ses_stored(
    *,
    sender: str = "health@aws.com",
    envelope_from: str = "bounce@aws.com",
    spf: str = "pass",
    dkim: str = "pass header.i=@aws.com",
    dmarc: str = "pass header.from=aws.com",
    below: str = "",
    from_lines: tuple[str, ...] = (),
) -> bytes:
    froms = "".join(f"From: {f}\r\n" for f in (from_lines or (sender,)))
    return (
        f"Return-Path: <{envelope_from}>\r\n"
        "Received: from mta.example (mta.example [192.0.2.1]) by inbound-smtp.us-east-1.amazonaws.com "
        "with SMTP id abc for root@provider.example; Mon, 16 Jun 2025 08:00:58 +0000 (UTC)\r\n"
        "X-SES-Spam-Verdict: PASS\r\nX-SES-Virus-Verdict: PASS\r\n"
        f"Received-SPF: {spf} (spf={spf}) client-ip=192.0.2.1; envelope-from={envelope_from}; helo=mta.example;\r\n"
        f"Authentication-Results: amazonses.com; spf={spf} (spf={spf}) client-ip=192.0.2.1; "
        f"envelope-from={envelope_from}; helo=mta.example; dkim={dkim}; dmarc={dmarc};\r\n"
        "X-SES-RECEIPT: AEFBQUFBQUFBQUFF\r\nX-SES-DKIM-SIGNATURE: a=rsa-sha256; b=x\r\n"
        f"{below}{froms}To: root@provider.example\r\nSubject: AWS Health Event\r\n"
        "Message-ID: <m@aws.com>\r\nDate: Mon, 16 Jun 2025 08:00:00 +0000\r\n\r\nAWS Health Event\r\n"
    ).encode()


def test_an_aws_from_with_spf_passing_for_another_domain_and_dmarc_gray_is_refused():
    mail = parse_mail(
        ses_stored(envelope_from="x@evil.example", dkim="none", dmarc="gray header.from=aws.com")
    )
    assert mail.verdicts.spf == "UNALIGNED"
    assert not assess(mail).authentic


def test_an_aws_from_signed_only_by_another_domain_is_refused():
    mail = parse_mail(
        ses_stored(
            envelope_from="x@evil.example",
            dkim="pass header.i=@evil.example",
            dmarc="gray header.from=aws.com",
        )
    )
    assert mail.verdicts.dkim is None
    assert not assess(mail).authentic


def test_ses_sent_aws_mail_with_gray_dkim_and_dmarc_is_accepted():
    # SES sends only From identities its sender verified: an amazonses.com envelope passing SPF counts.
    mail = parse_mail(
        ses_stored(
            envelope_from="0100@amazonses.com",
            dkim="gray header.i=@aws.com",
            dmarc="gray header.from=aws.com",
        )
    )
    assert assess(mail).authentic


def test_two_identical_from_lines_are_two_senders():
    mail = parse_mail(ses_stored(from_lines=("health@aws.com", "health@aws.com")))
    assert mail.from_addresses == ["health@aws.com", "health@aws.com"]
    assert not assess(mail).authentic


def test_the_ses_block_ends_at_the_first_header_ses_does_not_write():
    # No SES Authentication-Results on top; the sender's own forged one sits just below its first header.
    raw = ses_stored(spf="fail", dkim="fail", dmarc="fail").replace(
        b"Authentication-Results: amazonses.com;", b"X-Original-Authentication-Results: amazonses.com;"
    )
    forged = b"X-Mailer: x\r\nAuthentication-Results: amazonses.com; spf=pass; dkim=pass header.i=@aws.com; dmarc=pass;\r\n"
    raw = raw.replace(b"X-SES-RECEIPT:", forged + b"X-SES-RECEIPT:")
    mail = parse_mail(raw)
    assert mail.verdicts.dmarc is None and mail.verdicts.dkim is None
    assert not assess(mail).authentic


def test_the_envelope_recipient_comes_only_from_the_top_received_line():
    raw = ses_stored().replace(b"by inbound-smtp.us-east-1.amazonaws.com", b"by mx.evil.example")
    lower = (
        b"Received: from a by inbound-smtp.us-east-1.amazonaws.com with SMTP id x for victim@provider.example;"
        b" Mon, 16 Jun 2025 08:00:58 +0000\r\n"
    )
    raw = raw.replace(b"From: ", lower + b"From: ", 1)
    mail = parse_mail(raw)
    assert mail.envelope_recipient is None
    assert not mail.ses_received
