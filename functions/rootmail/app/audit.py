"""Nothing lost: every stored mail against the ledger. A mail SES stored whose event never started a triage (S3
event notifications and Lambda's async queue can drop events), or whose execution stopped before it wrote a
terminal state, is found here and re-driven through the state machine. The same check runs hourly (`reconcile`)
and on demand (`rootmail audit`); `rootmail replay` re-runs chosen stored mail.

Some executions end in a way no Catch handles (a state's output over Step Functions' 256 KB, a Lambda timing out or
running out of memory before Parse opened the record), and would end that way however often they were re-driven.
So the re-drives of each mail are counted in the ledger, and a mail re-driven `reconcile_max_attempts` times that
is still not terminal is queued for the operators, with why, instead of being re-driven for ever."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from rootmail.app.ports import LEDGER_OVERVIEW, Services
from rootmail.domain.executions import SES_SETUP_NOTIFICATION, execution_name, mail_id_for
from rootmail.domain.moments import stamp
from rootmail.domain.vocabulary import IN_FLIGHT
from rootmail.errors import TriageNotStarted
from rootmail.observability import logger

NOT_TRIAGED = "not triaged"
STUCK = "stuck in flight"
GIVEN_UP = "given up"
# How the queue reason of a mail the reconciler stopped re-driving begins: the audit finds such mail by it.
GIVEN_UP_REASON = "given up after "


@dataclass(frozen=True)
class Finding:
    mail_id: str
    key: str
    bucket: str
    problem: str  # NOT_TRIAGED, STUCK or GIVEN_UP
    since: str
    redrives: int = 0  # by the reconciler, so far
    last_redrive: str | None = None  # the execution it started last
    reason: str | None = None  # GIVEN_UP: the queue reason

    @property
    def command(self) -> str:
        return f"rootmail replay {self.key}"

    def to_dict(self) -> dict[str, Any]:
        found = {
            "mail_id": self.mail_id,
            "key": self.key,
            "problem": self.problem,
            "since": self.since,
            "command": self.command,
            "redrives": self.redrives,
        }
        return {**found, "reason": self.reason} if self.reason else found

    @classmethod
    def of(cls, record: dict[str, Any], key: str, bucket: str, problem: str, since: str) -> Finding:
        return cls(
            str(record.get("mail_id") or mail_id_for(key)),
            key,
            bucket,
            problem,
            since,
            redrives=int(record.get("redrives") or 0),
            last_redrive=str(record["last_redrive"]) if record.get("last_redrive") else None,
            reason=str(record["queue_reason"]) if problem == GIVEN_UP else None,
        )


@dataclass
class Audit:
    at: str
    stored: int = 0
    states: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    # Queued by the reconciler after its re-drives (among the stored mail the audit read): for the operators.
    given_up: list[Finding] = field(default_factory=list)
    oldest_queued: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "stored": self.stored,
            "states": dict(self.states),
            "findings": [f.to_dict() for f in self.findings],
            "given_up": [f.to_dict() for f in self.given_up],
            "oldest_queued": self.oldest_queued,
        }


@dataclass
class Redriven:
    started: list[str] = field(default_factory=list)  # executions
    given_up: list[Finding] = field(default_factory=list)  # queued instead of re-driven again


def audit(
    rt: Services,
    *,
    now: datetime | None = None,
    grace: timedelta,
    stuck_after: timedelta,
    lookback: timedelta | None = None,
) -> Audit:
    """Stored mail against the ledger. Mail in flight for longer than `stuck_after` (read from the ledger's state
    index), and mail stored in the last `lookback` (None: ever) but more than `grace` ago (it may still be on its
    way) that has no ledger record (or only its re-drive count). Only the window's records are read, by key: the
    hourly run stays small as the ledger grows; `rootmail audit --all` checks every stored mail. Among the window's
    records, the mail the reconciler gave up on (queued with why) is listed apart, for the operators."""
    now = now or datetime.now(UTC)
    report = Audit(stamp(now))
    for record in rt.ledger.in_state(IN_FLIGHT):
        updated = str(record.get("updated_at") or "")
        if updated < stamp(now - stuck_after) and record.get("object_key"):
            key, bucket = str(record["object_key"]), str(record.get("bucket") or rt.mail_store.bucket)
            report.findings.append(Finding.of(record, key, bucket, STUCK, updated))
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
    records = rt.ledger.get_many([mail_id_for(key) for key, _ in candidates], fields=LEDGER_OVERVIEW)
    bucket = rt.mail_store.bucket
    for key, stored_at in candidates:
        report.stored += 1
        found = records.get(mail_id_for(key)) or {}
        state = found.get("state")
        if not state:  # no record, or only the one that counts its re-drives
            report.states["none"] += 1
            if stored_at < settled:
                report.findings.append(Finding.of(found, key, bucket, NOT_TRIAGED, stored_at))
            continue
        report.states[str(state)] += 1
        if state == "queued" and str(found.get("queue_reason") or "").startswith(GIVEN_UP_REASON):
            report.given_up.append(Finding.of(found, key, bucket, GIVEN_UP, str(found.get("updated_at"))))
    return report


def redrive(rt: Services, findings: Iterable[Finding], *, run: str, max_attempts: int) -> Redriven:
    """Start the triage of each finding again. A mail never triaged gets the execution its S3 event would have
    started (a late event then finds it there), or, if that one exists and has ended (it failed before Parse
    could open a record), one named for this run; a mail that stopped half-way gets one named for this run.
    Every delivery is guarded by its key, so a re-run delivers nothing twice. Each re-drive is counted in the
    ledger; a mail re-driven `max_attempts` times already is queued for the operators instead."""
    result = Redriven()
    for finding in findings:
        if finding.redrives >= max_attempts:
            given_up = _give_up(rt, finding)
            if given_up is not None:
                result.given_up.append(given_up)
            continue
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
                result.started.append(name)
                rt.ledger.count_redrive(
                    finding.mail_id,
                    execution=name,
                    bucket=finding.bucket,
                    key=finding.key,
                    received_at=finding.since,
                )
                break
            if rt.starter.status(name) == "RUNNING":
                break  # on its way after all
    return result


def _give_up(rt: Services, finding: Finding) -> Finding | None:
    """Queue the mail with why: how often it was re-driven and how its last execution ended. None when it reached
    a terminal state meanwhile (nothing written)."""
    count = finding.redrives
    last = _last_execution(rt, finding.last_redrive)
    reason = f"{GIVEN_UP_REASON}{count} re-drive{'' if count == 1 else 's'}: {last}"[:1000]
    if not rt.ledger.give_up(finding.mail_id, reason=reason, bucket=finding.bucket, key=finding.key):
        return None
    return replace(finding, problem=GIVEN_UP, since=stamp(datetime.now(UTC)), reason=reason)


def _last_execution(rt: Services, name: str | None) -> str:
    """How the last re-drive's execution ended, as Step Functions tells it (`States.DataLimitExceeded`, a Lambda's
    error), for the operators reading the queue."""
    if not name:
        return "its last execution is not known"
    try:
        ended = rt.starter.outcome(name)
    except TriageNotStarted:
        return f"its last execution, {name}, could not be read"
    text = f"its last execution, {name}, {ended.get('status', 'ended')}"
    if ended.get("error"):
        text += f": {ended['error']}"
    cause = ended.get("cause", "")
    # A Lambda's error comes as its JSON (errorMessage, errorType, stackTrace): its message says enough.
    with suppress(ValueError, AttributeError):
        cause = str(json.loads(cause).get("errorMessage") or cause)
    return f"{text}: {cause}" if cause else text


def replay(rt: Services, keys: Iterable[str], *, run: str) -> list[str]:
    """Re-run stored mail through the state machine, under names of this run (idempotent: the same run started
    again is a no-op, and deliveries already made are not made again)."""
    started = []
    for key in keys:
        name = execution_name(key, run)
        payload = {"bucket": rt.mail_store.bucket, "key": key, "mail_id": mail_id_for(key), "execution": name}
        if rt.starter.start(name, payload):
            started.append(name)
    return started


def stored_since(rt: Services, days: float, *, now: datetime | None = None) -> list[str]:
    cutoff = stamp((now or datetime.now(UTC)) - timedelta(days=days))
    return [key for key, stored_at in rt.mail_store.list() if stored_at >= cutoff]


def reconcile(rt: Services, *, now: datetime | None = None) -> dict[str, Any]:
    """The hourly check: audit, then re-drive what it found (or queue what was re-driven often enough)."""
    now = now or datetime.now(UTC)
    report = audit(
        rt,
        now=now,
        grace=timedelta(minutes=rt.settings.reconcile_grace_minutes),
        stuck_after=timedelta(minutes=rt.settings.reconcile_stuck_minutes),
        lookback=timedelta(hours=rt.settings.reconcile_lookback_hours),
    )
    run = f"reconcile-{now.strftime('%Y%m%dT%H')}"
    redriven = redrive(rt, report.findings, run=run, max_attempts=rt.settings.reconcile_max_attempts)
    _watch(rt, report, redriven, now)
    # `given_up`: the mail this run queued (the audit's own list, of mail queued by earlier runs, is for people).
    return {
        **report.to_dict(),
        "redriven": redriven.started,
        "given_up": [f.to_dict() for f in redriven.given_up],
        "run": run,
    }


def hourly_reconcile(rt: Services) -> dict[str, Any]:
    """The scheduled run: reconcile, log what it did, and answer with counts and IDs only (a list of every
    finding could outgrow what a Lambda may return, after the work was done)."""
    result = reconcile(rt)
    summary = {k: v for k, v in result.items() if k != "findings"}
    summary["given_up"] = [g["mail_id"] for g in result["given_up"]]
    logger.info("reconciled", extra=summary)
    return {**summary, "findings": len(result["findings"])}


def _watch(rt: Services, report: Audit, redriven: Redriven, now: datetime) -> None:
    """What the alarms watch: mail found unprocessed (re-driven now), mail re-driven often enough and queued
    instead (its executions fail in a way no Catch handles), and how long the oldest queued mail waits."""
    problems = [f.problem for f in report.findings]
    waiting = 0.0
    if report.oldest_queued:
        waiting = (now - datetime.fromisoformat(report.oldest_queued.replace("Z", "+00:00"))).total_seconds()
    rt.metrics.put("MailNotTriaged", problems.count(NOT_TRIAGED))
    rt.metrics.put("MailStuckInFlight", problems.count(STUCK))
    rt.metrics.put("MailGivenUp", len(redriven.given_up))
    rt.metrics.put("OldestQueuedMailAge", round(waiting), "Seconds")
    for given_up in redriven.given_up:
        logger.warning(
            "mail given up",
            extra={
                "mail_id": given_up.mail_id,
                "key": given_up.key,
                "redrives": given_up.redrives,
                "queue_reason": given_up.reason,
            },
        )
