"""The accounts sync over an organisation of `--accounts` members on moto: requests, items written, time."""

from __future__ import annotations

import argparse
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from benchmarks.common import Benchmark, WireCounter, local_aws


def accounts_sync(args: argparse.Namespace) -> Benchmark:
    """The accounts sync on an organisation of N accounts: the first run (every account new) and a second one an
    hour later with no change (the listing and that hour's slice of contacts)."""
    import boto3

    from rootmail.adapters.dynamodb.accounts import AccountsTable
    from rootmail.adapters.organizations import Organization
    from rootmail.app.accounts_sync import SyncOptions, sync_accounts
    from rootmail_local.organization import LocalOrganization, create_accounts_table, synthetic_organization

    management = "123456789012"
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    bench = Benchmark(
        "accounts-sync",
        f"Organizations → accounts table, {args.accounts:,} member accounts (moto)",
        {"accounts": args.accounts, "concurrency": 1, "refresh_hours": 24, "budget": None},
    )
    with local_aws(management):
        started = time.perf_counter()
        organization = LocalOrganization(management)
        organization.create(email="aws-root+management@provider.example", name="management")
        organization.add(synthetic_organization(args.accounts))
        bench.notes.append(
            f"organisation seeded in {time.perf_counter() - started:.1f} s (not counted below)"
        )
        wire = WireCounter()
        dynamodb = wire.attach(boto3.client("dynamodb"))
        create_accounts_table(dynamodb, "accounts")
        table = AccountsTable(dynamodb, "accounts")
        source = Organization(
            wire.attach(boto3.client("organizations")), wire.attach(boto3.client("account")), concurrency=1
        )
        wire.take()
        for label, moment in (("first", now), ("second, no change", now + timedelta(hours=1))):
            before = Counter(source.counter.calls)
            started = time.perf_counter()
            report = sync_accounts(source, table, SyncOptions(), now=moment)
            seconds = time.perf_counter() - started
            requests = wire.take()
            bench.rows.append(
                {
                    "run": label,
                    "accounts": report.listed,
                    "requests": sum(requests.values()),
                    "requests_by_operation": dict(sorted(requests.items())),
                    "organizations_calls": sum((source.counter.calls - before).values()),
                    "sdk_retries": report.sdk_retries,
                    "contacts_read": report.details_read,
                    "added": len(report.added),
                    "changed": len(report.changed),
                    "deactivated": len(report.deactivated),
                    "items_written": report.items_written,
                    "seconds": round(seconds, 2),
                    "partial_failure": report.partial_failure,
                }
            )
    for row in bench.rows:
        bench.summary.append(
            (
                f"accounts sync, {args.accounts:,} accounts ({row['run']} run)",
                f"{row['requests']:,} requests, {row['items_written']:,} items written, {row['seconds']} s",
                "reference (moto's time)",
            )
        )
    bench.notes += [
        "requests: every request sent (SDK retries included): Organizations, Account Management and DynamoDB",
        "moto lists 100 accounts per ListAccounts page; AWS lists at most 20, so AWS needs 5× the ListAccounts "
        "pages shown here",
        "one thread: moto runs in this process, where more threads only contend for the interpreter; on AWS the "
        "sync runs 4 (ROOTMAIL_SYNC_CONCURRENCY)",
        "time is dominated by moto: each call costs milliseconds in process, ListAccounts describes every account "
        "for each page, and a scan serialises every item",
    ]
    return bench
