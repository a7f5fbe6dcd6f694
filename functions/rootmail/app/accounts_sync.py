"""The accounts sync: every organisation the provider runs → the accounts table, hourly (the `sync` function), on
demand (`rootmail accounts sync`) and for one cache miss in the pipeline (the RefreshAccounts state).

One run: list every organisation (in parallel, each through its own management account's role), read the table
once, read the contacts of the accounts that need it, each through the organisation that lists it
(domain/sync_plan.py decides which), plan, write only what changed. It never stops half-way on a throttled call or an
organisation that cannot be reached: what failed is in the report, per organisation (`partial_failure`), nothing is
deactivated while any listing is incomplete, and the next run picks it up because the table still differs.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from rootmail.app.ports import (
    AccountsTable,
    DetailsResult,
    Listing,
    ManagedOrganization,
    Organization,
    Progress,
    Services,
    WriteResult,
)
from rootmail.config import Settings
from rootmail.domain.accounts import IMPORTED
from rootmail.domain.sync_plan import ListedAccount, SyncPlan, now_text, plan_sync, select_for_details
from rootmail.errors import RootmailError
from rootmail.observability import logger

# Time kept back from a Lambda's remaining time for writing what was read (10,000 items take well under a minute).
WRITE_RESERVE_SECONDS = 120.0
# Organisations listed at once: each has its own API quotas, so they do not slow one another.
MAX_PARALLEL_ORGANIZATIONS = 8


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
class OrganizationReport:
    """What one organisation's part of the run did."""

    name: str
    listing_complete: bool = False
    listing_error: str | None = None
    pages: int = 0
    listed: int = 0
    added: int = 0
    changed: int = 0
    moved_in: int = 0
    deactivated: int = 0
    details_read: int = 0
    details_failed: int = 0
    api_calls: Counter[str] = field(default_factory=Counter)
    sdk_retries: int = 0
    items_to_write: int = 0
    items_written: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "listing_complete": self.listing_complete,
            "listing_error": self.listing_error,
            "pages": self.pages,
            "listed": self.listed,
            "added": self.added,
            "changed": self.changed,
            "moved_in": self.moved_in,
            "deactivated": self.deactivated,
            "details_read": self.details_read,
            "details_failed": self.details_failed,
            "api_calls": dict(sorted(self.api_calls.items())),
            "api_calls_total": sum(self.api_calls.values()),
            "sdk_retries": self.sdk_retries,
            "items_to_write": self.items_to_write,
            "items_written": self.items_written,
        }

    def summary_line(self) -> str:
        listing = "complete" if self.listing_complete else f"INCOMPLETE ({self.listing_error})"
        return (
            f"{self.name}: listing {listing}, {self.listed:,} accounts in {self.pages:,} page(s); "
            f"added {self.added:,}, changed {self.changed:,} (moved in {self.moved_in:,}), "
            f"deactivated {self.deactivated:,}; contacts read {self.details_read:,}, failed {self.details_failed:,}; "
            f"API calls {sum(self.api_calls.values()):,}; items written {self.items_written:,}"
        )


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
    # (account, from, to): listed by another organisation than the one it was recorded in (or than imported)
    moved: list[tuple[str, str, str]] = field(default_factory=list)
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
    organizations: dict[str, OrganizationReport] = field(default_factory=dict)
    # Accounts recorded in organisations this run did not sync (renamed or removed from the configuration, or a run
    # over some of them): left as they are, never deactivated for it.
    unconfigured: dict[str, int] = field(default_factory=dict)

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
            "moved": len(self.moved),
            "moved_ids": [{"account_id": a, "from": f, "to": t} for a, f, t in self.moved[:limit]],
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
            "organizations": {name: o.to_dict() for name, o in self.organizations.items()},
            "unconfigured": dict(self.unconfigured),
        }

    def summary_lines(self) -> list[str]:
        listing = "complete" if self.listing_complete else f"INCOMPLETE ({self.listing_error})"
        calls = ", ".join(f"{op} {n:,}" for op, n in sorted(self.api_calls.items())) or "none"
        lines = [
            f"listing {listing}: {self.listed:,} accounts in {self.pages:,} page(s)"
            + (f" from {len(self.organizations)} organisations" if len(self.organizations) > 1 else ""),
            f"added {len(self.added):,}, changed {len(self.changed):,}, deactivated {len(self.deactivated):,}, "
            f"unchanged {self.unchanged:,}"
            + (f" (reactivated {len(self.reactivated):,})" if self.reactivated else "")
            + (f"; moved between organisations {len(self.moved):,}" if self.moved else ""),
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
        lines += [f"organization {o.summary_line()}" for o in self.organizations.values()]
        problems: list[str] = []
        if not self.listing_complete:
            failed = [name for name, o in self.organizations.items() if not o.listing_complete]
            problems.append(
                f"the listing of {', '.join(failed) or 'the organisation'} did not complete, "
                "so no account was deactivated"
            )
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
        if self.unconfigured:
            lines.append(
                "warning: active accounts of organisations this run does not sync, left as they are: "
                + ", ".join(f"{name} ({n:,})" for name, n in sorted(self.unconfigured.items()))
                + " (removed from the configuration? import them, or sync with it)"
            )
        return lines


def sync_accounts(
    organizations: Sequence[ManagedOrganization],
    table: AccountsTable,
    options: SyncOptions,
    *,
    now: datetime,
    deadline: float | None = None,
    progress: Progress = _no_progress,
    clock: Callable[[], float] = time.monotonic,
) -> SyncReport:
    """One run over every organisation. `deadline` (a `clock()` value): no new call to Organizations after it, so
    there is time to write."""
    started = clock()
    report = SyncReport(started_at=now_text(now), dry_run=options.dry_run)
    parts = _list_all(organizations, progress, deadline)
    listed = [replace(a, organization=p.name) for p in parts for a in p.listing.accounts]
    report.listing_complete = all(p.listing.complete for p in parts) and bool(parts)
    errors = [f"{p.name}: {p.listing.error}" for p in parts if p.listing.error]
    report.listing_error = "; ".join(errors) or (None if parts else "no organisation is configured")
    report.pages = sum(p.listing.pages for p in parts)
    report.listed = len({a.account_id for a in listed})
    current = table.load_accounts()
    selection = select_for_details(
        current,
        listed,
        now=now,
        refresh_hours=options.refresh_hours,
        budget=options.budget,
        rotate=options.rotate,
        forced=options.forced,
    )
    fetched = _fetch_all(parts, selection.fetch, deadline, progress)
    report.details_read = len(fetched.details)
    report.details_failed = dict(fetched.failures)
    report.details_skipped = list(fetched.skipped)
    report.details_deferred = list(selection.deferred)
    report.detail_problems = sum(1 for d in fetched.details.values() if d.problems)
    names = {p.name for p in parts}
    plan = plan_sync(
        current,
        listed,
        fetched.details,
        listing_complete=report.listing_complete,
        now=now,
        organizations=names,
    )
    report.added = [a.account_id for a in plan.added]
    report.changed = [(c.after.account_id, c.fields) for c in plan.changed]
    report.moved = [
        (c.after.account_id, IMPORTED if c.before.imported else c.before.organization, c.after.organization)
        for c in plan.moved
    ]
    report.deactivated = [c.after.account_id for c in plan.deactivated]
    report.reactivated = [c.after.account_id for c in plan.reactivated]
    report.unchanged = plan.unchanged
    writes = plan.writes
    report.unconfigured = dict(plan.unsynced)
    report.items_to_write = len(writes)
    result = WriteResult() if options.dry_run or not writes else table.write(list(writes))
    report.items_written = result.written
    report.write_failed = list(result.failed)
    report.write_errors = list(result.errors)
    for part in parts:
        report.api_calls.update(part.calls)
        report.sdk_retries += part.retries
    if result.requests:
        report.api_calls["BatchWriteItem"] = result.requests
    report.organizations = _per_organization(
        parts, plan, selection.fetch, fetched, set(result.failed), options.dry_run
    )
    report.duration_seconds = clock() - started
    return report


@dataclass
class _Part:
    """One organisation during a run: its connection (None when it could not be reached) and its listing."""

    name: str
    organization: Organization | None
    listing: Listing

    @property
    def calls(self) -> Counter[str]:
        return Counter(self.organization.counter.calls) if self.organization else Counter()

    @property
    def retries(self) -> int:
        return self.organization.counter.retries if self.organization else 0


def _list_all(
    organizations: Sequence[ManagedOrganization], progress: Progress, deadline: float | None
) -> list[_Part]:
    """Every organisation's listing, at once; one that cannot be reached is an incomplete listing with why."""

    def one(managed: ManagedOrganization) -> _Part:
        shown = _named(progress, managed.name) if len(organizations) > 1 else progress
        organization: Organization | None = None
        try:
            organization = managed.connect()
            listing = organization.list_accounts(shown, deadline=deadline)
        except Exception as exc:  # one organisation's failure, whatever it is, is its own listing error
            why = str(exc) if isinstance(exc, RootmailError) else f"{type(exc).__name__}: {exc}"
            return _Part(managed.name, organization, Listing((), False, 0, why))
        return _Part(managed.name, organization, listing)

    return _at_once(one, organizations)


def _at_once[T, R](work: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """`work` on each organisation's part at once (each has its own API quotas), in order; a lone one in this
    thread."""
    if len(items) <= 1:
        return [work(item) for item in items]
    workers = min(MAX_PARALLEL_ORGANIZATIONS, len(items))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rootmail-organizations") as pool:
        return list(pool.map(work, items))


def _named(progress: Progress, name: str) -> Progress:
    """Progress of one organisation's part, named after it (organisations run at once)."""

    def report(phase: str, done: int, total: int) -> None:
        progress(f"{phase} ({name})", done, total)

    return report


def _fetch_all(
    parts: Sequence[_Part], accounts: Sequence[ListedAccount], deadline: float | None, progress: Progress
) -> DetailsResult:
    """Contacts and language of each account, through the organisation that lists it; organisations at once."""
    by_name = {p.name: p for p in parts}
    groups: dict[str, list[ListedAccount]] = {}
    for account in accounts:
        groups.setdefault(account.organization, []).append(account)

    def one(name: str) -> DetailsResult:
        organization = by_name[name].organization
        assert organization is not None  # it listed these accounts
        shown = _named(progress, name) if len(parts) > 1 else progress
        return organization.fetch_details(groups[name], deadline=deadline, progress=shown)

    merged = DetailsResult()
    for result in _at_once(one, list(groups)):
        merged.details.update(result.details)
        merged.failures.update(result.failures)
        merged.skipped.extend(result.skipped)
    return merged


def _per_organization(
    parts: Sequence[_Part],
    plan: SyncPlan,
    asked: Sequence[ListedAccount],
    fetched: DetailsResult,
    failed: set[str],
    dry_run: bool,
) -> dict[str, OrganizationReport]:
    reports = {}
    for part in parts:
        name = part.name
        mine = {a.account_id for a in part.listing.accounts}
        through = {a.account_id for a in asked if a.organization == name}  # its contacts were asked of it
        wrote = [a for a in plan.writes if a.organization == name]
        reports[name] = OrganizationReport(
            name=name,
            listing_complete=part.listing.complete,
            listing_error=part.listing.error,
            pages=part.listing.pages,
            listed=len(mine),
            added=sum(1 for a in plan.added if a.organization == name),
            changed=sum(1 for c in plan.changed if c.after.organization == name),
            moved_in=sum(1 for c in plan.moved if c.after.organization == name),
            deactivated=sum(1 for c in plan.deactivated if c.after.organization == name),
            details_read=sum(1 for a in through if a in fetched.details),
            details_failed=sum(1 for a in through if a in fetched.failures),
            api_calls=part.calls,
            sdk_retries=part.retries,
            items_to_write=len(wrote),
            items_written=0 if dry_run else sum(1 for a in wrote if a.account_id not in failed),
        )
    return reports


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
        rt.organizations(),
        rt.accounts,
        options_from_settings(rt.settings),
        now=datetime.now(UTC),
        deadline=deadline_for(remaining_seconds),
    )
    summary = report.to_dict()
    if report.partial_failure or report.unconfigured:
        logger.warning("accounts sync finished with partial failures", extra=summary)
    else:
        logger.info("accounts sync finished", extra=summary)
    return summary
