"""The cost model: each corpus mail alone through the local pipeline, its path priced at list prices."""

from __future__ import annotations

import argparse
import io
import json
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from benchmarks.common import MIX, ROOT, Benchmark, mail_kind
from benchmarks.pipeline import StackSampler

# ---- the cost model ---------------------------------------------------------------------------------------------

# us-east-1 list prices in USD, checked on 2026-11-23. The Step Functions figures were read on its AWS pricing page;
# the others on copies of the AWS pages (the pages render their tables with scripts). Free tiers are left out.
PRICES_CHECKED = "2026-11-23"
PRICES = {
    "standard_transition": 0.025 / 1_000,  # aws.amazon.com/step-functions/pricing: per state transition
    "express_request": 1.00 / 1_000_000,  # per Express execution
    "express_gb_second": 0.00001667,  # first 1,000 GB-hours a month; billed in 64 MB and 100 ms steps
    "lambda_request": 0.20 / 1_000_000,  # aws.amazon.com/lambda/pricing
    "lambda_gb_second_arm64": 0.0000133334,  # serverless.yml deploys arm64; billed per ms
    "s3_put": 0.005 / 1_000,  # aws.amazon.com/s3/pricing, S3 Standard
    "s3_get": 0.0004 / 1_000,
    "dynamodb_write_unit": 0.625 / 1_000_000,  # aws.amazon.com/dynamodb/pricing, on demand (since 2024-11-01)
    "dynamodb_read_unit": 0.125 / 1_000_000,
    "ses_mail_received": 0.10 / 1_000,  # aws.amazon.com/ses/pricing, plus a chunk per 256 KB
    "ses_chunk_received": 0.09 / 1_000,
    "ses_mail_sent": 0.10 / 1_000,
    "logs_gb_ingested": 0.50,  # aws.amazon.com/cloudwatch/pricing, Standard log class
}
MAILS_A_YEAR = 350_000
# DynamoDB operations by what they cost: a unit per item written or read (items are under 1 KB; reads counted as
# strongly consistent) and twice that in a transaction.
_DYNAMODB_WRITES = {"PutItem", "UpdateItem", "DeleteItem"}
_DYNAMODB_READS = {"GetItem", "Query", "Scan"}  # a unit a request: the items they read are few and small
_OWN_CALLS = {
    "ListExecutions",
    "DescribeExecution",
    "GetExecutionHistory",
}  # the bench watching, not the pipeline


class RequestCounter:
    """The functions' AWS requests, counted through botocore's public events on the default session (as
    LocalPipeline.aws_fault does), with the units DynamoDB bills for them."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.write_units = 0
        self.read_units = 0

    def __enter__(self) -> RequestCounter:
        import boto3

        from rootmail import bootstrap

        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        self._session = boto3.DEFAULT_SESSION
        self._session.events.register("before-parameter-build", self._count, unique_id="bench-requests")
        bootstrap.reset()  # the functions' clients are made again, with the hook
        return self

    def __exit__(self, *exc: object) -> None:
        from rootmail import bootstrap

        self._session.events.unregister("before-parameter-build", unique_id="bench-requests")
        bootstrap.reset()

    def _count(self, event_name: str, params: dict[str, Any], **kwargs: Any) -> None:
        _, service, operation = event_name.split(".", 2)
        if operation in _OWN_CALLS:
            return
        self.requests[f"{service}:{operation}"] += 1
        if service != "dynamodb":
            return
        if operation in _DYNAMODB_WRITES:
            self.write_units += 1
        elif operation == "TransactWriteItems":
            self.write_units += 2 * len(params.get("TransactItems", []))
        elif operation == "BatchWriteItem":
            self.write_units += sum(len(v) for v in params.get("RequestItems", {}).values())
        elif operation == "BatchGetItem":
            self.read_units += sum(len(v.get("Keys", [])) for v in params.get("RequestItems", {}).values())
        elif operation in _DYNAMODB_READS:
            self.read_units += 1

    def take(self) -> tuple[Counter[str], int, int]:
        taken = (self.requests, self.write_units, self.read_units)
        self.requests, self.write_units, self.read_units = Counter(), 0, 0
        return taken


class CountingSink(io.StringIO):
    """The functions' log lines, counted in bytes (CloudWatch Logs bills ingestion by the GB)."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0

    def write(self, text: str) -> int:
        self.bytes += len(text.encode("utf-8"))
        return len(text)


