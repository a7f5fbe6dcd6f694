"""The local pipeline: a burst of mail at once, and where a mail's time goes (a stack sampler)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, Benchmark

# ---- the local pipeline -----------------------------------------------------------------------------------------

# Where a sampled thread is, by the innermost frame of its stack that belongs to one of these (file path parts).
TIME_CATEGORIES = (
    ("parse", ("rootmail/domain/mail/",)),
    ("rules", ("rootmail/domain/rules/", "rootmail/domain/triage.py")),
    ("DynamoDB (moto)", ("moto/dynamodb/",)),
    ("S3 (moto)", ("moto/s3/",)),
    ("SES (moto)", ("moto/ses/", "moto/sesv2/")),
    ("Step Functions interpreter (moto)", ("moto/stepfunctions/",)),
    ("moto: finding the backend of each request", ("moto/core/base_backend.py",)),
    ("moto: other (request parsing, responses, Lambda, SSM)", ("moto/",)),
    ("AWS SDK (botocore: clients, requests, responses)", ("botocore/", "boto3/")),
    ("delivery (zenpy, slack_sdk, stand-ins)", ("zenpy/", "slack_sdk/", "local/rootmail_local/standins.py")),
    ("Powertools (logging, metrics)", ("aws_lambda_powertools/",)),
    ("rootmail adapters (ledger, deliveries, mail store)", ("rootmail/adapters/",)),
    ("rootmail, other (handlers, pipeline, render)", ("rootmail/",)),
)


class StackSampler:
    """Every `interval` s, the CPU time each thread but the main one used since the last look (Linux:
    /proc/self/task/N/schedstat, in nanoseconds), put under the part of the code its stack is in then. Threads share one interpreter
    lock, so only CPU time says which of them ran; a thread waiting on a lock, a socket or a sleep uses none. Run
    it over one mail at a time: with many threads contending, CPU used before a wait would be put at the wait."""

    def __init__(self, interval: float = 0.002) -> None:
        import threading

        self.interval = interval
        self.busy: Counter[str] = Counter()
        self._ticks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stack-sampler", daemon=True)

    def __enter__(self) -> StackSampler:
        # A thread running Python keeps the interpreter lock for the switch interval (5 ms) unless it blocks, so
        # the sampler would only ever see threads at their blocking calls: ask for the lock back far more often.
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(self.interval / 20)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        sys.setswitchinterval(self._switch_interval)

    def _run(self) -> None:
        import threading

        skipped = {threading.get_ident(), threading.main_thread().ident}  # the sampler, the bench watching
        while not self._stop.wait(self.interval):
            native = {t.ident: t.native_id for t in threading.enumerate()}
            for ident, frame in sys._current_frames().items():
                if ident in skipped or native.get(ident) is None:
                    continue
                used = self._cpu_used(native[ident])
                if used:
                    self.busy[self._category(frame)] += used

    def _cpu_used(self, native_id: int) -> int:
        """Nanoseconds of CPU the thread used since the last look (clock ticks where the kernel keeps no
        schedstat; nothing without /proc)."""
        task = Path(f"/proc/self/task/{native_id}")
        try:
            ticks = int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            try:
                fields = (task / "stat").read_text().rpartition(")")[2].split()
                ticks = (int(fields[11]) + int(fields[12])) * 10_000_000  # utime, stime; 100 ticks a second
            except (OSError, ValueError, IndexError):
                return 0
        used = ticks - self._ticks.get(native_id, ticks)
        self._ticks[native_id] = ticks
        return used

    @staticmethod
    def _category(frame: Any) -> str:
        while frame is not None:
            path = frame.f_code.co_filename.replace(os.sep, "/")
            for label, parts in TIME_CATEGORIES:
                if any(part in path for part in parts):
                    return label
            frame = frame.f_back
        return "other (stdlib: json, threads, http)"

    def shares(self) -> dict[str, float]:
        total = sum(self.busy.values()) or 1
        return {label: round(100 * n / total, 1) for label, n in self.busy.most_common()}


def pipeline_burst(args: argparse.Namespace) -> Benchmark:
    """N mails stored at once into the local pipeline (the real state machine, the real handlers): every one must
    reach a terminal state; throughput, the slowest mail and where the time goes."""
    import threading

    from rootmail.app.offline import load_accounts
    from rootmail.domain.rules.files import load_rule_files
    from rootmail_local.demo import quiet_logs
    from rootmail_local.emulator import LocalPipeline

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
            "run": f"{count:,} mails at once",
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
    bench.summary.append(
        (
            f"local pipeline, {count:,} mails at once",
            f"{count / seconds:.1f} mails/s, all terminal: {'yes' if bench.rows[0]['all_terminal'] else 'NO'}, "
            f"slowest mail {bench.rows[0]['slowest_mail_seconds']} s",
            "reference (moto in process; where the time goes: pipeline-profile)",
        )
    )
    bench.notes += [
        f"storing the {count:,} mails took {stored:.1f} s (4 writers), while ingest (inline, from each S3 event) "
        "and the first executions already ran.",
        "One process and 2 cores for moto, the functions and the stand-ins: AWS runs each function alone. On AWS "
        "the emulated services (moto's share) are remote calls of a few milliseconds each that use no CPU here.",
    ]
    return bench
