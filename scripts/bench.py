"""`make bench`: measured runs on the local emulator, reported in build/bench/report.md and build/bench/report.json.

    .venv/bin/python scripts/bench.py [--only NAME ...] [--accounts N] [--out DIR]

Each benchmark is a function in BENCHMARKS returning a `Benchmark` (rows of figures and notes); the runner times
nothing itself and asserts nothing: it records. API calls are counted on the wire, by a botocore `before-send` hook
on the clients the code under test is handed (every request sent, SDK retries included). Times are this machine's
wall clock on moto, which runs in process: they compare runs with each other, they do not predict AWS.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "build" / "bench"


@dataclass
class Benchmark:
    name: str
    description: str
    parameters: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class WireCounter:
    """Requests by service and operation, counted as botocore sends them."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()

    def attach(self, client: Any) -> Any:
        client.meta.events.register("before-send", self._count)
        return client

    def _count(self, event_name: str, **_: Any) -> None:
        _, service, operation = event_name.split(".", 2)
        self.requests[f"{service}:{operation}"] += 1

    def take(self) -> Counter[str]:
        taken, self.requests = self.requests, Counter()
        return taken


@contextmanager
def local_aws(account: str) -> Iterator[None]:
    """moto, with every request pinned to one account (moto otherwise finds a request's account by scanning every
    account's IAM keys, and each account of a large organisation has IAM in moto)."""
    from moto import mock_aws

    saved = {
        k: os.environ.get(k) for k in ("AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    }
    saved.update({k: os.environ.get(k) for k in ("MOTO_ACCOUNT_ID", "AWS_PROFILE", "AWS_ENDPOINT_URL")})
    os.environ.update(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        MOTO_ACCOUNT_ID=account,
    )
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    try:
        with mock_aws():
            yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# ---- benchmarks -----------------------------------------------------------------------------------------------


def accounts_sync(args: argparse.Namespace) -> Benchmark:
    """The accounts sync on an organisation of N accounts: the first run (every account new) and a second one an
    hour later with no change (the listing and that hour's slice of contacts)."""
    import boto3

    from rootmail.accounts_sync import SyncOptions, sync_accounts
    from rootmail.adapters.organizations import Organization
    from rootmail.adapters.tables import AccountsTable
    from rootmail.local.organization import LocalOrganization, create_accounts_table, synthetic_organization

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


def generated_rules(count: int) -> list[dict[str, Any]]:
    """Rules an operator team might add over the years: AWS senders, subject patterns and body markers that these
    mails do not match, so every mail is checked against all of them (the slow case)."""
    kinds = [
        ("health", "forward"),
        ("billing", "ignore"),
        ("marketplace", "forward"),
        ("account-lifecycle", "ignore"),
    ]
    rules = []
    for number in range(count):
        category, action = kinds[number % len(kinds)]
        match: dict[str, Any] = {"sender_domains": ["amazon.com", "aws.com", "amazonaws.com"]}
        if number % 3:
            match["subject"] = rf"(?i)\b(generated notice|ご案内) {number}\b"
        else:
            match["body_any"] = [f"rootmail-generated-marker-{number}", f"生成された目印 {number}"]
        rules.append(
            {
                "id": f"generated-{number:03d}",
                "description": "generated for the benchmark",
                "priority": 300 + number,
                "category": category,
                "action": action,
                "match": match,
            }
        )
    return rules


def rules_preview(args: argparse.Namespace) -> Benchmark:
    """The preview of `rootmail rules test` over N stored mails (the corpus, round and round) with the default rules
    plus 300 generated ones, next to parsing the same mails."""
    from rootmail.domain.accounts import Account, resolve_accounts
    from rootmail.domain.authenticity import DEFAULT_AWS_SENDER_DOMAINS
    from rootmail.domain.parsing import parse_mail
    from rootmail.domain.preview import PreviewMail, preview
    from rootmail.domain.rules import compile_rules, load_rule_files
    from rootmail.domain.triage import decide

    corpus = [p.read_bytes() for p in sorted((ROOT / "tests" / "corpus").glob("*.eml"))]
    defaults = load_rule_files(ROOT / "rules")
    proposed = compile_rules(
        [*((r.to_item(), "rules") for r in defaults), *((r, "generated") for r in generated_rules(300))]
    )
    count = args.mails

    def raws() -> Iterator[bytes]:
        for number in range(count):
            yield corpus[number % len(corpus)]

    def resolution(mail: Any) -> Any:
        return resolve_accounts(None, mail.account_ids, lambda _: None, lambda i: Account(i, ""))

    started = time.perf_counter()
    for raw in raws():
        parse_mail(raw)
    parse_seconds = time.perf_counter() - started

    started = time.perf_counter()
    result = preview(
        (PreviewMail(str(n), m, resolution(m), False) for n, m in enumerate(map(parse_mail, raws()))),
        defaults,
        proposed,
        DEFAULT_AWS_SENDER_DOMAINS,
    )
    preview_seconds = time.perf_counter() - started

    parsed = [parse_mail(raw) for raw in corpus]
    from rootmail.domain.authenticity import assess

    prepared = [(m, assess(m, DEFAULT_AWS_SENDER_DOMAINS), resolution(m)) for m in parsed]
    started = time.perf_counter()
    for number in range(count):
        mail, authenticity, found = prepared[number % len(prepared)]
        decide(mail, authenticity, found, proposed, accounts_checked=False)
    decide_seconds = time.perf_counter() - started

    bench = Benchmark(
        "rules-preview",
        f"`rootmail rules test` over {count:,} stored mails (the {len(corpus)} corpus mails, round and round) with "
        f"the {len(defaults)} default rules plus 300 generated ones ({len(proposed)} rules), in one process.",
        {"mails": count, "rules": len(proposed)},
    )
    for run, seconds in (
        ("parse only (parse_mail)", parse_seconds),
        ("preview (parse + decide with both rule sets)", preview_seconds),
        ("decide only, mails already parsed", decide_seconds),
    ):
        bench.rows.append(
            {
                "run": run,
                "mails": count,
                "seconds": round(seconds, 2),
                "mails_per_second": round(count / seconds),
                "ratio_to_parse": round(seconds / parse_seconds, 2),
            }
        )
    bench.notes.append(
        f"{result.mails:,} mails previewed; {len(result.changes):,} would change (the generated rules take none)."
    )
    rule_passes = preview_seconds - parse_seconds
    bench.notes.append(
        f"Of the preview's {preview_seconds:.1f} s, parsing takes {parse_seconds:.1f} s and the two rule passes "
        f"(the rules in force, the proposed ones) {rule_passes:.1f} s. The mails are read from memory: reading them "
        "from S3 (one GET each) comes on top, on AWS."
    )
    return bench


def pipeline_burst(args: argparse.Namespace) -> Benchmark:
    """N mails stored at once into the local pipeline (the real state machine, the real handlers): every one must
    reach a terminal state; throughput and the slowest mail."""
    import threading

    from rootmail.domain.rules import load_rule_files
    from rootmail.local.demo import quiet_logs
    from rootmail.local.emulator import LocalPipeline
    from rootmail.offline import load_accounts

    corpus = [(p.stem, p.read_bytes()) for p in sorted((ROOT / "tests" / "corpus").glob("*.eml"))]
    count = args.burst
    terminal = {"forwarded", "ticketed", "escalated", "restricted", "quarantined", "ignored", "queued"}
    bench = Benchmark(
        "pipeline-burst",
        f"{count:,} mails dropped into the local pipeline at once (the {len(corpus)} corpus mails, each copy with its "
        "own Message-ID), through moto's Step Functions interpreter running statemachine/triage.asl.json.",
        {"mails": count},
    )
    with open(os.devnull, "w") as sink, quiet_logs(sink), LocalPipeline() as pipeline:
        pipeline.seed_accounts(
            load_accounts(ROOT / "tests/corpus/accounts.json", ROOT / "tests/corpus/contacts.json")
        )
        pipeline.seed_rules(load_rule_files(ROOT / "rules"))
        mails = []
        for number in range(count):
            name, raw = corpus[number % len(corpus)]
            mails.append(
                (
                    f"burst-{number:05d}-{name}",
                    raw.replace(b"Message-ID: <", f"Message-ID: <b{number}-".encode(), 1),
                )
            )
        started = time.perf_counter()
        writers = [
            threading.Thread(target=lambda part=mails[i::4]: [pipeline.store_mail(k, r) for k, r in part])
            for i in range(4)
        ]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
        stored = time.perf_counter() - started
        executions = pipeline.wait(timeout=600 + count)
        seconds = time.perf_counter() - started
        ledger = pipeline.ledger()
        states = Counter(str((ledger.get(key) or {}).get("state", "missing")) for key, _ in mails)
        durations = sorted(
            (e["stopDate"] - e["startDate"]).total_seconds() for e in executions if e.get("stopDate")
        )
    bench.rows.append(
        {
            "mails": count,
            "executions": len(executions),
            "all_terminal": sum(n for s, n in states.items() if s in terminal) == count,
            "seconds": round(seconds, 1),
            "mails_per_second": round(count / seconds, 1),
            "slowest_mail_seconds": round(durations[-1], 2) if durations else None,
            "median_mail_seconds": round(durations[len(durations) // 2], 2) if durations else None,
            "states": dict(states),
        }
    )
    bench.notes.append(
        f"storing the {count:,} mails took {stored:.1f} s (4 writers); the rest is the pipeline."
    )
    bench.notes.append(
        "One process and 2 cores for moto, the functions and the stand-ins: AWS runs each function alone."
    )
    return bench


BENCHMARKS: dict[str, Callable[[argparse.Namespace], Benchmark]] = {
    "pipeline-burst": pipeline_burst,
    "rules-preview": rules_preview,
    "accounts-sync": accounts_sync,
}


# ---- report ---------------------------------------------------------------------------------------------------


def render_markdown(benchmarks: list[Benchmark], meta: dict[str, Any]) -> str:
    lines = ["# rootmail benchmarks", "", f"Generated {meta['generated_at']} on {meta['machine']}.", ""]
    for bench in benchmarks:
        lines += [f"## {bench.name}", "", bench.description, ""]
        columns = [k for k in bench.rows[0] if not isinstance(bench.rows[0][k], dict)] if bench.rows else []
        lines.append("| " + " | ".join(columns) + " |")
        lines.append("|" + "---|" * len(columns))
        for row in bench.rows:
            lines.append("| " + " | ".join(_cell(row[c]) for c in columns) + " |")
        lines.append("")
        for row in bench.rows:
            for key, value in row.items():
                if isinstance(value, dict):
                    detail = ", ".join(f"{k} {_cell(v)}" for k, v in value.items())
                    lines.append(f"- {row.get('run', '')} — {key.replace('_', ' ')}: {detail}")
        lines += [*(f"- {note}" for note in bench.notes), ""]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=sorted(BENCHMARKS), help="run only these")
    parser.add_argument("--accounts", type=int, default=10_000, help="organisation size (default 10,000)")
    parser.add_argument(
        "--mails", type=int, default=100_000, help="stored mails for rules-preview (default 100,000)"
    )
    parser.add_argument("--burst", type=int, default=2_000, help="mails for pipeline-burst (default 2,000)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "functions"))
    results = []
    for name in args.only or sorted(BENCHMARKS):
        print(f"==> {name}", file=sys.stderr, flush=True)
        results.append(BENCHMARKS[name](args))
        for row in results[-1].rows:
            print("    " + ", ".join(f"{k} {_cell(v)}" for k, v in row.items() if not isinstance(v, dict)))
    meta = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPU(s), "
        f"{platform.system()} {platform.machine()}",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(
        json.dumps({**meta, "benchmarks": [asdict(b) for b in results]}, indent=2) + "\n", encoding="utf-8"
    )
    (args.out / "report.md").write_text(render_markdown(results, meta), encoding="utf-8")
    print(f"report: {args.out / 'report.md'} and report.json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
