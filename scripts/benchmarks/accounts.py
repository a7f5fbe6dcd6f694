"""The accounts sync over `--organizations` organisations of `--accounts` members each on moto, each organisation in
its own management account and read through a role assumed there (as the deployed functions do): requests per
organisation, items written, time."""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.common import Benchmark, WireCounter, local_aws

STACK_ACCOUNT = "123456789012"  # where the functions run: no organisation of its own


def _in_account(client: Any, account: str) -> Any:
    client.meta.events.register("before-sign", lambda request, **_: _name_account(request, account))
    return client


def _name_account(request: Any, account: str) -> None:
    request.headers["x-moto-account-id"] = account


def management_account(number: int) -> str:
    return f"{900000000001 + number:012d}"


def accounts_sync(args: argparse.Namespace) -> Benchmark:
    """The accounts sync on every organisation at once: the first run (every account new) and a second one an hour
    later with no change (the listings and that hour's slice of contacts)."""
    import boto3

    from rootmail.adapters.dynamodb.accounts import AccountsTable
    from rootmail.app.accounts_sync import SyncOptions, sync_accounts
    from rootmail.app.ports import ManagedOrganization
    from rootmail.bootstrap import Runtime
    from rootmail.config import Settings
    from rootmail_local.organization import LocalOrganization, create_accounts_table, synthetic_organization

    count, size = args.organizations, args.accounts
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    bench = Benchmark(
        "accounts-sync",
        f"Organizations → accounts table, {count} organisation(s) × {size:,} member accounts (moto)",
        {"organizations": count, "accounts": size, "concurrency": 1, "refresh_hours": 24, "budget": None},
    )
    names = [f"org-{n + 1}" for n in range(count)]
    with local_aws(STACK_ACCOUNT):
        started = time.perf_counter()
        for number in range(count):
            local = LocalOrganization(management_account(number))
            local.create(
                email=f"aws-root+management{number + 1}@provider.example", name=f"management-{number + 1}"
            )
            local.add(synthetic_organization(size, start=number * size))
        bench.notes.append(
            f"{count} organisation(s) seeded in {time.perf_counter() - started:.1f} s (not counted below)"
        )
        roles = [
            {"name": name, "roleArn": f"arn:aws:iam::{management_account(n)}:role/rootmail-reader"}
            for n, name in enumerate(names)
        ]
        # From here each request's account is the one its credentials are for (the assumed roles' or the stack's),
        # named to moto in a header rather than found by scanning every account's keys (thousands, in moto).
        os.environ.pop("MOTO_ACCOUNT_ID")
        # One thread per organisation's calls: moto runs in this process, where more only contend for the interpreter.
        runtime = Runtime(Settings(organizations=json.dumps(roles), sync_concurrency=1))
        tables = WireCounter()
        dynamodb = tables.attach(_in_account(boto3.client("dynamodb"), STACK_ACCOUNT))
        create_accounts_table(dynamodb, "accounts")
        table = AccountsTable(dynamodb, "accounts")
        for label, moment in (("first", now), ("second, no change", now + timedelta(hours=1))):
            wires = {name: WireCounter() for name in names}
            organizations = []
            for number, managed in enumerate(runtime.organizations()):
                organization = managed.connect()  # a new role session each run, as each Lambda run has
                for client in (organization._organizations, organization._account):
                    wires[managed.name].attach(_in_account(client, management_account(number)))
                organizations.append(ManagedOrganization.of(managed.name, organization))
            tables.take()
            started = time.perf_counter()
            report = sync_accounts(organizations, table, SyncOptions(), now=moment)
            seconds = time.perf_counter() - started
            writes = tables.take()
            for name in names:
                part = report.organizations[name]
                requests = wires[name].take()
                bench.rows.append(
                    {
                        "run": label,
                        "organization": name,
                        "accounts": part.listed,
                        "requests": sum(requests.values()),
                        "requests_by_operation": dict(sorted(requests.items())),
                        "sdk_retries": part.sdk_retries,
                        "contacts_read": part.details_read,
                        "added": part.added,
                        "changed": part.changed,
                        "deactivated": part.deactivated,
                        "items_written": part.items_written,
                        "partial_failure": not part.listing_complete,
                    }
                )
            bench.rows.append(
                {
                    "run": label,
                    "organization": "all (and the table)",
                    "accounts": report.listed,
                    "requests": sum(r["requests"] for r in bench.rows[-count:]) + sum(writes.values()),
                    "requests_by_operation": dict(sorted(writes.items())),
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
        if "seconds" in row:  # the whole run's row: the organisations are read at once
            bench.summary.append(
                (
                    f"accounts sync, {count} × {size:,} accounts ({row['run']} run)",
                    f"{row['requests']:,} requests, {row['items_written']:,} items written, {row['seconds']} s",
                    "reference (moto's time)",
                )
            )
    bench.notes += [
        "requests: every request sent (SDK retries included); per organisation: Organizations and Account "
        "Management through its role; the `all` row adds the accounts table's (one scan, the batched writes)",
        "organisations are listed and read at once, each with its own quotas; the run's time is the `all` row's",
        "moto lists 100 accounts per ListAccounts page; AWS lists at most 20, so AWS needs 5× the ListAccounts "
        "pages shown here",
        "one thread per organisation: moto runs in this process, where more threads only contend for the "
        "interpreter; on AWS each organisation's contacts are read 4 at a time (ROOTMAIL_SYNC_CONCURRENCY)",
        "time is dominated by moto: each call costs milliseconds in process, ListAccounts describes every account "
        "for each page, and a scan serialises every item",
    ]
    return bench
