"""No one fooled: every combination of sender domain and SES verdicts, and the header tricks forged "AWS" mail
uses, through the real parser, authenticity check and triage decision with the default rules. No inauthentic mail
is forwarded, ticketed or escalated to a customer, and no authentic AWS mail is refused."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from rootmail.app.offline import AccountDirectory
from rootmail.config import get_settings
from rootmail.domain.accounts import Account
from rootmail.domain.authenticity import DEFAULT_AWS_SENDER_DOMAINS, assess
from rootmail.domain.mail.parse import parse_mail
from rootmail.domain.routing import RoutingPolicy, resolve
from rootmail.domain.rules.files import load_rule_files
from rootmail.domain.triage import decide
from rootmail.domain.vocabulary import Action
from rootmail.errors import ConfigurationError

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = (ROOT / "tests" / "corpus" / "11-health-single-account.eml").read_text(encoding="utf-8")
RULES = load_rule_files(ROOT / "rules")
ACCOUNT = Account("123456789012", "aws-root+acme-prod@cloudprovider.example", contacts=("ops@acme.example",))
CUSTOMER_ACTIONS = {Action.FORWARD, Action.TICKET, Action.URGENT}
DOMAINS = {"aws": "aws.com", "look-alike": "aws-notifications.com", "unrelated": "example.net"}


def mail_from(
    domain: str, *, spam: str, virus: str, spf: str, dkim: str, dmarc: str, extra: str = ""
) -> bytes:
    """The corpus health notice as SES would have stored it with these verdicts, sent from `domain`."""
    text = TEMPLATE.replace("@aws.com", f"@{domain}").replace("header.from=aws.com", f"header.from={domain}")
    text = text.replace("header.i=@aws.com", f"header.i=@{domain}")
    text = text.replace("X-SES-Spam-Verdict: PASS", f"X-SES-Spam-Verdict: {spam}")
    text = text.replace("X-SES-Virus-Verdict: PASS", f"X-SES-Virus-Verdict: {virus}")
    text = text.replace("spf=pass (spf=pass)", f"spf={spf.lower()} (spf={spf.lower()})")
    text = text.replace("Received-SPF: pass (spf=pass)", f"Received-SPF: {spf.lower()} (spf={spf.lower()})")
    text = text.replace("dkim=pass", f"dkim={dkim.lower()}").replace("dmarc=pass", f"dmarc={dmarc.lower()}")
    if extra:
        text = text.replace("\nSubject:", f"\n{extra}\nSubject:", 1)
    return text.encode("utf-8")


def decided(raw: bytes):
    mail = parse_mail(raw)
    authenticity = assess(mail)
    resolution = resolve(mail, AccountDirectory.of([ACCOUNT]), RoutingPolicy())
    return mail, authenticity, decide(mail, authenticity, resolution, RULES)


def test_the_template_is_an_authentic_forwarded_aws_notice():
    mail, authenticity, decision = decided(
        mail_from("aws.com", spam="PASS", virus="PASS", spf="PASS", dkim="PASS", dmarc="PASS")
    )
    assert mail.sender == "no-reply@aws.com" or mail.sender_domain == "aws.com"
    assert authenticity.authentic and decision.action == Action.FORWARD


VERDICTS = list(itertools.product(("PASS", "FAIL"), repeat=5))


@pytest.mark.parametrize("kind", sorted(DOMAINS))
@pytest.mark.parametrize(("spam", "virus", "spf", "dkim", "dmarc"), VERDICTS)
def test_every_sender_domain_and_verdict_combination(kind, spam, virus, spf, dkim, dmarc):
    raw = mail_from(DOMAINS[kind], spam=spam, virus=virus, spf=spf, dkim=dkim, dmarc=dmarc)
    mail, authenticity, decision = decided(raw)
    assert mail.verdicts.spam == spam and mail.verdicts.dkim == dkim  # the verdicts really are these
    genuine = kind == "aws" and spam == virus == dkim == dmarc == "PASS"
    assert authenticity.authentic == genuine, authenticity.reasons
    if genuine:
        assert decision.action == Action.FORWARD  # authentic AWS mail is never refused
    else:
        assert decision.action == Action.QUARANTINE and decision.action not in CUSTOMER_ACTIONS


ALL_PASS = {"spam": "PASS", "virus": "PASS", "spf": "PASS", "dkim": "PASS", "dmarc": "PASS"}
TRICKS = {
    "a second From below": "From: security@example.net",
    "Sender on someone else's behalf": "Sender: notices@example.net",
    "Resent-From a relay": "Resent-From: relay@example.net",
    "a folded From with a second address": "From:\n no-reply@example.net",
    "an encoded From naming AWS": "From: =?utf-8?b?bm8tcmVwbHlAYXdzLmNvbQ==?= <attacker@example.net>",
    "a display name with commas and an address": 'From: "Amazon Web Services, no-reply@aws.com" <x@example.net>',
    "a forged verdict block below SES's": "X-SES-Spam-Verdict: PASS\nX-SES-Virus-Verdict: PASS",
}


@pytest.mark.parametrize("trick", sorted(TRICKS))
def test_header_tricks_never_reach_a_customer(trick):
    verdicts = {**ALL_PASS, "spam": "FAIL"} if "verdict" in trick else ALL_PASS
    raw = mail_from("aws.com", extra=TRICKS[trick], **verdicts)
    _, authenticity, decision = decided(raw)
    assert not authenticity.authentic, trick
    assert decision.action == Action.QUARANTINE


def test_a_display_name_with_a_comma_is_still_authentic_aws_mail():
    raw = mail_from("aws.com", **ALL_PASS).replace(
        b"\nFrom: ", b'\nFrom: "Amazon Web Services, Health" <x>\nX-Old-From: ', 1
    )
    raw = raw.replace(b"<x>", b"<health@aws.com>")
    mail, authenticity, decision = decided(raw)
    assert mail.sender == "health@aws.com" and authenticity.authentic and decision.action == Action.FORWARD


CREDENTIAL_MAIL = {
    "en": ("Your verification code", "Your verification code is 123456."),
    "ja": ("確認コード", "確認コード: 123456"),
    "de": ("Ihr Bestätigungscode", "Ihr Bestätigungscode lautet 123456."),
    "fr": ("Votre code de vérification", "Votre code de vérification est 123456."),
    "es": ("Su código de verificación", "Su código de verificación es 123456."),
    "it": ("Il tuo codice di verifica", "Il tuo codice di verifica è 123456."),
    "pt": ("Seu código de verificação", "Seu código de verificação é 123456."),
    "ko": ("인증 코드", "인증 코드는 123456입니다."),
    "zh-cn": ("您的验证码", "您的验证码是 123456。"),
    "zh-tw": ("您的驗證碼", "您的驗證碼是 123456。"),
    "id": ("Kode verifikasi Anda", "Kode verifikasi Anda adalah 123456."),
    "reset link": ("Password assistance", "https://signin.aws.amazon.com/resetpassword?token=abc"),
}


@pytest.mark.parametrize("language", sorted(CREDENTIAL_MAIL))
def test_credential_mail_never_leaves_the_operators_side_in_any_language(language):
    import dataclasses

    subject, body = CREDENTIAL_MAIL[language]
    mail = parse_mail(mail_from("aws.com", **ALL_PASS))
    # The worst case: the mail also looks like a notice a forward rule takes (a Health event marker).
    mail = dataclasses.replace(mail, subject=subject, text=f"{body}\nAWS Health Event\n{mail.text}")
    authenticity = assess(mail)
    resolution = resolve(mail, AccountDirectory.of([ACCOUNT]), RoutingPolicy())
    decision = decide(mail, authenticity, resolution, RULES)
    assert authenticity.authentic
    assert decision.action == Action.RESTRICTED and decision.action not in CUSTOMER_ACTIONS


# ---- names AWS, GitHub, Heroku ... hand out to their customers ----------------------------------------------

# Sent through SES by whoever verified the address: SES's envelope (amazonses.com) passes SPF, and SES signs with
# its own domain only, so there is no DKIM or DMARC result for the From domain.
SENT_THROUGH_SES = {"spam": "PASS", "virus": "PASS", "spf": "PASS", "dkim": "NONE", "dmarc": "NONE"}
CUSTOMER_HOSTNAMES = {
    "an EC2 public DNS name": "ec2-203-0-113-10.compute-1.amazonaws.com",
    "an EC2 public DNS name outside us-east-1": "ec2-203-0-113-10.eu-west-1.compute.amazonaws.com",
    "an ELB name": "my-alb-1234567890.us-east-1.elb.amazonaws.com",
    "an S3 bucket name": "aws-health.s3.amazonaws.com",
    "an API Gateway name": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
}


@pytest.mark.parametrize(
    "verdicts", [SENT_THROUGH_SES, ALL_PASS], ids=["sent through SES", "every verdict PASS"]
)
@pytest.mark.parametrize("kind", sorted(CUSTOMER_HOSTNAMES))
def test_aws_mail_from_a_hostname_a_customer_controls_under_amazonaws_com_is_quarantined(kind, verdicts):
    domain = CUSTOMER_HOSTNAMES[kind]
    mail, authenticity, decision = decided(mail_from(domain, **verdicts))
    assert mail.sender_domain == domain and mail.verdicts.spf == "PASS"  # SES's own envelope passed SPF
    assert not authenticity.authentic
    assert authenticity.reasons == [f"sender domain {domain} is not an allowed AWS sender domain"]
    assert decision.action == Action.QUARANTINE


@pytest.mark.parametrize(
    ("domain", "why"),
    [
        ("aws-health.github.io", "lies under github.io, a public suffix whose names others hand out"),
        ("aws-health.herokuapp.com", "lies under herokuapp.com, a public suffix whose names others hand out"),
        ("ec2-203-0-113-10.compute-1.amazonaws.com", "is itself a public suffix"),
        ("aws", "is itself a public suffix"),
    ],
)
def test_a_sender_under_a_suffix_others_hand_out_names_under_is_refused_even_when_listed(domain, why):
    # The allowlist refuses such entries at load; an unchecked list (a caller's own) must not let them through.
    listed = [*DEFAULT_AWS_SENDER_DOMAINS, domain]
    why += " (Public Suffix List), not a domain AWS sends from"
    mail = parse_mail(mail_from(domain, **ALL_PASS))
    assert assess(mail, listed).reasons == [f"sender domain {domain} {why}"]
    relayed = parse_mail(mail_from("aws.com", extra=f"Sender: health@{domain}", **ALL_PASS))
    assert assess(relayed, listed).reasons == [f"Sender/Resent-From health@{domain} {why}"]


@pytest.mark.parametrize(
    "entry",
    [
        "ec2-203-0-113-10.compute-1.amazonaws.com",
        "compute-1.amazonaws.com",
        "my-alb-1234567890.us-east-1.elb.amazonaws.com",
        "aws-health.github.io",
        "herokuapp.com",
        "aws",
        "co.uk",
    ],
)
def test_an_allowlist_entry_others_can_register_names_under_is_refused_at_load(monkeypatch, entry):
    monkeypatch.setenv("ROOTMAIL_AWS_SENDER_DOMAINS", f"aws.com,{entry}")
    get_settings.cache_clear()
    try:
        with pytest.raises(
            ConfigurationError, match=rf"ROOTMAIL_AWS_SENDER_DOMAINS.*{re.escape(entry)}.*Public Suffix"
        ):
            get_settings()
    finally:
        get_settings.cache_clear()


def test_a_dmarc_result_for_another_domain_proves_nothing_about_this_from():
    # SES read another From domain than rootmail did (parsers disagree on malformed From headers, several From
    # lines): its DMARC pass is for that one.
    raw = mail_from("aws.com", **ALL_PASS).replace(b"header.from=aws.com", b"header.from=evil.example")
    mail, authenticity, decision = decided(raw)
    assert mail.verdicts.dmarc == "UNALIGNED"
    assert authenticity.reasons == ["DMARC result is for another domain than the From domain"]
    assert decision.action == Action.QUARANTINE


def test_a_failing_dkim_signature_of_the_from_domain_refuses_even_beside_a_passing_one():
    raw = mail_from("aws.com", **ALL_PASS).replace(
        b" dkim=pass header.i=@aws.com;", b" dkim=fail header.i=@aws.com;\n dkim=pass header.d=aws.com;"
    )
    mail, authenticity, decision = decided(raw)
    assert mail.verdicts.dkim == "FAIL"
    assert authenticity.reasons == ["DKIM failed"]
    assert decision.action == Action.QUARANTINE


# ---- a sender's own copies of SES's headers, where SES's block lacks one ---------------------------------

FORGED_SES = {
    "X-SES-Spam-Verdict": "X-SES-Spam-Verdict: PASS",
    "X-SES-Virus-Verdict": "X-SES-Virus-Verdict: PASS",
    "Authentication-Results": (
        "Authentication-Results: amazonses.com; spf=pass (spf=pass) client-ip=192.0.2.1;"
        " envelope-from=bounce@aws.com; dkim=pass header.i=@aws.com; dmarc=pass header.from=aws.com;"
    ),
    "X-SES-RECEIPT": "X-SES-RECEIPT: AEFBQUFBQUFB",
    "X-SES-DKIM-SIGNATURE": "X-SES-DKIM-SIGNATURE: a=rsa-sha256; d=amazonses.com; v=1; b=Zm9v",
}
FORGED_MAIL = {**ALL_PASS, "spf": "FAIL", "dkim": "FAIL", "dmarc": "FAIL"}  # what SES found: a forgery
# (SES headers missing from its block, the sender's copies right below it, SES's verdicts on the mail)
MISSING_SES_HEADERS = {
    "no spam verdict (not scanned) nor signature, a forged PASS": (
        ("X-SES-Spam-Verdict", "X-SES-DKIM-SIGNATURE"),
        ("X-SES-Spam-Verdict",),
        ALL_PASS,
    ),
    "no virus verdict nor signature, a forged PASS": (
        ("X-SES-Virus-Verdict", "X-SES-DKIM-SIGNATURE"),
        ("X-SES-Virus-Verdict",),
        ALL_PASS,
    ),
    "no Authentication-Results nor signature, forged results": (
        ("Authentication-Results", "X-SES-DKIM-SIGNATURE"),
        ("Authentication-Results",),
        FORGED_MAIL,
    ),
    "no Authentication-Results, receipt nor signature, forged results": (
        ("Authentication-Results", "X-SES-RECEIPT", "X-SES-DKIM-SIGNATURE"),
        ("Authentication-Results",),
        FORGED_MAIL,
    ),
    "no Authentication-Results, forged results": (
        ("Authentication-Results",),
        ("Authentication-Results",),
        FORGED_MAIL,
    ),
    "no spam verdict, a forged PASS": (("X-SES-Spam-Verdict",), ("X-SES-Spam-Verdict",), ALL_PASS),
    "no signature, forged verdicts and results": (
        ("X-SES-DKIM-SIGNATURE",),
        ("X-SES-Spam-Verdict", "Authentication-Results"),
        {**FORGED_MAIL, "spam": "FAIL"},
    ),
    "no receipt nor signature, forged results and both": (
        ("X-SES-RECEIPT", "X-SES-DKIM-SIGNATURE"),
        ("Authentication-Results", "X-SES-RECEIPT", "X-SES-DKIM-SIGNATURE"),
        FORGED_MAIL,
    ),
}


def without_ses_headers(raw: bytes, names: tuple[str, ...]) -> bytes:
    """`raw` less the named headers (and their folded lines) of SES's block on top."""
    head, _, rest = raw.partition(b"\nReceived: from iad-notify-mta")
    lines, skipping = [], False
    for line in head.split(b"\n"):
        if line[:1] not in (b" ", b"\t"):
            skipping = line.split(b":", 1)[0].decode() in names
        if not skipping:
            lines.append(line)
    return b"\n".join(lines) + b"\nReceived: from iad-notify-mta" + rest


