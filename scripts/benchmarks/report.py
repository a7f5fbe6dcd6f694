"""The report: markdown and JSON, and the table between the bench markers of a README."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.common import Benchmark

# ---- report ---------------------------------------------------------------------------------------------------


def summary_table(benchmarks: list[Benchmark]) -> list[str]:
    lines = ["| benchmark | measured | target or reference |", "|---|---|---|"]
    for bench in benchmarks:
        lines += [f"| {what} | {measured} | {target} |" for what, measured, target in bench.summary]
    return lines


def render_markdown(benchmarks: list[Benchmark], meta: dict[str, Any]) -> str:
    lines = [
        "# rootmail benchmarks",
        "",
        f"Generated {meta['generated_at']} on {meta['machine']}, in {meta['minutes']} min.",
        "",
    ]
    lines += [*summary_table(benchmarks), ""]
    for bench in benchmarks:
        lines += [f"## {bench.name}", "", bench.description, ""]
        columns = list(
            dict.fromkeys(k for row in bench.rows for k, v in row.items() if not isinstance(v, dict))
        )
        lines.append("| " + " | ".join(columns) + " |")
        lines.append("|" + "---|" * len(columns))
        for row in bench.rows:
            lines.append("| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |")
        lines.append("")
        for row in bench.rows:
            for key, value in row.items():
                if isinstance(value, dict):
                    detail = ", ".join(f"{k} {cell(v)}" for k, v in value.items())
                    label = " · ".join(str(row[k]) for k in ("run", "organization", "path") if row.get(k))
                    lines.append(f"- {label} — {key.replace('_', ' ')}: {detail}")
        lines += [*(f"- {note}" for note in bench.notes), ""]
    return "\n".join(lines)


README_BEGIN = "<!-- bench:begin (scripts/bench.py --readme writes what follows) -->"
README_END = "<!-- bench:end -->"


def update_readme(path: Path, benchmarks: list[Benchmark], meta: dict[str, Any]) -> None:
    text = path.read_text(encoding="utf-8")
    begin, end = text.find(README_BEGIN), text.find(README_END)
    if begin < 0 or end < begin:
        raise SystemExit(f"{path}: no {README_BEGIN} ... {README_END} block to replace")
    table = [
        f"The last run: {meta['generated_at'][:10]}, {meta['machine']}, {meta['minutes']} min (moto in process).",
        "",
        *summary_table(benchmarks),
    ]
    path.write_text(
        text[: begin + len(README_BEGIN)] + "\n" + "\n".join(table) + "\n" + text[end:], encoding="utf-8"
    )


def cell(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
