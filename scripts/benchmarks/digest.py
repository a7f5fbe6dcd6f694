"""The hourly digest's grouping of a large queue."""

from __future__ import annotations

import argparse
import random
import time

from benchmarks.common import Benchmark


def digest_grouping(args: argparse.Namespace) -> Benchmark:
    """The hourly digest over N queued mails: grouping into patterns, then the Slack message."""
    from rootmail.domain.digest import group_queue
    from rootmail.messages.operators import digest_message

    rng = random.Random(5)
    senders = [
        "no-reply@aws.com",
        "aws-marketing-email-replies@amazon.com",
        "no-reply-aws@amazon.com",
        "health@aws.com",
        "aws-verification@amazon.com",
        "billing@aws.com",
    ]
    subjects = [
        "AWS re:Invent {n} reminder: register by November {d}",
        "Amazon Q Developer: new features for account {a}",
        "Your AWS account {a}: {n} new services this week",
        "Action needed on case {c}: information requested",
        "[Informational] Amazon RDS maintenance window {d} for db-{h}",
        "Verify your contact information (request {u})",
        "Payment of {n}.{d} USD could not be processed for account {a}",
    ]
    # Unknown mail comes from any AWS sender: 42 sender and subject shapes.
    shapes = [(sender, subject) for sender in senders for subject in subjects]
    reasons = [
        "no rule matched",
        "no known account to forward for: account {a} is not in the accounts table",
        "delivery failed: SES throttled {n} times",
        "no rule matched",
    ]
    records = []
    for number in range(args.queued):
        sender, subject = rng.choice(shapes)
        fields = {
            "n": rng.randint(1, 999),
            "d": rng.randint(1, 28),
            "a": f"{rng.randint(10**11, 10**12 - 1)}",
            "c": f"{rng.randint(10**9, 10**10 - 1)}",
            "h": f"{rng.getrandbits(32):08x}",
            "u": str(random.Random(number).getrandbits(128)),
        }
        records.append(
            {
                "mail_id": f"queued-{number:06d}",
                "state": "queued",
                "sender": sender,
                "subject": subject.format(**fields),
                "category": "unclassified",
                "queue_reason": rng.choice(reasons).format(**fields),
                "account_ids": [fields["a"]],
                "received_at": f"2026-11-{1 + number % 22:02d}T{number % 24:02d}:00:00.000Z",
            }
        )
    started = time.perf_counter()
    patterns = group_queue(records)
    grouped = time.perf_counter() - started
    started = time.perf_counter()
    _, blocks = digest_message(patterns, language="en", now="2026-11-23T10:00:00.000Z")
    rendered = time.perf_counter() - started
    bench = Benchmark(
        "digest",
        f"The hourly digest over {args.queued:,} queued mails (42 sender and subject shapes with varying IDs, "
        "numbers and dates; 4 queue reasons), in memory.",
        {"queued": args.queued},
    )
    bench.rows.append(
        {
            "queued": args.queued,
            "patterns": len(patterns),
            "group_seconds": round(grouped, 2),
            "mails_per_second": round(args.queued / grouped),
            "render_seconds": round(rendered, 4),
            "blocks": len(blocks),
        }
    )
    bench.summary.append(
        (
            f"digest over {args.queued:,} queued mails",
            f"{grouped:.2f} s to group into {len(patterns)} patterns, {rendered * 1000:.1f} ms to render",
            "reference",
        )
    )
    bench.notes.append(
        "Reading the queue comes on top: on AWS a Query of the ledger's queue index returns up to 1 MB a page "
        "(the overview fields only, a few hundred bytes a mail), about 15 pages for 50,000 queued mails."
    )
    return bench
