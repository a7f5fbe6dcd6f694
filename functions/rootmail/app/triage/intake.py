"""From a stored mail to its decision: start its execution, parse it, resolve its accounts (refreshing them
once when its root address is unknown), classify it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from rootmail.app.accounts_sync import deadline_for, options_from_settings, sync_accounts
from rootmail.app.payloads import (
    Classification,
    MailSummary,
    RefreshOutcome,
    TriageState,
)
from rootmail.app.ports import Services
from rootmail.domain.authenticity import assess
from rootmail.domain.executions import SES_SETUP_NOTIFICATION, execution_name, mail_id_for
from rootmail.domain.mail.model import ParsedMail, fit
from rootmail.domain.mail.parse import parse_mail
from rootmail.domain.outcome import copy_takes_over
from rootmail.domain.routing import resolve
from rootmail.domain.triage import decide
from rootmail.domain.vocabulary import IN_FLIGHT
from rootmail.observability import logger

# Step Functions refuses a state over 256 KB (and that error cannot be caught): every step's output is bounded
# (tests/test_state_limits.py adds the bounds up).
MAX_REASONS = 10
MAX_REASON_BYTES = 320


def start_triage(objects: Iterable[tuple[str, str]], rt: Services) -> dict[str, Any]:
    """Start one execution per stored mail; a duplicate event finds its execution already there."""
    started: list[str] = []
    duplicates: list[str] = []
    skipped: list[str] = []
    for bucket, key in objects:
        if mail_id_for(key) == SES_SETUP_NOTIFICATION:
            skipped.append(key)
            continue
        name = execution_name(key)
        payload = {"bucket": bucket, "key": key, "mail_id": mail_id_for(key), "execution": name}
        (started if rt.starter.start(name, payload) else duplicates).append(name)
    result = {"started": started, "duplicates": duplicates, "skipped": skipped}
    logger.info("triage started", extra=result)
    return result


# ---- parse, resolve, classify ---------------------------------------------------------------------------------


def load_mail(rt: Services, key: str) -> tuple[bytes, ParsedMail]:
    raw = rt.mail_store.get(key)
    return raw, parse_mail(raw)


def parse_step(event: TriageState, rt: Services) -> MailSummary:
    _, mail = load_mail(rt, event.key)
    authenticity = assess(mail, rt.settings.aws_sender_domains)
    summary = mail.to_summary()  # bounded: see MAX_SUMMARY_BYTES
    summary["authentic"] = authenticity.authentic
    summary["authenticity_reasons"] = [fit(r, MAX_REASON_BYTES) for r in authenticity.reasons[:MAX_REASONS]]
    identity = mail.identity() if authenticity.authentic else None
    if identity is not None:
        # The same (authentic) mail stored again under another key is recorded, and delivered only through its
        # first copy, unless that copy's triage did not deliver it (queued, quarantined): then this copy does.
        first = rt.guard.first_copy(identity, event.mail_id)
        if first != event.mail_id:
            held = (rt.ledger.get(first) or {}).get("state")
            if copy_takes_over(held) and rt.guard.take_over(identity, first, event.mail_id):
                summary["copy_of"] = first
            else:
                summary["duplicate_of"] = first
                summary["duplicate_state"] = held or IN_FLIGHT
    rt.ledger.open(
        event.mail_id, bucket=event.bucket, key=event.key, execution=event.execution, summary=summary
    )
    return MailSummary.model_validate(summary)


def resolve_step(event: TriageState, rt: Services) -> dict[str, Any]:
    refreshed = event.refresh is not None or event.refresh_error is not None
    resolution = resolve(
        ParsedMail.from_summary(event.summary().fields),
        rt.accounts,
        rt.settings.routing,
        # Once per execution: after RefreshAccounts (or its failure) this state runs again as ResolveAgain.
        may_refresh=not refreshed,
    )
    if refreshed and not resolution.envelope_known:
        resolution = resolution.with_note(_refresh_note(event))
    return resolution.to_dict()


def _refresh_note(event: TriageState) -> str:
    """What the accounts refresh did, for the operators reading why a mail is queued."""
    if event.refresh_error is not None or event.refresh is None:
        failure = event.refresh_error.text() if event.refresh_error else "no outcome"
        return f"the accounts refresh failed ({failure})"
    status, at = event.refresh.status, event.refresh.at
    if status == "refreshed":
        return f"still unknown after refreshing the accounts from Organizations at {at}"
    if status == "recent":
        return f"the accounts were refreshed at {at} (one refresh per window)"
    if status == "in-progress":
        return f"an accounts refresh was still running (since {at})"
    return f"the accounts refresh did not complete: {event.refresh.detail}"


def refresh_step(
    event: TriageState, rt: Services, *, remaining_seconds: float | None = None
) -> RefreshOutcome:
    """RefreshAccounts: the envelope's root address is unknown (an account created since the last sync, in any of
    the organisations). One listing of every organisation per window for the whole pipeline: the first mail claims
    it and syncs the new accounts; a mail that finds it running waits `wait_seconds` (a Wait state) and resolves
    again; one that finds it done resolves again at once. The refresh adds and updates accounts but re-reads no rotating slice of contacts."""
    now = datetime.now(UTC)
    claim = rt.accounts.claim_refresh(now, timedelta(seconds=rt.settings.accounts_refresh_seconds))
    if not claim.claimed:
        if claim.state == "running":
            return RefreshOutcome(
                status="in-progress",
                at=claim.started_at,
                wait_seconds=rt.settings.accounts_refresh_wait_seconds,
            )
        return RefreshOutcome(status="recent", at=claim.finished_at or claim.started_at, wait_seconds=0)
    try:
        report = sync_accounts(
            rt.organizations(),
            rt.accounts,
            options_from_settings(rt.settings, rotate=False),
            now=now,
            deadline=deadline_for(remaining_seconds),
        )
    except Exception as exc:
        rt.accounts.finish_refresh(claim, datetime.now(UTC), {"error": f"{type(exc).__name__}: {exc}"})
        raise
    summary = report.to_dict(limit=10)
    rt.accounts.finish_refresh(claim, datetime.now(UTC), summary)
    logger.info("accounts refreshed for an unknown root address", extra=summary)
    return RefreshOutcome(
        status="refreshed" if report.listing_complete else "incomplete",
        at=claim.started_at,
        detail=report.listing_error or f"{len(report.added)} account(s) added",
        added=len(report.added),
        wait_seconds=0,
    )


def classify_step(event: TriageState, rt: Services) -> Classification:
    _, mail = load_mail(rt, event.key)
    authenticity = assess(mail, rt.settings.aws_sender_domains)
    # A retry an operator asked for runs with the rules as they are now, not as a warm container cached them.
    decision = decide(mail, authenticity, event.resolved(), rt.rules(fresh=event.retry is not None))
    summary = event.summary()
    if summary.duplicate_of:
        decision = decision.as_copy_of(summary.duplicate_of, summary.duplicate_state or IN_FLIGHT)
    logger.info("classified", extra=decision.to_dict())
    return Classification.model_validate(decision.to_dict())
