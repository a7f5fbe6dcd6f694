"""The triage decision: guards that hold whatever the rules say, and which accounts a mail goes to."""

from __future__ import annotations

from rootmail.app.offline import AccountDirectory
from rootmail.domain.accounts import Account
from rootmail.domain.authenticity import Authenticity
from rootmail.domain.credentials import credential_marks
from rootmail.domain.mail.model import ParsedMail
from rootmail.domain.mail.parse import parse_mail
from rootmail.domain.routing import RoutingPolicy, resolve
from rootmail.domain.rules.sets import compile_rules
from rootmail.domain.triage import decide
from rootmail.domain.vocabulary import Action, Category

ACME = Account("111111111111", "root+acme@p.example", "acme", contacts=("ops@acme.example",))
GLOBEX = Account("222222222222", "root+globex@p.example", "globex", contacts=("it@globex.example",))
DIRECTORY = AccountDirectory.of([ACME, GLOBEX])


def forward_everything_from(domain: str):
    rule = {
        "id": "greedy",
        "category": "health",
        "action": "forward",
        "match": {"sender_domains": [domain], "subject": "."},
    }
    return compile_rules([(rule, "test")])


def mail(**values) -> ParsedMail:
    base = {
        "sender": "no-reply-aws@amazon.com",
        "sender_domain": "amazon.com",
        "subject": "[Action Required] x",
    }
    return ParsedMail(**{**base, **values})


def resolution_for(m: ParsedMail):
    return resolve(m, DIRECTORY, RoutingPolicy())


AUTHENTIC = Authenticity(True, [])


def test_credential_mail_is_never_forwarded_even_by_a_forward_rule():
    for text in (
        "Confirm: https://signin.aws.amazon.com/resetpassword?token=x",
        "Click https://aws.amazon.com/verifyEmail?code=1",
        "Your verification code is 123456",
    ):
        m = mail(text=text, envelope_recipient=ACME.email)
        decision = decide(m, AUTHENTIC, resolution_for(m), forward_everything_from("amazon.com"))
        assert (decision.category, decision.action) == (Category.CREDENTIALS, Action.RESTRICTED), text


def test_mail_from_the_sign_in_domain_is_never_forwarded():
    m = mail(
        sender="no-reply@verify.signin.aws", sender_domain="verify.signin.aws", envelope_recipient=ACME.email
    )
    decision = decide(m, AUTHENTIC, resolution_for(m), forward_everything_from("signin.aws"))
    assert decision.action == Action.RESTRICTED


def test_an_account_id_in_customer_written_text_adds_no_recipient():
    m = mail(envelope_recipient=GLOBEX.email, account_ids=[GLOBEX.account_id, ACME.account_id])
    resolution = resolution_for(m)
    assert resolution.account_ids == (GLOBEX.account_id,)
    assert resolution.other_account_ids == (ACME.account_id,)


def test_an_aggregated_health_mail_goes_to_every_account_it_lists():
    ids = [GLOBEX.account_id, ACME.account_id]
    m = mail(
        sender="health@aws.com", envelope_recipient=GLOBEX.email, account_ids=ids, listed_account_ids=ids
    )
    assert resolution_for(m).account_ids == (GLOBEX.account_id, ACME.account_id)


def test_ids_in_the_mail_never_stand_in_for_an_unknown_envelope():
    for sender in ("no-reply-aws@amazon.com", "health@aws.com"):
        m = mail(
            sender=sender,
            envelope_recipient="root+new@p.example",
            account_ids=[ACME.account_id],
            listed_account_ids=[ACME.account_id],
        )
        resolution = resolution_for(m)
        assert resolution.account_ids == () and resolution.other_account_ids == (ACME.account_id,)
        assert any("never used in place of an unknown root address" in n for n in resolution.notes)


def test_forward_and_ticket_without_a_known_account_are_queued():
    m = mail(envelope_recipient="root+new@p.example", text="x")
    for action in ("forward", "ticket"):
        rule = {
            "id": "any-subject",
            "category": "health",
            "action": action,
            "match": {"subject": "."},
            "force": True,
        }
        decision = decide(m, AUTHENTIC, resolution_for(m), compile_rules([(rule, "t")]))
        assert decision.action == Action.QUEUE and "no known account" in decision.reason


def test_inauthentic_mail_is_quarantined_whatever_it_claims():
    m = mail(envelope_recipient=ACME.email, text="AWS Health Event")
    decision = decide(
        m, Authenticity(False, ["DKIM failed"]), resolution_for(m), forward_everything_from("amazon.com")
    )
    assert decision.action == Action.QUARANTINE and "DKIM failed" in decision.reason


def test_a_ticket_a_credentials_rule_also_matched_tells_no_customer_even_without_a_reset_marker():
    """The credentials rule's own match is enough: the mail need not carry a code or a link the marks would find
    (a reset mail whose link a filter removed, an MFA notice worded in a way no mark knows)."""
    rules = compile_rules(
        [
            (
                {
                    "id": "mfa-subject",
                    "category": "credentials",
                    "action": "restricted",
                    "match": {"sender_domains": ["amazon.com"], "subject": "(?i)MFA device"},
                },
                "t",
            ),
            (
                {
                    "id": "compromise",
                    "category": "account-compromise",
                    "action": "urgent",
                    "match": {"sender_domains": ["amazon.com"], "subject": "(?i)compromised"},
                },
                "t",
            ),
        ]
    )
    m = mail(
        subject="Your account may be compromised: MFA device removed",
        text="Please review your account.",
        envelope_recipient=ACME.email,
    )
    assert credential_marks(m) == []  # nothing a mark would find
    decision = decide(m, AUTHENTIC, resolution_for(m), rules)
    assert (decision.category, decision.action) == (Category.ACCOUNT_COMPROMISE, Action.URGENT)
    assert decision.private and decision.withhold_text
    assert "a credentials rule matched" in decision.reason


def test_a_body_that_decodes_to_a_lone_surrogate_is_still_decided_and_its_urgent_words_found():
    """A UTF-7 body can decode to a lone surrogate ("+2AA-"), which is no UTF-8: the urgent words are still read."""
    raw = (
        b"From: AWS <no-reply-aws@amazon.com>\nTo: root+acme@p.example\nSubject: Scheduled maintenance\n"
        b"Content-Type: text/plain; charset=utf-7\n\nYour account may be compromised +2AA-\n"
    )
    m = parse_mail(raw)
    assert "\ud800" in m.text
    decision = decide(m, AUTHENTIC, resolution_for(m), forward_everything_from("amazon.com"))
    assert decision.action == Action.QUEUE and decision.signals == ("compromised",)