TRIAGE_FUNCTIONS = (
    "ingest",
    "parse",
    "resolve",
    "classify",
    "forward",
    "ticket",
    "escalate",
    "alert",
    "record",
)


def function_settings(key: str) -> dict[str, int]:
    """Each function's `key` (memorySize, timeout) in serverless.yml: its own, else the provider's."""
    text = (ROOT / "serverless.yml").read_text(encoding="utf-8")
    default = re.search(rf"^  {key}: (\d+)", text, re.M)
    assert default, f"serverless.yml has no provider.{key}"
    functions = text[text.index("\nfunctions:\n") :]
    settings = {}
    for found in re.finditer(r"^  ([a-z]+):\n((?:    .*\n|\s*\n)+)", functions, re.M):
        own = re.search(rf"^    {key}: (\d+)", found[2], re.M)
        settings[found[1]] = int(own[1] if own else default[1])
    return settings


def memory_mb() -> int:
    """The triage functions' memory: one figure, as the cost model prices every task at it."""
    sizes = {size for name, size in function_settings("memorySize").items() if name in TRIAGE_FUNCTIONS}
    assert len(sizes) == 1, (
        f"the triage functions' memory differs ({sorted(sizes)}): price each task at its own"
    )
    return sizes.pop()


@dataclass
class MailCost:
    """What one mail's triage used, from its execution's history and the requests counted while it ran."""

    path: str
    transitions: int
    invocations: int  # the workflow's Lambda tasks, plus ingest
    billed_ms: int  # Lambda duration, each task rounded up to the millisecond
    execution_ms: float
    requests: Counter[str]
    write_units: int
    read_units: int
    log_bytes: int
    size: int

    def dollars(self, gb: float, *, express: bool) -> dict[str, float]:
        workflow = (
            PRICES["express_request"]
            + 0.0625 * math.ceil(self.execution_ms / 100) / 10 * PRICES["express_gb_second"]
            if express
            else self.transitions * PRICES["standard_transition"]
        )
        return {
            "step_functions": workflow,
            "lambda": self.invocations * PRICES["lambda_request"]
            + self.billed_ms / 1000 * gb * PRICES["lambda_gb_second_arm64"],
            "s3": self.requests["s3:PutObject"] * PRICES["s3_put"]
            + self.requests["s3:GetObject"] * PRICES["s3_get"],
            "dynamodb": self.write_units * PRICES["dynamodb_write_unit"]
            + self.read_units * PRICES["dynamodb_read_unit"],
            "ses": PRICES["ses_mail_received"]
            + math.ceil(self.size / 262_144) * PRICES["ses_chunk_received"]
            + self.requests["sesv2:SendEmail"] * PRICES["ses_mail_sent"],
            "logs": self.log_bytes / 1e9 * PRICES["logs_gb_ingested"],
        }


def _history_costs(sfn: Any, execution_arn: str) -> tuple[int, int, int]:
    """State transitions (states entered, retries included), Lambda tasks and their billed milliseconds."""
    events = [
        e
        for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn)
        for e in page["events"]
    ]
    transitions = sum(1 for e in events if e["type"].endswith("StateEntered"))
    started: dict[int, datetime] = {}
    invocations, billed = 0, 0
    for event in events:
        if event["type"] == "LambdaFunctionStarted":
            started[event["id"]] = event["timestamp"]
            invocations += 1
        elif event["type"] in ("LambdaFunctionSucceeded", "LambdaFunctionFailed", "LambdaFunctionTimedOut"):
            begun = started.pop(event["previousEventId"], None)
            if begun is not None:
                billed += max(1, math.ceil((event["timestamp"] - begun).total_seconds() * 1000))
    return transitions, invocations, billed


