"""Authenticity: the AWS sender allowlist plus the verdicts SES wrote on top of the message."""

from __future__ import annotations

import dataclasses
import socket

import pytest

from rootmail.domain import suffixes
from rootmail.domain.authenticity import DEFAULT_AWS_SENDER_DOMAINS, Authenticity, assess, domain_allowed
from rootmail.domain.mail.model import ParsedMail, Verdicts
from rootmail.domain.mail.parse import parse_mail
from rootmail.domain.suffixes import shared_suffix_reason

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


@pytest.mark.parametrize(
    "domain",
    [
        "ec2-203-0-113-10.compute-1.amazonaws.com",  # an EC2 instance's public DNS name: its owner's
        "my-alb-1234567890.us-east-1.elb.amazonaws.com",
        "x.costalerts.amazonaws.com",
        "mallory.signin.aws",
        "x.support.aws.com",
        "notices.amazon.com",
    ],
)
def test_an_allowlist_entry_allows_that_domain_and_none_under_it(domain):
    assert not domain_allowed(domain, DEFAULT_AWS_SENDER_DOMAINS)
    assert assess(aws_mail(f"no-reply@{domain}")).reasons == [
        f"sender domain {domain} is not an allowed AWS sender domain"
    ]


def test_every_default_allowlist_entry_is_a_domain_of_its_own():
    # Not a public suffix, nor a name under one that others hand out: such an entry would let their names in.
    for domain in DEFAULT_AWS_SENDER_DOMAINS:
        assert domain_allowed(domain, DEFAULT_AWS_SENDER_DOMAINS), domain
        assert shared_suffix_reason(domain) is None, domain


def test_the_public_suffix_list_is_read_from_the_package_never_fetched(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the Public Suffix List was fetched over the network")

    def forget() -> None:
        for cached in (suffixes._lists, suffixes.organizational_domain, suffixes.shared_suffix_reason):
            cached.cache_clear()

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    forget()
    try:
        assert shared_suffix_reason("ec2-203-0-113-10.compute-1.amazonaws.com") == "is itself a public suffix"
        assert suffixes.organizational_domain("mail.amazon.co.uk") == "amazon.co.uk"
        assert suffixes._lists.cache_info().misses == 1  # the list was read, here, offline
    finally:
        forget()


@pytest.mark.parametrize(
    ("one", "other", "aligned"),
    [
        ("aws.com", "aws.com", True),
        ("bounces.aws.com", "aws.com", True),  # DMARC relaxed alignment: one organisational domain
        ("aws.com", "mail.aws.com", True),
        ("x.compute-1.amazonaws.com", "amazonaws.com", False),  # each EC2 name is an organisation of its own
        ("amazonaws.com", "x.compute-1.amazonaws.com", False),
        ("a.x.compute-1.amazonaws.com", "x.compute-1.amazonaws.com", False),
        ("a.github.io", "b.github.io", False),
        ("amazon.co.uk", "evil.co.uk", False),
        ("aws.com", "com", False),
        ("com", "com", False),
        ("", "aws.com", False),
    ],
)
def test_alignment_is_one_organisational_domain_by_the_public_suffix_list(one, other, aligned):
    assert suffixes.aligned(one, other) is aligned


def test_a_dmarc_result_for_another_domain_is_refused():
    assert assess(aws_mail(verdicts=verdicts(dmarc="UNALIGNED"))).reasons == [
        "DMARC result is for another domain than the From domain"
    ]


def test_configured_allowlist_replaces_the_default():
    assert domain_allowed("example.org", [" .Example.ORG "])
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
    "Authentication-Results: amazonses.com;\r\n spf=pass; dkim={dkim} header.i=@{domain};\r\n"
    " dmarc={dmarc} header.from={domain};\r\n"
    "X-SES-RECEIPT: AEFBQUFB\r\n"
    "X-SES-DKIM-SIGNATURE: a=rsa-sha256; d=amazonses.com; v=1;\r\n"
)


def raw_mail(
    *,
    spam: str = "PASS",
    dkim: str = "pass",
    dmarc: str = "pass",
    sender_part: str = "",
    domain: str = "amazon.com",
) -> bytes:
    """SES's block names the From domain in its DKIM and DMARC results, as SES does."""
    return (
        SES_TOP.format(spam=spam, dkim=dkim, dmarc=dmarc, domain=domain)
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
    gray = parse_mail(
        raw_mail(dkim="gray", dmarc="gray", sender_part="From: no-reply@signin.aws\r\n", domain="signin.aws")
    )
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


# ---- alignment, read from SES's results ---------------------------------------------------------------------


def test_a_signature_or_envelope_of_a_customer_hostname_under_amazonaws_com_is_not_aligned_with_it():
    signed = ses_stored(
        sender="no-reply@amazonaws.com",
        envelope_from="x@evil.example",
        dkim="pass header.d=ec2-203-0-113-10.compute-1.amazonaws.com",
        dmarc="gray header.from=amazonaws.com",
    )
    mail = parse_mail(signed)
    assert (mail.verdicts.dkim, mail.verdicts.spf) == (None, "UNALIGNED")
    assert not assess(mail).authentic
    enveloped = ses_stored(
        sender="no-reply@amazonaws.com",
        envelope_from="bounce@ec2-203-0-113-10.compute-1.amazonaws.com",
        dkim="none",
        dmarc="gray header.from=amazonaws.com",
    )
    mail = parse_mail(enveloped)
    assert mail.verdicts.spf == "UNALIGNED"
    assert not assess(mail).authentic


def test_a_dmarc_result_for_another_from_domain_is_unaligned():
    mail = parse_mail(ses_stored(dmarc="pass header.from=evil.example"))
    assert mail.verdicts.dmarc == "UNALIGNED"
    assert "DMARC result for header.from=evil.example, not the From domain aws.com" in mail.problems
    assert not assess(mail).authentic
    assert parse_mail(ses_stored(dmarc="pass header.from=AWS.com")).verdicts.dmarc == "PASS"
    assert parse_mail(ses_stored(dmarc="pass")).verdicts.dmarc == "PASS"  # no header.from: nothing to compare


@pytest.mark.parametrize(
    ("dkim", "verdict"),
    [
        ("pass header.d=aws.com; dkim=fail header.i=@aws.com", "FAIL"),
        ("fail header.i=@aws.com; dkim=pass header.d=aws.com", "FAIL"),
        ("gray header.d=aws.com; dkim=pass header.d=aws.com", "PASS"),
        ("fail header.d=evil.example; dkim=pass header.d=aws.com", "PASS"),
    ],
)
def test_any_failing_signature_of_the_from_domain_fails_dkim(dkim, verdict):
    mail = parse_mail(ses_stored(dkim=dkim))
    assert mail.verdicts.dkim == verdict
    assert assess(mail).authentic is (verdict == "PASS")
