"""Limits: mail up to SES's maximum (40 MB) is triaged without loading its attachments; oversize or binary junk is
recorded, never crashing. Memory is measured with tracemalloc (allocations, not time)."""

from __future__ import annotations

import base64
import email
import email.policy
import os
import tracemalloc
from pathlib import Path

import pytest

from rootmail.domain.parsing import MAX_PARSED_BYTES, parse_mail
from rootmail.domain.rules import load_rule_files
from rootmail.local.emulator import LocalPipeline
from rootmail.offline import load_accounts

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
    filler = base64.encodebytes(os.urandom(max(0, (size - len(raw) - 400) * 3 // 4)))
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
    with LocalPipeline() as local:
        local.seed_accounts(load_accounts(CORPUS / "accounts.json", CORPUS / "contacts.json"))
        local.seed_rules(load_rule_files(ROOT / "rules"))
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
