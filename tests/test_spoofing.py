"""No one fooled: every combination of sender domain and SES verdicts, and the header tricks forged "AWS" mail
uses, through the real parser, authenticity check and triage decision with the default rules. No inauthentic mail
is forwarded, ticketed or escalated to a customer, and no authentic AWS mail is refused."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from rootmail.domain.accounts import Account
from rootmail.domain.authenticity import assess
from rootmail.domain.parsing import parse_mail
from rootmail.domain.routing import RoutingPolicy, resolve
from rootmail.domain.rules import load_rule_files
from rootmail.domain.triage import decide
from rootmail.domain.vocabulary import Action
from rootmail.offline import AccountDirectory

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