@pytest.mark.parametrize("case", sorted(MISSING_SES_HEADERS))
def test_where_ses_left_out_a_header_the_senders_copy_below_is_never_read_as_ses(case):
    missing, forged, verdicts = MISSING_SES_HEADERS[case]
    raw = without_ses_headers(mail_from("aws.com", **verdicts), missing)
    forgery = "".join(FORGED_SES[name] + "\n" for name in forged).encode()
    raw = raw.replace(
        b"\nReceived: from iad-notify-mta", b"\n" + forgery + b"Received: from iad-notify-mta", 1
    )
    mail, authenticity, decision = decided(raw)
    assert mail.ses_received and mail.envelope_recipient == ACCOUNT.email
    if "X-SES-Spam-Verdict" in forged:
        assert mail.verdicts.spam != "PASS"
    if "X-SES-Virus-Verdict" in forged:
        assert mail.verdicts.virus != "PASS"
    if "Authentication-Results" in forged:
        assert mail.verdicts.dkim != "PASS" and mail.verdicts.dmarc != "PASS" and mail.verdicts.spf != "PASS"
    assert not authenticity.authentic
    assert decision.action == Action.QUARANTINE


@pytest.mark.parametrize(
    "envelope",
    ['"x@amazonses.com x"@evil.example', '"x@amazonses.com;"@evil.example', '"x@aws.com x"@evil.example'],
)
def test_an_spf_pass_for_a_quoted_envelope_sender_speaks_for_the_domain_after_the_quotes(envelope):
    """A quoted local part may hold an `@`, spaces and `;`: SPF passed for the domain after it, never for an
    AWS domain written inside it. Without an aligned DKIM pass the mail is then not AWS's."""
    raw = mail_from("aws.com", spam="PASS", virus="PASS", spf="PASS", dkim="NONE", dmarc="NONE")
    genuine = re.search(rb"envelope-from=([^;]+);", raw)
    assert genuine is not None
    _, authenticity, _ = decided(raw)
    assert authenticity.authentic  # SES's own envelope, SPF passing: the control
    mail, authenticity, decision = decided(raw.replace(genuine.group(1), envelope.encode()))
    assert mail.verdicts.spf == "UNALIGNED"
    assert not authenticity.authentic and decision.action == Action.QUARANTINE
