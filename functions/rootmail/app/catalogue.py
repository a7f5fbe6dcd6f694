"""A catalogue of real AWS root mail (JSON files as tests/corpus/real holds them: text, source, expected category):
each mail wrapped as SES stores it for one root address, triaged with the pipeline's decision, and scored per
category and language for `rootmail rules test --catalogue`."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import parseaddr
from pathlib import Path
from typing import Any

# Where a page does not show the sender: AWS's classic notice sender, the same assumption for every such mail (never
# chosen by the mail's category, which would decide for the rules).
ASSUMED_SENDER = "Amazon Web Services <no-reply-aws@amazon.com>"
ROOT_ADDRESS = "aws-root+acme-prod@cloudprovider.example"  # account 123456789012 of the sample organisation


def catalogue(directory: Path) -> list[tuple[str, dict[str, Any]]]:
    """Every mail of a catalogue folder (and its sub-folders), named by its path inside it."""
    return [
        (str(path.relative_to(directory)), json.loads(path.read_text(encoding="utf-8")))
        for path in sorted(directory.rglob("*.json"))
        if path.name != "index.json"
    ]


def sender_of(mail: dict[str, Any]) -> str:
    _, address = parseaddr(mail.get("from") or "")
    return mail["from"] if address and "@" in address else ASSUMED_SENDER


def as_stored(mail: dict[str, Any], root_address: str = ROOT_ADDRESS) -> bytes:
    """The mail as SES stores it for the root address: SES's block with passing verdicts for the sender's domain."""
    sender = sender_of(mail)
    domain = parseaddr(sender)[1].rpartition("@")[2].lower()
    head = (
        "Return-Path: <0100019db4dbf418-000000@amazonses.com>\n"
        "Received: from a8-218.smtp-out.amazonses.com (a8-218.smtp-out.amazonses.com [54.240.8.218])\n"
        " by inbound-smtp.us-east-1.amazonaws.com with SMTP id realmail\n"
        f" for {root_address};\n"
        " Wed, 22 Apr 2026 11:03:28 +0000 (UTC)\n"
        "X-SES-Spam-Verdict: PASS\n"
        "X-SES-Virus-Verdict: PASS\n"
        "Received-SPF: pass (spf=pass) client-ip=54.240.8.218; "
        "envelope-from=0100019db4dbf418-000000@amazonses.com; helo=a8-218.smtp-out.amazonses.com;\n"
        "Authentication-Results: amazonses.com;\n"
        " spf=pass (spf=pass) client-ip=54.240.8.218; envelope-from=0100019db4dbf418-000000@amazonses.com;"
        " helo=a8-218.smtp-out.amazonses.com;\n"
        f" dkim=pass header.i=@{domain};\n"
        f" dmarc=pass header.from={domain};\n"
        "X-SES-RECEIPT: AEFBQUFBQUFBQUFF\n"
        "X-SES-DKIM-SIGNATURE: a=RSA-SHA256; q=dns/txt; b=AAAA; c=relaxed/simple; s=x; d=amazonses.com; v=1;\n"
    )
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = root_address
    message["Subject"] = mail.get("subject") or ""
    message["Date"] = "Wed, 22 Apr 2026 11:03:26 +0000"
    digest = hashlib.sha256(f"{mail['source']}\x1f{mail.get('subject', '')}".encode()).hexdigest()[:24]
    message["Message-ID"] = f"<{digest}@catalogue.rootmail>"
    message.set_content(mail.get("body") or "")
    return head.encode() + message.as_bytes(policy=SMTP).replace(b"\r\n", b"\n")


def score(
    mails: list[tuple[str, dict[str, Any]]], decide: Callable[[bytes], dict[str, Any]]
) -> dict[tuple[str, str], Counter[str]]:
    """Per (category, language): mails, decided by a rule, right (category), wrong, queued. `decide` triages one
    stored mail (the pipeline's decision as `rootmail triage` gives it)."""
    table: dict[tuple[str, str], Counter[str]] = {}
    for _, mail in mails:
        result = decide(as_stored(mail))
        row = table.setdefault((mail["category"], mail["language"]), Counter())
        row["mails"] += 1
        row["decided"] += result["rule_id"] is not None
        row["right"] += result["category"] == mail["category"]
        row["wrong"] += result["rule_id"] is not None and result["category"] != mail["category"]
        row["queued"] += result["action"] == "queue"
    return table


def score_lines(table: dict[tuple[str, str], Counter[str]]) -> list[str]:
    lines = [
        f"{'category':<20} {'lang':<4} {'mails':>5} {'decided':>7} {'right':>5} {'wrong':>5} {'queued':>6}"
    ]
    total: Counter[str] = Counter()
    for (category, language), row in sorted(table.items()):
        total.update(row)
        lines.append(
            f"{category:<20} {language:<4} {row['mails']:>5} {row['decided']:>7} {row['right']:>5} "
            f"{row['wrong']:>5} {row['queued']:>6}"
        )
    lines.append(
        f"{'all':<20} {'':<4} {total['mails']:>5} {total['decided']:>7} {total['right']:>5} {total['wrong']:>5} "
        f"{total['queued']:>6}"
    )
    return lines