def cost_model(args: argparse.Namespace) -> list[Benchmark]:
    """Each corpus mail alone through the local pipeline: where its time goes; its action path, state transitions,
    Lambda invocations and milliseconds, AWS requests and log bytes, priced; weighted by the assumed mix for a year
    of mail."""
    import threading

    from rootmail.app.offline import load_accounts
    from rootmail.domain.rules.files import load_rule_files
    from rootmail_local.demo import quiet_logs
    from rootmail_local.emulator import LocalPipeline

    corpus = [(p.stem, p.read_bytes()) for p in sorted((ROOT / "tests" / "corpus").glob("*.eml"))]
    if args.per_kind:  # the first mails of each kind only: every path and the whole mix, in less time
        seen: Counter[str] = Counter()
        chosen = []
        for name, raw in corpus:
            seen[mail_kind(name)] += 1
            if seen[mail_kind(name)] <= args.per_kind:
                chosen.append((name, raw))
        corpus = chosen
    gb = memory_mb() / 1024
    costs: dict[str, MailCost] = {}
    sink = CountingSink()
    with quiet_logs(sink), LocalPipeline() as pipeline:
        pipeline.seed_accounts(
            load_accounts(ROOT / "tests/corpus/accounts.json", ROOT / "tests/corpus/contacts.json")
        )
        pipeline.seed_rules(load_rule_files(ROOT / "rules"))
        sfn = pipeline.client("stepfunctions")
        seen: set[str] = set()

        def triage_alone(key: str, raw: bytes) -> dict[str, Any]:
            # Stored from a thread of its own: the S3 event runs ingest inline, and the sampler skips the main
            # thread, which watches.
            storing = threading.Thread(target=pipeline.store_mail, args=(key, raw))
            storing.start()
            storing.join()
            (execution,) = [e for e in pipeline.wait() if e["executionArn"] not in seen]
            seen.add(execution["executionArn"])
            return execution

        with RequestCounter() as counter:
            counter.take()
            for name, raw in corpus:
                sink.bytes = 0
                key = f"cost-{name}"
                execution = triage_alone(key, raw)
                requests, writes, reads = counter.take()
                transitions, invocations, billed = _history_costs(sfn, execution["executionArn"])
                costs[name] = MailCost(
                    path=str((pipeline.ledger().get(key) or {}).get("state", "missing")),
                    transitions=transitions,
                    invocations=invocations + 1,  # ingest, which starts the execution
                    billed_ms=billed,
                    execution_ms=(execution["stopDate"] - execution["startDate"]).total_seconds() * 1000,
                    requests=requests,
                    write_units=writes,
                    read_units=reads,
                    log_bytes=sink.bytes,
                    size=len(raw),
                )
        # The profile is a second pass (the sampler slows what it watches): the same mails with new Message-IDs,
        # so they are triaged, not recognised as copies.
        with StackSampler() as sampler:
            for name, raw in corpus:
                triage_alone(f"profile-{name}", raw.replace(b"Message-ID: <", b"Message-ID: <profile-", 1))
    return [where_time_goes(sampler, costs), _price(costs, gb)]


