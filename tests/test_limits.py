"""Limits: mail up to SES's maximum (40 MB) is triaged without loading its attachments; oversize or binary junk is
recorded, never crashing. Memory is measured with tracemalloc (allocations, not time)."""

from __future__ import annotations

import base64
import dataclasses
import email
import email.policy
import os
import tracemalloc
from pathlib import Path

import pytest

from rootmail.app.offline import AccountDirectory
from rootmail.domain.mail.mime import MAX_PARSED_BYTES
from rootmail.domain.mail.parse import parse_mail
from rootmail.domain.routing import RoutingPolicy, resolve
from rootmail.domain.rules.files import load_rule_files
from samples import sample_pipeline

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"
SES_MAXIMUM = 40 * 1024 * 1024
HEALTH = (CORPUS / "11-health-single-account.eml").read_bytes()


def with_attachment(raw: bytes, size: int) -> bytes:
    """The notice as a multipart mail: its text first, then an attachment bringing it to `size` bytes."""
    headers, _, body = raw.partition(b"\n\n")
    kept = b"\n".join(
        line
        for line in headers.split(b"\n")
        if not line.lower().startswith((b"content-type", b"mime-version"))
    )
    # base64 takes 4 bytes for 3, and a newline every 76.
    filler = base64.encodebytes(os.urandom(max(0, (size - len(raw) - 400) * 3 // 4 * 76 // 77)))
    return (
        kept
        + b'\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="rootmail-limit"\n\n'
        + b"--rootmail-limit\nContent-Type: text/plain; charset=utf-8\n\nAWS Health Event\n"
        + body
        + b"\n--rootmail-limit\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n"
        + b'Content-Disposition: attachment; filename="report.pdf"\n\n'
        + filler
        + b"\n--rootmail-limit--\n"
    )


def test_a_40_mb_mail_is_parsed_within_a_fraction_of_lambda_memory():
    raw = with_attachment(HEALTH, SES_MAXIMUM)
    assert len(raw) > SES_MAXIMUM - 1024 * 1024
    tracemalloc.start()
    try:
        mail = parse_mail(raw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10 * MAX_PARSED_BYTES  # parsing the whole mail took more than 7× its 40 MB
    assert "AWS Health Event" in mail.text and mail.sender == "health@aws.com"
    assert any("only the first 8 MB were read" in p for p in mail.problems)


@pytest.fixture
def pipeline():
    with sample_pipeline() as local:
        yield local


def test_a_40_mb_notice_is_forwarded_without_its_original_and_binary_junk_is_recorded(pipeline):
    pipeline.store_mail("big-notice", with_attachment(HEALTH, SES_MAXIMUM))
    pipeline.store_mail("junk", os.urandom(SES_MAXIMUM))
    pipeline.wait()
    ledger = pipeline.ledger()
    assert ledger.get("big-notice")["state"] == "forwarded"
    (sent,) = pipeline.sent_mail()
    assert len(sent["raw"]) < 1024 * 1024  # the 40 MB original is not attached; the mail says so
    message = email.message_from_string(sent["raw"], policy=email.policy.default)
    assert list(message.iter_attachments()) == []
    assert "MB" in message.get_body(preferencelist=("plain",)).get_content()
    junk = ledger.get("junk")
    assert junk["state"] == "quarantined" and junk["problems"]


def test_a_large_mail_whose_text_comes_after_its_attachment_is_queued_for_an_operator():
    from rootmail.domain.accounts import Account
    from rootmail.domain.authenticity import assess
    from rootmail.domain.triage import decide

    headers, _, _body = HEALTH.partition(b"\n\n")
    kept = b"\n".join(
        line
        for line in headers.split(b"\n")
        if not line.lower().startswith((b"content-type", b"mime-version"))
    )
    filler = base64.encodebytes(os.urandom(10 * 1024 * 1024))
    raw = (
        kept
        + b'\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="L"\n\n--L\n'
        + b"Content-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n"
        + filler
        + b"\n--L\nContent-Type: text/plain\n\nAWS Health Event\n--L--\n"
    )
    mail = parse_mail(raw)
    assert mail.truncated and not mail.text
    account = Account("123456789012", "aws-root+acme-prod@cloudprovider.example")
    resolution = resolve(
        dataclasses.replace(mail, envelope_recipient=account.email),
        AccountDirectory.of([account]),
        RoutingPolicy(),
    )
    decision = decide(mail, assess(mail), resolution, load_rule_files(ROOT / "rules"))
    assert decision.action == "queue" and "for an operator to read" in decision.reason


def test_the_largest_original_attached_keeps_the_forward_within_ses_limit():
    from rootmail.domain.accounts import Account
    from rootmail.messages.render import MAX_ATTACHED_ORIGINAL, render_forward

    # The largest original attached is the largest read whole (a larger one is not attached: see below).
    raw = with_attachment(HEALTH, min(MAX_ATTACHED_ORIGINAL, MAX_PARSED_BYTES) - 64 * 1024)
    assert len(raw) <= MAX_ATTACHED_ORIGINAL and not parse_mail(raw).truncated
    account = Account.from_dict(
        {"account_id": "123456789012", "email": "r@x.example", "contacts": ["ops@acme.example"]}
    )
    rendered = render_forward(
        parse_mail(raw),
        raw,
        account,
        sender="s@x.example",
        reply_to="r@x.example",
        mail_id="m",
        other_account_ids=[],
        kind="operations",
        suppressed=set(),
    )
    assert len(rendered.data) < SES_MAXIMUM  # attached, base64 and all, and still within what SES sends
    assert b"original.eml" in rendered.data


def test_a_mail_not_read_whole_is_forwarded_without_its_original():
    """Past the parser's bounds (8 MB) nothing was checked for credentials: the original stays with the
    operators, and the customer's mail says so."""
    from rootmail.domain.accounts import Account
    from rootmail.messages.render import render_forward

    account = Account(
        "123456789012", "aws-root+acme-prod@cloudprovider.example", contacts=("ops@acme.example",)
    )
    for size, whole in ((2 * 1024 * 1024, True), (12 * 1024 * 1024, False)):
        raw = with_attachment(HEALTH, size)
        mail = parse_mail(raw)
        assert mail.truncated is not whole
        rendered = render_forward(
            mail,
            raw,
            account,
            sender="no-reply@provider.example",
            reply_to="help@provider.example",
            mail_id="m",
        )
        message = email.message_from_bytes(rendered.data, policy=email.policy.default)
        assert bool(list(message.iter_attachments())) is whole, size
        body = message.get_body(preferencelist=("plain",)).get_content()
        assert ("too large to be read whole" in body) is not whole
