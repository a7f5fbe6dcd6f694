"""Nothing lost: every stored mail against the ledger. A mail SES stored whose event never started a triage (S3
event notifications and Lambda's async queue can drop events), or whose execution stopped before it wrote a
terminal state, is found here and re-driven through the state machine. The same check runs hourly (`reconcile`)
and on demand (`rootmail audit`); `rootmail replay` re-runs chosen stored mail."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from rootmail.adapters.executions import execution_name
from rootmail.adapters.tables import Ledger
from rootmail.pipeline import SES_SETUP_NOTIFICATION, mail_id_for
from rootmail.runtime import Runtime

NOT_TRIAGED = "not triaged"
STUCK = "stuck in flight"


@dataclass(frozen=True)
class Finding:
    mail_id: str
    key: str
    bucket: str
    problem: str  # NOT_TRIAGED or STUCK
    since: str

    @property
    def command(self) -> str:
        return f"rootmail replay {self.key}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "mail_id": self.mail_id,
            "key": self.key,
            "problem": self.problem,
            "since": self.since,
            "command": self.command,
        }


@dataclass
class Audit:
    at: str
    stored: int = 0
    states: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    oldest_queued: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "stored": self.stored,
            "states": dict(self.states),
            "findings": [f.to_dict() for f in self.findings],
            "oldest_queued": self.oldest_queued,
        }


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def audit(rt: Runtime, *, now: datetime | None = None, grace: timedelta, stuck_after: timedelta) -> Audit:
    """Every stored mail: a ledger record in a terminal state, or one of the findings. A mail stored less than
    `grace` ago may still be on its way; one in flight for less than `stuck_after` may still be running."""
    now = now or datetime.now(UTC)
    report = Audit(_stamp(now))
    records = {str(r["mail_id"]): r for r in rt.ledger.scan(fields=Ledger.OVERVIEW)}
    for key, stored_at in rt.mail_store.list():
        mail_id = mail_id_for(key)
        if mail_id == SES_SETUP_NOTIFICATION:
            continue
        report.stored += 1
        record = records.get(mail_id)
        if record is None:
            report.states["none"] += 1
            if stored_at < _stamp(now - grace):
                report.findings.append(Finding(mail_id, key, rt.mail_store.bucket, NOT_TRIAGED, stored_at))
            continue
        state = str(record.get("state"))
        report.states[state] += 1
        updated = str(record.get("updated_at") or "")
        if state == Ledger.IN_FLIGHT and updated < _stamp(now - stuck_after):
            report.findings.append(Finding(mail_id, key, rt.mail_store.bucket, STUCK, updated))
        if state == "queued":
            received = str(record.get("received_at") or updated)
            if report.oldest_queued is None or received < report.oldest_queued:
                report.oldest_queued = received
    return report


def redrive(rt: Runtime, findings: Iterable[Finding], *, run: str) -> list[str]:
    """Start the triage of each finding again. A mail never triaged gets the execution its S3 event would have
    started (a late event then finds it there); one that stopped half-way gets a new execution named for this run.
    Every delivery is guarded by its key, so a re-run delivers nothing twice."""
    started = []
    for finding in findings:
        name = (
            execution_name(finding.key)
            if finding.problem == NOT_TRIAGED
            else execution_name(finding.key, run)
        )
        payload = {
            "bucket": finding.bucket,
            "key": finding.key,
            "mail_id": finding.mail_id,
            "execution": name,
        }
        if rt.starter.start(name, payload):
            started.append(name)
    return started


def replay(rt: Runtime, keys: Iterable[str], *, run: str) -> list[str]:
    """Re-run stored mail through the state machine, under names of this run (idempotent: the same run started
    again is a no-op, and deliveries already made are not made again)."""
    started = []
    for key in keys:
        name = execution_name(key, run)
        payload = {"bucket": rt.mail_store.bucket, "key": key, "mail_id": mail_id_for(key), "execution": name}
        if rt.starter.start(name, payload):
            started.append(name)
    return started


def stored_since(rt: Runtime, days: float, *, now: datetime | None = None) -> list[str]:
    cutoff = _stamp((now or datetime.now(UTC)) - timedelta(days=days))
    return [key for key, stored_at in rt.mail_store.list() if stored_at >= cutoff]


def reconcile(rt: Runtime, *, now: datetime | None = None) -> dict[str, Any]:
    """The hourly check: audit, then re-drive what it found."""
    now = now or datetime.now(UTC)
    report = audit(
        rt,
        now=now,
        grace=timedelta(minutes=rt.settings.reconcile_grace_minutes),
        stuck_after=timedelta(minutes=rt.settings.reconcile_stuck_minutes),
    )
    run = f"reconcile-{now.strftime('%Y%m%dT%H')}"
    started = redrive(rt, report.findings, run=run)
    return {**report.to_dict(), "redriven": started, "run": run}
