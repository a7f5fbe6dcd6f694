"""The accounts sync: Organizations → the accounts table, hourly (the `sync` function), on demand
(`rootmail accounts sync`) and for one cache miss in the pipeline (the RefreshAccounts state).

One run: list the organisation, read the table once, read the contacts of the accounts that need it (domain/sync_plan.py
decides which), plan, write only what changed. It never stops half-way on a throttled call: what failed is in the
report (`partial_failure`), and the next run picks it up because the table still differs from Organizations.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rootmail.app.ports import AccountsTable, Organization, Progress, Services, WriteResult
from rootmail.config import Settings
from rootmail.domain.sync_plan import now_text, plan_sync, select_for_details
from rootmail.observability import logger

# Time kept back from a Lambda's remaining time for writing what was read (10,000 items take well under a minute).
WRITE_RESERVE_SECONDS = 120.0


def _no_progress(phase: str, done: int, total: int) -> None:
    return None


@dataclass(frozen=True)
class SyncOptions:
    refresh_hours: int = 24
    budget: int | None = None  # accounts whose contacts are read this run at most; None: all that need it
    rotate: bool = True  # also re-read this hour's slice of the known accounts
    forced: tuple[str, ...] = ()  # accounts whose contacts are re-read this run whatever the slice
    dry_run: bool = False


@dataclass
class SyncReport:
    started_at: str
    dry_run: bool = False
    listing_complete: bool = False
    listing_error: str | None = None
    pages: int = 0
    listed: int = 0
    added: list[str] = field(default_factory=list)
    changed: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)  # (account, fields that changed)
    deactivated: list[str] = field(default_factory=list)
    reactivated: list[str] = field(default_factory=list)
    unchanged: int = 0
    details_read: int = 0
    details_failed: dict[str, str] = field(default_factory=dict)
    details_skipped: list[str] = field(default_factory=list)  # the run's time was up
    details_deferred: list[str] = field(default_factory=list)  # over the run's budget
    detail_problems: int = 0  # tags with invalid addresses or unknown languages
    api_calls: Counter[str] = field(default_factory=Counter)
    sdk_retries: int = 0
    items_to_write: int = 0
    items_written: int = 0
    write_failed: list[str] = field(default_factory=list)
    write_errors: list[str] = field(default_factory=list)
    duration_seconds: float = 0.0

    @property
    def partial_failure(self) -> bool:
        return bool(
            not self.listing_complete or self.details_failed or self.details_skipped or self.write_failed
        )

    @property
    def changed_ids(self) -> list[str]:
        return [account_id for account_id, _ in self.changed]

    def to_dict(self, limit: int = 50) -> dict[str, Any]:
        """For logs and the Lambda's answer: counts, and at most `limit` IDs of each list."""
        failures = Counter(error.split(":", 1)[0] for error in self.details_failed.values())
        return {
            "started_at": self.started_at,
            "dry_run": self.dry_run,
            "listing_complete": self.listing_complete,
            "listing_error": self.listing_error,
            "pages": self.pages,
            "listed": self.listed,
            "added": len(self.added),
            "changed": len(self.changed),
            "deactivated": len(self.deactivated),
            "reactivated": len(self.reactivated),
            "unchanged": self.unchanged,
            "added_ids": self.added[:limit],
            "changed_ids": [{"account_id": a, "fields": list(f)} for a, f in self.changed[:limit]],
            "deactivated_ids": self.deactivated[:limit],
            "details_read": self.details_read,
            "details_failed": len(self.details_failed),
            "details_failed_by_error": dict(failures),
            "details_failed_ids": list(self.details_failed)[:limit],
            "details_skipped": len(self.details_skipped),
            "details_deferred": len(self.details_deferred),
            "detail_problems": self.detail_problems,
            "api_calls": dict(sorted(self.api_calls.items())),
            "api_calls_total": sum(self.api_calls.values()),
            "sdk_retries": self.sdk_retries,
            "items_to_write": self.items_to_write,
            "items_written": self.items_written,
            "write_failed": len(self.write_failed),
            "write_errors": self.write_errors[:5],
            "duration_seconds": round(self.duration_seconds, 3),
            "partial_failure": self.partial_failure,
        }

    def summary_lines(self) -> list[str]:
        listing = "complete" if self.listing_complete else f"INCOMPLETE ({self.listing_error})"
        calls = ", ".join(f"{op} {n:,}" for op, n in sorted(self.api_calls.items())) or "none"
        lines = [
            f"listing {listing}: {self.listed:,} accounts in {self.pages:,} page(s)",
            f"added {len(self.added):,}, changed {len(self.changed):,}, deactivated {len(self.deactivated):,}, "
            f"unchanged {self.unchanged:,}"
            + (f" (reactivated {len(self.reactivated):,})" if self.reactivated else ""),
            f"contacts read for {self.details_read:,} account(s); failed {len(self.details_failed):,}, "
            f"left for a later run {len(self.details_deferred) + len(self.details_skipped):,}"
            + (f"; {self.detail_problems:,} with tag problems" if self.detail_problems else ""),
            f"API calls {sum(self.api_calls.values()):,} ({calls}); SDK retries {self.sdk_retries:,}",
            (
                f"dry run: {self.items_to_write:,} item(s) would be written"
                if self.dry_run
                else f"items written {self.items_written:,} of {self.items_to_write:,}"
            ),
            f"duration {self.duration_seconds:.1f} s",
        ]
        problems: list[str] = []
        if not self.listing_complete:
            problems.append("the listing did not complete, so no account was deactivated")
        if self.details_failed:
            by_error = Counter(error.split(":", 1)[0] for error in self.details_failed.values())
            problems.append(
                "contacts not read for "
                + ", ".join(f"{n:,} account(s) ({error})" for error, n in by_error.most_common())
            )
        if self.details_skipped:
            problems.append(f"{len(self.details_skipped):,} account(s) not read before the run's time was up")
        if self.write_failed:
            problems.append(
                f"{len(self.write_failed):,} item(s) not written ({'; '.join(self.write_errors[:3])})"
            )
        lines.append("partial failures: " + ("; ".join(problems) if problems else "none"))
        return lines


