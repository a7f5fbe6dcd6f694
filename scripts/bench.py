"""`make bench`: measured runs on the local emulator, reported in build/bench/report.md and build/bench/report.json.

    .venv/bin/python scripts/bench.py [--only NAME ...] [--accounts N] [--organizations N] [--out DIR]
    .venv/bin/python scripts/bench.py --only burst-model [--model-check N | --model-measured FILE] [--model-save FILE]

Each benchmark is a function in BENCHMARKS returning a `Benchmark` (rows of figures and notes); the runner times
nothing itself and asserts nothing: it records. API calls are counted on the wire, by a botocore `before-send` hook
on the clients the code under test is handed (every request sent, SDK retries included). Times are this machine's
wall clock on moto, which runs in process: they compare runs with each other, they do not predict AWS. The
burst-model benchmark (scripts/benchmarks/model) is the exception: a discrete-event model of the deployed stack
under AWS's quotas, fed with durations measured here and checked against the emulator on the same burst.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.accounts import accounts_sync
from benchmarks.common import Benchmark
from benchmarks.cost import cost_model
from benchmarks.digest import digest_grouping
from benchmarks.model.report import burst_model
from benchmarks.parsing import parse_bombs, triage_cost
from benchmarks.pipeline import pipeline_burst
from benchmarks.report import cell, render_markdown, update_readme
from benchmarks.rules import classification, crafted_patterns, rules_preview

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "build" / "bench"

BENCHMARKS: dict[str, Callable[[argparse.Namespace], Benchmark | list[Benchmark]]] = {
    "triage-cost": triage_cost,
    "parse-bombs": parse_bombs,
    "classification": classification,
    "crafted-patterns": crafted_patterns,
    "rules-preview": rules_preview,
    "digest": digest_grouping,
    "accounts-sync": accounts_sync,
    "pipeline-burst": pipeline_burst,
    "cost-model": cost_model,
    "burst-model": burst_model,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=sorted(BENCHMARKS), help="run only these")
    parser.add_argument(
        "--accounts", type=int, default=5_000, help="accounts-sync: accounts per organisation (default 5,000)"
    )
    parser.add_argument(
        "--organizations", type=int, default=3, help="accounts-sync: organisations synced at once (default 3)"
    )
    parser.add_argument(
        "--mails", type=int, default=100_000, help="stored mails for rules-preview (default 100,000)"
    )
    parser.add_argument("--burst", type=int, default=2_000, help="mails for pipeline-burst (default 2,000)")
    parser.add_argument(
        "--corpus", type=int, default=10_000, help="mails for triage-cost and classification (default 10,000)"
    )
    parser.add_argument("--queued", type=int, default=50_000, help="queued mails for digest (default 50,000)")
    parser.add_argument(
        "--per-kind",
        type=int,
        default=0,
        metavar="N",
        help="cost-model: the first N corpus mails of each kind (0: all)",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of each side-by-side timing (default 3)"
    )
    parser.add_argument(
        "--bomb-size",
        type=int,
        default=40 * 1024 * 1024,
        metavar="BYTES",
        help="size of each hostile mail for parse-bombs (default SES's 40 MB)",
    )
    parser.add_argument(
        "--model-check",
        type=int,
        default=500,
        metavar="N",
        help="burst-model: mails of the emulator burst the model is checked against (default 500; 0: no check)",
    )
    parser.add_argument(
        "--model-measured",
        type=Path,
        metavar="FILE",
        help="burst-model: read the durations and profiles from FILE (one --model-save wrote) "
        "instead of measuring them on the emulator (no check then)",
    )
    parser.add_argument(
        "--model-save", type=Path, metavar="FILE", help="burst-model: write the measurement it used to FILE"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR")
    parser.add_argument(
        "--readme", type=Path, metavar="FILE", help="replace the table between the bench markers in FILE"
    )
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "functions"))
    results = []
    started = time.perf_counter()
    for name in args.only or list(BENCHMARKS):
        print(f"==> {name}", file=sys.stderr, flush=True)
        produced = BENCHMARKS[name](args)
        for bench in produced if isinstance(produced, list) else [produced]:
            results.append(bench)
            for row in bench.rows:
                print("    " + ", ".join(f"{k} {cell(v)}" for k, v in row.items() if not isinstance(v, dict)))
    meta = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPU(s), "
        f"{platform.system()} {platform.machine()}",
    }
    meta["minutes"] = round((time.perf_counter() - started) / 60, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(
        json.dumps({**meta, "benchmarks": [asdict(b) for b in results]}, indent=2) + "\n", encoding="utf-8"
    )
    (args.out / "report.md").write_text(render_markdown(results, meta), encoding="utf-8")
    print(f"report: {args.out / 'report.md'} and report.json", file=sys.stderr)
    if args.readme:
        update_readme(args.readme, results, meta)
        print(f"the table in {args.readme} shows this run", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
