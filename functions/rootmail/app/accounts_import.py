"""`rootmail accounts import FILE`: accounts in no synced organisation, put into the accounts table marked as
imported (the sync never deactivates them). The whole file is checked first; nothing is written unless every row is
valid, or the operator asked for the valid rows alone (`partial`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rootmail.app.ports import AccountsTable
from rootmail.domain.imports import Problem, parse_rows, plan_import, read_rows


@dataclass
class ImportReport:
    rows: int = 0
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    problems: list[Problem] = field(default_factory=list)
    written: int = 0
    write_failed: list[str] = field(default_factory=list)
    dry_run: bool = False
    partial: bool = False

    @property
    def refused(self) -> bool:
        """Problems and no `partial`: the file was not applied."""
        return bool(self.problems) and not self.partial

    @property
    def ok(self) -> bool:
        return not self.problems and not self.write_failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "problems": [{"line": p.line, "problem": p.message} for p in self.problems],
            "written": self.written,
            "write_failed": self.write_failed,
            "dry_run": self.dry_run,
            "applied": not self.refused and not self.dry_run,
        }


def import_accounts(
    table: AccountsTable, text: str, *, json_format: bool, partial: bool = False, dry_run: bool = False
) -> ImportReport:
    report = ImportReport(dry_run=dry_run, partial=partial)
    raw, unreadable = read_rows(text, json_format=json_format)
    rows, invalid = parse_rows(raw)
    plan, conflicts = plan_import(rows, table.load_accounts())
    report.rows = len(raw)
    report.problems = sorted([*unreadable, *invalid, *conflicts], key=lambda p: p.line)
    report.added = [a.account_id for a in plan.added]
    report.updated = [a.account_id for a in plan.updated]
    report.unchanged = plan.unchanged
    if report.refused or dry_run or not plan.writes:
        return report
    result = table.write(list(plan.writes))
    report.written = result.written
    report.write_failed = list(result.failed)
    return report
