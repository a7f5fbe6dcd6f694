"""The sample organisation and rules on the local emulator, as most pipeline tests start."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any

from rootmail.app.offline import load_accounts
from rootmail.domain.rules.files import load_rule_files
from rootmail_local.emulator import LocalPipeline

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"


@contextmanager
def sample_pipeline(**settings: str) -> Iterator[LocalPipeline]:
    """The local pipeline with the sample accounts (tests/corpus) and the default rules (rules/), and these
    ROOTMAIL_* settings for its functions."""
    with LocalPipeline(settings=dict(settings)) as local:
        local.seed_accounts(load_accounts(CORPUS / "accounts.json", CORPUS / "contacts.json"))
        local.seed_rules(load_rule_files(ROOT / "rules"))
        yield local


def aws_mail(
    template: str,
    *,
    subject: str,
    plain: str | None = None,
    html: str | None = None,
    attachment: str | None = None,
    root: str | None = None,
) -> bytes:
    """A mail as SES stored it (the template's SES block and sender, authentic) with this subject and content,
    received at the template's root address or at `root`."""
    raw = (CORPUS / template).read_bytes()
    head = raw.split(b"\nSubject:", 1)[0]
    if root is not None:
        envelope = re.search(rb"\n for ([^\s;]+);", head)
        assert envelope is not None, template
        head = head.replace(envelope.group(1), root.encode())
    message = EmailMessage(policy=SMTP)
    if plain is not None:
        message.set_content(plain)
    if html is not None:
        if plain is None:
            message.set_content(html, subtype="html")
        else:
            message.add_alternative(html, subtype="html")
    if attachment is not None:
        message.add_attachment(attachment, filename="details.txt")
    body = message.as_bytes(policy=SMTP).replace(b"\r\n", b"\n")
    return head + b"\nSubject: " + subject.encode() + b"\nMIME-Version: 1.0\n" + body


def emf_records(text: str) -> list[dict[str, Any]]:
    """The EMF records (CloudWatch embedded metrics) in a function's output."""
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "_aws" in record:
            records.append(record)
    return records


def alert_count(message: dict[str, Any]) -> int:
    """How many mails an operators' Slack message counts: a batch's says "N × …" once a second mail joined it."""
    count, times, _ = str(message["text"]).partition(" × ")
    return int(count.replace(",", "")) if times else 1


def copy_of(raw: bytes, tag: str) -> bytes:
    """The same mail as another one (its own Message-ID), as a burst of one notice brings it."""
    return raw.replace(b"Message-ID: <", f"Message-ID: <{tag}-".encode(), 1)
