"""What the model takes from the local emulator: every corpus mail alone through the real pipeline (its profile:
what each function returned for it; and each function's durations), then N mails at once (the same burst as
pipeline-burst) to check the model against: the terminal states, when each execution started and stopped, and the
durations under that load."""

from __future__ import annotations

import json
import os
import platform
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from benchmarks.common import ROOT, mail_kind
from benchmarks.model.behaviour import WAITING_FIELDS, Measurement, Profile

CORPUS = ROOT / "tests" / "corpus"
_ENDED = ("LambdaFunctionSucceeded", "LambdaFunctionFailed", "LambdaFunctionTimedOut")


def history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    return [
        event
        for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn)
        for event in page["events"]
    ]


def lambda_calls(
    events: list[dict[str, Any]], prefix: str
) -> tuple[dict[str, list[dict[str, Any]]], list[tuple[str, float]]]:
    """From one execution's history: per function, what each call returned or raised (in order; an answer that
    only asks the definition to wait is left out: the model decides those), and every call's duration (from
    LambdaFunctionStarted to its end, as cost.py's `_history_costs` takes it)."""
    scheduled: dict[int, str] = {}
    started: dict[int, tuple[str, datetime]] = {}
    calls: dict[str, list[dict[str, Any]]] = {}
    durations: list[tuple[str, float]] = []
    for event in events:
        kind = event["type"]
        if kind == "LambdaFunctionScheduled":
            resource = event["lambdaFunctionScheduledEventDetails"]["resource"]
            scheduled[event["id"]] = resource.rsplit(":", 1)[-1].removeprefix(prefix)
        elif kind == "LambdaFunctionStarted":
            function = scheduled.get(event["previousEventId"])
            if function is not None:
                started[event["id"]] = (function, event["timestamp"])
        elif kind in _ENDED:
            begun = started.pop(event["previousEventId"], None)
            if begun is None:
                continue
            function, at = begun
            durations.append((function, max(0.001, (event["timestamp"] - at).total_seconds())))
            if kind == "LambdaFunctionSucceeded":
                output = json.loads(event["lambdaFunctionSucceededEventDetails"].get("output") or "null")
                if isinstance(output, dict) and any(output.get(f) is not None for f in WAITING_FIELDS):
                    continue
                calls.setdefault(function, []).append({"result": output})
            elif kind == "LambdaFunctionFailed":
                error = event["lambdaFunctionFailedEventDetails"].get("error", "Lambda.Unknown")
                calls.setdefault(function, []).append({"error": error})
            else:
                calls.setdefault(function, []).append({"error": "States.Timeout"})
    return calls, durations


@contextmanager
def _pipeline() -> Iterator[Any]:
    from rootmail.app.offline import load_accounts
    from rootmail.domain.rules.files import load_rule_files
    from rootmail_local.demo import quiet_logs
    from rootmail_local.emulator import LocalPipeline

    with open(os.devnull, "w") as sink, quiet_logs(sink), LocalPipeline() as pipeline:
        pipeline.seed_accounts(load_accounts(CORPUS / "accounts.json", CORPUS / "contacts.json"))
        pipeline.seed_rules(load_rule_files(ROOT / "rules"))
        yield pipeline


def measure(burst: int = 0) -> Measurement:
    """Every corpus mail alone, then (if `burst`) `burst` corpus mails at once, in one local pipeline."""
    from benchmarks.cost import RequestCounter

    corpus = [(p.stem, p.read_bytes()) for p in sorted(CORPUS.glob("*.eml"))]
    profiles: dict[str, Profile] = {}
    durations: dict[str, list[float]] = {}
    with _pipeline() as pipeline:
        sfn = pipeline.client("stepfunctions")
        prefix = f"rootmail-{pipeline.stage}-"
        seen: set[str] = set()
        with RequestCounter() as counter:
            counter.take()
            for name, raw in corpus:
                key = f"model-{name}"
                # Stored from a thread of its own, as cost.py does: the S3 event runs ingest inline.
                began = time.perf_counter()
                storing = threading.Thread(target=pipeline.store_mail, args=(key, raw))
                storing.start()
                storing.join()
                durations.setdefault("ingest", []).append(time.perf_counter() - began)
                (execution,) = [e for e in pipeline.wait() if e["executionArn"] not in seen]
                seen.add(execution["executionArn"])
                requests, writes, reads = counter.take()
                calls, timed = lambda_calls(history(sfn, execution["executionArn"]), prefix)
                for function, seconds in timed:
                    durations.setdefault(function, []).append(seconds)
                profiles[name] = Profile(
                    name=name,
                    kind=mail_kind(name),
                    calls=calls,
                    terminal=str((pipeline.ledger().get(key) or {}).get("state", "missing")),
                    dynamodb_units=writes + reads,
                    s3_requests=requests["s3:GetObject"] + requests["s3:PutObject"],
                )
        observed = _burst(pipeline, corpus, burst, seen, prefix) if burst else None
    return Measurement(
        profiles=profiles,
        durations={k: sorted(v) for k, v in durations.items()},
        measured_at=datetime.now(UTC).isoformat(timespec="seconds"),
        machine=f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPU(s)",
        burst=observed,
    )


def _burst(
    pipeline: Any, corpus: list[tuple[str, bytes]], count: int, seen: set[str], prefix: str
) -> dict[str, Any]:
    """`count` mails stored at once by 4 writers, as pipeline-burst does: which corpus mail each is, when its
    execution started and stopped, its terminal state, and every task's duration under that load."""
    from rootmail.domain.executions import execution_name
    from rootmail_local.emulator import PREFIX

    sfn = pipeline.client("stepfunctions")
    mails = [
        (
            f"check-{number:05d}-{corpus[number % len(corpus)][0]}",
            corpus[number % len(corpus)][0],
            corpus[number % len(corpus)][1].replace(b"Message-ID: <", f"Message-ID: <c{number}-".encode(), 1),
        )
        for number in range(count)
    ]
    started = time.perf_counter()
    began = datetime.now(UTC)
    writers = [
        threading.Thread(target=lambda part=mails[i::4]: [pipeline.store_mail(k, r) for k, _, r in part])
        for i in range(4)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    executions = [e for e in pipeline.wait(timeout=600 + count) if e["executionArn"] not in seen]
    seconds = time.perf_counter() - started
    ledger = pipeline.ledger()
    by_key = {e["name"]: e for e in executions}
    rows = []
    durations: dict[str, list[float]] = {}
    for key, name, _ in mails:
        record = ledger.get(key) or {}
        execution = by_key.get(execution_name(PREFIX + key))
        row: dict[str, Any] = {"key": key, "corpus": name, "state": str(record.get("state", "missing"))}
        if execution is not None:
            row["start"] = (execution["startDate"] - began).total_seconds()
            if execution.get("stopDate"):
                row["stop"] = (execution["stopDate"] - began).total_seconds()
            _, timed = lambda_calls(history(sfn, execution["executionArn"]), prefix)
            for function, duration in timed:
                durations.setdefault(function, []).append(duration)
        rows.append(row)
    return {"mails": rows, "seconds": seconds, "durations": {k: sorted(v) for k, v in durations.items()}}
