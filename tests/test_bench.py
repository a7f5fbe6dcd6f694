"""`make bench` runs scripts/bench.py: it must produce its two reports with the figures issue 3 asks for."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_bench(out, *args: str) -> dict:
    """Run `scripts/bench.py ARGS --out OUT` as `make bench` does; its JSON report."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench.py"), *args, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def test_the_bench_reports_api_calls_items_written_and_time_for_both_runs(tmp_path):
    report = run_bench(tmp_path, "--only", "accounts-sync", "--accounts", "150")
    (bench,) = report["benchmarks"]
    assert bench["name"] == "accounts-sync" and bench["parameters"]["accounts"] == 150
    first, second = bench["rows"]
    assert (first["accounts"], first["items_written"], first["added"]) == (151, 151, 151)
    assert (second["items_written"], second["changed"]) == (0, 0)
    assert first["requests_by_operation"]["organizations:ListTagsForResource"] == 151
    assert second["requests"] < first["requests"] / 5
    assert all(isinstance(row["seconds"], float) for row in bench["rows"])  # recorded, never judged
    markdown = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "| first | 151 |" in markdown and "| second, no change | 151 |" in markdown


def test_the_bench_reports_the_rules_preview_next_to_parsing_the_same_mails(tmp_path):
    report = run_bench(tmp_path, "--only", "rules-preview", "--mails", "450")
    (bench,) = report["benchmarks"]
    assert bench["name"] == "rules-preview" and bench["parameters"] == {"mails": 450, "rules": 318}
    parse, full, decide = bench["rows"]
    assert parse["ratio_to_parse"] == 1.0 and all(row["mails"] == 450 for row in bench["rows"])
    assert full["mails_per_second"] > 0 and decide["mails_per_second"] > 0  # recorded, never judged
    assert "450 mails previewed" in bench["notes"][0]
    assert "| preview (parse + decide with both rule sets) | 450 |" in (tmp_path / "report.md").read_text()


def test_the_burst_reports_every_mail_terminal_with_throughput_and_the_slowest(tmp_path):
    report = run_bench(tmp_path, "--only", "pipeline-burst", "--burst", "20")
    (bench,) = report["benchmarks"]
    (row,) = bench["rows"]
    assert (row["mails"], row["executions"], row["all_terminal"]) == (20, 20, True)
    assert row["slowest_mail_seconds"] >= row["median_mail_seconds"] > 0
    assert sum(row["states"].values()) == 20 and "missing" not in row["states"]