def where_time_goes(sampler: StackSampler, costs: dict[str, MailCost]) -> Benchmark:
    bench = Benchmark(
        "pipeline-profile",
        f"Where the time goes: the {len(costs)} corpus mails one at a time through the local pipeline (a second "
        "pass of the cost model's run, with new Message-IDs), the CPU time of every thread by the part of the code "
        "it was in.",
        {"mails": len(costs), "interval_seconds": sampler.interval},
    )
    shares = sampler.shares()
    for label, share in shares.items():
        bench.rows.append({"part": label, "cpu_percent": share})
    rootmail_share = sum(v for k, v in shares.items() if k in ("parse", "rules") or k.startswith("rootmail"))
    bench.summary.append(
        (
            "where a mail's time goes on the emulator",
            ", ".join(f"{label} {share}%" for label, share in list(shares.items())[:3])
            + f"; parse {shares.get('parse', 0.0)}%, rules {shares.get('rules', 0.0)}%",
            f"rootmail's own code {rootmail_share:.0f}%, the emulator and the SDK the rest",
        )
    )
    bench.notes.append(
        "Every 2 ms, the CPU time each thread used since the last look (from /proc) is put under the innermost part "
        "of its stack among those listed: a DynamoDB call made while classifying counts as DynamoDB, and the "
        "functions run in process in the interpreter's threads. One mail at a time, so threads do not contend. "
        "Shares, not milliseconds: to let the sampler in, threads hand over the interpreter lock every 0.1 ms, "
        "which slows all of them. Rules include loading and compiling the live rules once per cold start."
    )
    bench.notes.append(
        "On AWS, moto's parts (the interpreter, its request handling, the emulated DynamoDB, S3 and SES) are "
        "remote services: the functions' own CPU is then rootmail's code, Powertools and the SDK."
    )
    return bench


def _worst_case_seconds(definition: dict[str, Any], path: list[str]) -> tuple[float, float]:
    """The longest the states of `path` can take when every attempt times out and every retry waits its longest:
    (the retry waits alone, with the attempts' timeouts too)."""
    timeouts = function_settings("timeout")
    waits = attempts = 0.0
    for name in path:
        state = definition["States"][name]
        function = state["Resource"]["Fn::GetAtt"][0]
        retriers = state.get("Retry", [])
        longest = max(
            (
                sum(
                    min(
                        r.get("IntervalSeconds", 1) * r.get("BackoffRate", 2.0) ** k,
                        r.get("MaxDelaySeconds", 1e9),
                    )
                    for k in range(r.get("MaxAttempts", 3))
                )
                for r in retriers
            ),
            default=0.0,
        )
        tries = 1 + max((r.get("MaxAttempts", 3) for r in retriers), default=0)
        waits += longest
        attempts += tries * timeouts[function]
    return waits, waits + attempts