def sync_accounts(
    organization: Organization,
    table: AccountsTable,
    options: SyncOptions,
    *,
    now: datetime,
    deadline: float | None = None,
    progress: Progress = _no_progress,
    clock: Callable[[], float] = time.monotonic,
) -> SyncReport:
    """One run. `deadline` (a `clock()` value): no new call to Organizations after it, so there is time to write."""
    started = clock()
    report = SyncReport(started_at=now_text(now), dry_run=options.dry_run)
    listing = organization.list_accounts(progress, deadline=deadline)
    report.listing_complete, report.listing_error = listing.complete, listing.error
    report.pages, report.listed = listing.pages, len({a.account_id for a in listing.accounts})
    current = table.load_accounts()
    selection = select_for_details(
        current,
        listing.accounts,
        now=now,
        refresh_hours=options.refresh_hours,
        budget=options.budget,
        rotate=options.rotate,
        forced=options.forced,
    )
    fetched = organization.fetch_details(selection.fetch, deadline=deadline, progress=progress)
    report.details_read = len(fetched.details)
    report.details_failed = dict(fetched.failures)
    report.details_skipped = list(fetched.skipped)
    report.details_deferred = list(selection.deferred)
    report.detail_problems = sum(1 for d in fetched.details.values() if d.problems)
    plan = plan_sync(current, listing.accounts, fetched.details, listing_complete=listing.complete, now=now)
    report.added = [a.account_id for a in plan.added]
    report.changed = [(c.after.account_id, c.fields) for c in plan.changed]
    report.deactivated = [c.after.account_id for c in plan.deactivated]
    report.reactivated = [c.after.account_id for c in plan.reactivated]
    report.unchanged = plan.unchanged
    writes = plan.writes
    report.items_to_write = len(writes)
    result = WriteResult() if options.dry_run or not writes else table.write(list(writes))
    report.items_written = result.written
    report.write_failed = list(result.failed)
    report.write_errors = list(result.errors)
    report.api_calls = Counter(organization.counter.calls)
    if result.requests:
        report.api_calls["BatchWriteItem"] = result.requests
    report.sdk_retries = organization.counter.retries
    report.duration_seconds = clock() - started
    return report


def deadline_for(
    remaining_seconds: float | None, clock: Callable[[], float] = time.monotonic
) -> float | None:
    """The moment to stop reading Organizations in a Lambda with this much time left: what remains minus the time
    kept for writing (at most a quarter of it)."""
    if remaining_seconds is None:
        return None
    return clock() + remaining_seconds - min(WRITE_RESERVE_SECONDS, remaining_seconds / 4)


def options_from_settings(settings: Settings, **overrides: Any) -> SyncOptions:
    budget = settings.sync_detail_budget or None
    values: dict[str, Any] = {"refresh_hours": settings.sync_refresh_hours, "budget": budget}
    values.update(overrides)
    return SyncOptions(**values)


def scheduled_sync(rt: Services, *, remaining_seconds: float | None) -> dict[str, Any]:
    """The hourly run (the `sync` function): rotate through the contacts, write what changed, report."""
    report = sync_accounts(
        rt.organization(),
        rt.accounts,
        options_from_settings(rt.settings),
        now=datetime.now(UTC),
        deadline=deadline_for(remaining_seconds),
    )
    summary = report.to_dict()
    if report.partial_failure:
        logger.warning("accounts sync finished with partial failures", extra=summary)
    else:
        logger.info("accounts sync finished", extra=summary)
    return summary
