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
from rootmail.adapters.tables import Ledger, stamp
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


def audit(
    rt: Runtime,
    *,
    now: datetime | None = None,
    grace: timedelta,
    stuck_after: timedelta,
    lookback: timedelta | None = None,
) -> Audit:
    """Stored mail against the ledger. Mail in flight for longer than `stuck_after` (read from the ledger's state
    index), and mail stored in the last `lookback` (None: ever) but more than `grace` ago (it may still be on its
    way) that has no ledger record. Only the window's records are read, by key: the hourly run stays small as the
    ledger grows; `rootmail audit --all` checks every stored mail."""
    now = now or datetime.now(UTC)
    report = Audit(stamp(now))
    for record in rt.ledger.in_state(Ledger.IN_FLIGHT):
        updated = str(record.get("updated_at") or "")
        if updated < stamp(now - stuck_after) and record.get("object_key"):
            key, bucket = str(record["object_key"]), str(record.get("bucket") or rt.mail_store.bucket)
            report.findings.append(Finding(str(record["mail_id"]), key, bucket, STUCK, updated))
    oldest = next(rt.ledger.in_state("queued", oldest_first=True), None)
    if oldest is not None:
        report.oldest_queued = str(oldest.get("received_at") or oldest.get("updated_at"))
    since = stamp(now - lookback) if lookback is not None else ""
    settled = stamp(now - grace)
    candidates = [
        (key, stored_at)
        for key, stored_at in rt.mail_store.list()
        if since <= stored_at and mail_id_for(key) != SES_SETUP_NOTIFICATION
    ]
    records = rt.ledger.get_many([mail_id_for(key) for key, _ in candidates], fields=Ledger.OVERVIEW)
    for key, stored_at in candidates:
        report.stored += 1
        found = records.get(mail_id_for(key))
        if found is None:
            report.states["none"] += 1
            if stored_at < settled:
                report.findings.append(
                    Finding(mail_id_for(key), key, rt.mail_store.bucket, NOT_TRIAGED, stored_at)
                )
            continue
        report.states[str(found.get("state"))] += 1
    return report


def redrive(rt: Runtime, findings: Iterable[Finding], *, run: str) -> list[str]:
    """Start the triage of each finding again. A mail never triaged gets the execution its S3 event would have
    started (a late event then finds it there), or, if that one exists and has ended (it failed before Parse
    could open a record), one named for this run; a mail that stopped half-way gets one named for this run.
    Every delivery is guarded by its key, so a re-run delivers nothing twice."""
    started = []
    for finding in findings:
        names = [execution_name(finding.key, run)]
        if finding.problem == NOT_TRIAGED:
            names.insert(0, execution_name(finding.key))
        for name in names:
            payload = {
                "bucket": finding.bucket,
                "key": finding.key,
                "mail_id": finding.mail_id,
                "execution": name,
            }
            if rt.starter.start(name, payload):
                started.append(name)
                break
            if rt.starter.status(name) == "RUNNING":
                break  # on its way after all
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
    cutoff = stamp((now or datetime.now(UTC)) - timedelta(days=days))
    return [key for key, stored_at in rt.mail_store.list() if stored_at >= cutoff]


def reconcile(rt: Runtime, *, now: datetime | None = None) -> dict[str, Any]:
    """The hourly check: audit, then re-drive what it found."""
    now = now or datetime.now(UTC)
    report = audit(
        rt,
        now=now,
        grace=timedelta(minutes=rt.settings.reconcile_grace_minutes),
        stuck_after=timedelta(minutes=rt.settings.reconcile_stuck_minutes),
        lookback=timedelta(hours=rt.settings.reconcile_lookback_hours),
    )
    run = f"reconcile-{now.strftime('%Y%m%dT%H')}"
    started = redrive(rt, report.findings, run=run)
    return {**report.to_dict(), "redriven": started, "run": run}