def _price(costs: dict[str, MailCost], gb: float) -> Benchmark:
    weights = {
        name: MIX[mail_kind(name)] / sum(mail_kind(n) == mail_kind(name) for n in costs) for name in costs
    }
    by_path: dict[str, list[str]] = {}
    for name, cost in costs.items():
        by_path.setdefault(cost.path, []).append(name)
    bench = Benchmark(
        "cost-model",
        f"Each of the {len(costs)} corpus mails alone through the local pipeline: its action path (terminal state), "
        "what it used (from its execution's history and the AWS requests counted while it ran) and what that "
        f"costs at us-east-1 list prices checked {PRICES_CHECKED}, per 1,000 mails; the year weighs each path by "
        f"the assumed mix, at {MAILS_A_YEAR:,} mails.",
        {"memory_mb": int(gb * 1024), "prices_usd": PRICES, "prices_checked": PRICES_CHECKED},
    )

    def mean(names: list[str], value: Callable[[MailCost], float]) -> float:
        return sum(value(costs[n]) for n in names) / len(names)

    year_standard: Counter[str] = Counter()  # dollars by service
    year_express = 0.0
    for path, names in sorted(by_path.items(), key=lambda item: -sum(weights[n] for n in item[1])):
        parts = costs[names[0]].dollars(gb, express=False)
        standard = {k: mean(names, lambda c, k=k: c.dollars(gb, express=False)[k]) for k in parts}
        express = mean(names, lambda c: sum(c.dollars(gb, express=True).values()))
        share = sum(weights[n] for n in names) / 100
        for part, dollars in standard.items():
            year_standard[part] += dollars * share * MAILS_A_YEAR
        year_express += express * share * MAILS_A_YEAR
        bench.rows.append(
            {
                "path": path,
                "mix_percent": round(share * 100, 1),
                "transitions": round(mean(names, lambda c: c.transitions), 1),
                "lambda_invocations": round(mean(names, lambda c: c.invocations), 1),
                "lambda_gb_seconds": round(mean(names, lambda c: c.billed_ms / 1000 * gb), 3),
                "execution_seconds": round(mean(names, lambda c: c.execution_ms / 1000), 2),
                "s3_requests": round(
                    mean(names, lambda c: c.requests["s3:PutObject"] + c.requests["s3:GetObject"]), 1
                ),
                "dynamodb_units": round(mean(names, lambda c: c.write_units + c.read_units), 1),
                "log_kb": round(mean(names, lambda c: c.log_bytes / 1024), 1),
                "usd_per_1000_standard": round(1000 * sum(standard.values()), 3),
                "usd_per_1000_express": round(1000 * express, 3),
            }
        )
    standard_total = sum(year_standard.values())
    bench.rows.append(
        {
            "path": f"a year, {MAILS_A_YEAR:,} mails in the mix",
            "mix_percent": 100.0,
            "usd_per_1000_standard": round(1000 * standard_total / MAILS_A_YEAR, 3),
            "usd_per_1000_express": round(1000 * year_express / MAILS_A_YEAR, 3),
            "usd_a_year_standard": round(standard_total, 2),
            "usd_a_year_express": round(year_express, 2),
            "usd_a_year_by_service_standard": {k: round(v, 2) for k, v in year_standard.most_common()},
        }
    )
    bench.summary.append(
        (
            "cost, Standard workflow (recommended)",
            f"${1000 * standard_total / MAILS_A_YEAR:.2f} per 1,000 mails, ${standard_total:,.0f} a year at "
            f"{MAILS_A_YEAR:,} mails",
            f"Express: ${1000 * year_express / MAILS_A_YEAR:.2f} per 1,000, ${year_express:,.0f} a year "
            f"(prices of {PRICES_CHECKED})",
        )
    )
    definition = json.loads((ROOT / "statemachine" / "triage.asl.json").read_text(encoding="utf-8"))
    waits, worst = _worst_case_seconds(definition, ["Parse", "Resolve", "Classify", "Forward", "Record"])
    workflow_gap = standard_total - year_express  # the other services cost the same under either workflow
    # Executions on AWS take longer than here (cold starts, network calls): at 3 s each, Express would cost this.
    express_at_3s = MAILS_A_YEAR * (PRICES["express_request"] + 0.0625 * 3 * PRICES["express_gb_second"])
    bench.notes += [
        "Standard bills each state entered (retries included); Express bills each execution and its duration at "
        "64 MB (rounded up to 100 ms). Lambda: the tasks' measured milliseconds at the functions' memory, plus one "
        "ingest invocation a mail (its few milliseconds are not in the history and not counted). DynamoDB: a unit "
        "an item written (two in a transaction) and a unit an item read (strongly consistent; a Query, a unit). SES: the "
        "mail received (one chunk per 256 KB) and each forward sent. Free tiers are left out.",
        "The milliseconds are this machine's, with moto in process: on AWS each DynamoDB or S3 call waits on the "
        "network instead, which Lambda bills too, so read the Lambda line as the right order of magnitude. The "
        f"same holds for Express's duration charge: at 3 s an execution, its workflow would cost ${express_at_3s:.2f} "
        "a year.",
        f"Recommendation: Standard for the triage workflow. It costs about ${workflow_gap:,.0f} a year more than "
        f"Express at {MAILS_A_YEAR:,} mails (the whole pipeline about ${standard_total:,.0f} a year), and in return: "
        f"on the forward path its Retry policies may wait up to {waits:.0f} s, and with every attempt timing out "
        f"the path may take {worst / 60:.0f} minutes, past Express's 5 (a worst case, but the one a regional "
        "outage brings, when nothing may be lost); a Standard execution runs exactly once and its name (the mail's key) is "
        "refused a second time for 90 days, which the ingest, the audit and the re-drive rely on (an asynchronous "
        "Express execution runs at least once and does not check names); and the audit and `rootmail deliveries` "
        "read Standard's execution history, which Express keeps only in CloudWatch Logs (whose ingestion, a dollar "
        "or two a year here, the Express figure leaves out).",
    ]
    return bench
