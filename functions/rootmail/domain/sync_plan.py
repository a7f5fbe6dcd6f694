"""The accounts sync, decided without AWS: what Organizations lists and says about contacts, against what the
accounts table holds → what to add, change and deactivate, and which accounts' contacts to read this run.

Rules:
- An account listed by Organizations is kept up to date (email, name, status). An account whose status is not
  ACTIVE (suspended, pending closure, closed) is kept, marked inactive with the time it was first seen so.
- Several organisations are synced at once, each listing its own accounts; an item records the organisation that
  lists it. An account listed by another organisation than before has moved: its item is updated (and its contacts
  read again, through its new organisation), never duplicated.
- An account missing from every listing is marked inactive ("left the organisation") only when every listing
  completed: one failed or cut-short page, in any organisation, never deactivates anything (the account may have
  moved to the organisation that did not answer). Accounts are never deleted. Imported accounts (in no synced
  organisation, put in by an operator) are never deactivated by the sync.
- Contacts and language cost one or more calls per account, so they are read for new accounts, for accounts still
  waiting for them, for accounts an operator names, and for a rotating slice of the rest: each account once per
  `refresh_hours` (24: 1/24 of the accounts each hour). An unchanged organisation costs the listing pages plus
  that slice, and writes nothing.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from rootmail.domain.accounts import (
    ACTIVE,
    CONTACT_KINDS,
    DEFAULT_LANGUAGE,
    LEFT_ORGANIZATION,
    Account,
    Contacts,
    normalize_language,
    split_addresses,
    valid_address,
)


@dataclass(frozen=True)
class ListedAccount:
    """One `Accounts` item of ListAccounts, reduced to what the table keeps."""

    account_id: str
    email: str
    name: str = ""
    status: str = ACTIVE
    management_account_id: str | None = None  # from the item's ARN: the organisation's management account
    organization: str = ""  # the name of the synced organisation that listed it

    @classmethod
    def from_item(cls, item: Mapping[str, object], organization: str = "") -> ListedAccount:
        arn = str(item.get("Arn", ""))
        parts = arn.split(":")
        management = parts[4] if len(parts) > 5 and parts[4].isdigit() else None
        # `State` replaces the deprecated `Status` (it adds PENDING_ACTIVATION and CLOSED); either may be present.
        status = str(item.get("State") or item.get("Status") or ACTIVE)
        return cls(
            account_id=str(item["Id"]),
            email=str(item.get("Email", "")).lower(),
            name=str(item.get("Name", "")),
            status=status,
            management_account_id=management,
            organization=organization,
        )

    @property
    def is_management(self) -> bool:
        return self.management_account_id == self.account_id


@dataclass(frozen=True)
class TagContacts:
    """What an account's tags say: contacts for some kinds, maybe a language, and what was wrong with them."""

    contacts: Contacts = field(default_factory=Contacts)
    language: str | None = None
    problems: tuple[str, ...] = ()

    @property
    def kinds(self) -> tuple[str, ...]:
        return self.contacts.kinds()


def contacts_from_tags(tags: Mapping[str, str], contacts_tag: str, language_tag: str) -> TagContacts:
    """`<contacts_tag>` holds addresses for every kind, `<contacts_tag>:<kind>` for one kind (it wins for that
    kind); `<language_tag>` the language. Invalid addresses and unknown languages are dropped and reported."""
    problems: list[str] = []

    def addresses(key: str) -> tuple[str, ...]:
        if key not in tags:
            return ()
        found = split_addresses(tags[key])
        bad = [a for a in found if not valid_address(a)]
        if bad:
            problems.append(f"tag {key}: {len(bad)} invalid address(es) ignored")
        return tuple(a for a in found if valid_address(a))

    general = addresses(contacts_tag)
    kinds = {kind: addresses(f"{contacts_tag}:{kind}") or general for kind in CONTACT_KINDS}
    language = None
    if language_tag in tags:
        language = normalize_language(tags[language_tag])
        if language is None:
            problems.append(f"tag {language_tag}: unsupported language {tags[language_tag]!r} ignored")
    return TagContacts(Contacts.of_kinds(kinds), language, tuple(problems))


@dataclass(frozen=True)
class AccountDetails:
    """An account's contacts and language as Organizations has them (tags first, then alternate contacts)."""

    contacts: Contacts = field(default_factory=Contacts)
    language: str | None = None
    sources: str = ""
    problems: tuple[str, ...] = ()


def combine_details(tagged: TagContacts, alternates: Mapping[str, str]) -> AccountDetails:
    """Per kind: the tags' addresses when they name any, else the alternate contact of that kind."""
    kinds: dict[str, tuple[str, ...]] = {}
    used: list[str] = []
    problems = list(tagged.problems)
    for kind in CONTACT_KINDS:
        if tagged.contacts.of(kind):
            kinds[kind] = tagged.contacts.of(kind)
            used.append("tags")
        elif kind in alternates:
            address = alternates[kind].strip()
            if valid_address(address):
                kinds[kind] = (address,)
                used.append("alternate-contacts")
            else:
                problems.append(f"alternate contact {kind.upper()}: invalid address ignored")
    return AccountDetails(
        Contacts.of_kinds(kinds), tagged.language, "+".join(dict.fromkeys(used)), tuple(problems)
    )


# ---- which accounts get their contacts read this run ---------------------------------------------------------


def refresh_slot(account_id: str, refresh_hours: int) -> int:
    """The hour (0 … refresh_hours-1) in which an account's contacts are re-read; stable across runs and hosts."""
    return zlib.crc32(account_id.encode()) % refresh_hours


def hour_index(now: datetime, refresh_hours: int) -> int:
    return int(now.timestamp() // 3600) % refresh_hours


@dataclass(frozen=True)
class Selection:
    fetch: tuple[ListedAccount, ...]
    deferred: tuple[str, ...]  # new or pending accounts left for a later run (over the budget)


def select_for_details(
    current: Mapping[str, Account],
    listed: Sequence[ListedAccount],
    *,
    now: datetime,
    refresh_hours: int = 24,
    budget: int | None = None,
    rotate: bool = True,
    forced: Iterable[str] = (),
) -> Selection:
    """New accounts first, then accounts an operator named, then accounts still waiting for their contacts, then
    (when `rotate`) this hour's slice of the active accounts; at most `budget` accounts (None: no limit).
    Inactive accounts keep the contacts they had; only their first reading is owed."""
    forced_ids = set(forced)
    new: list[ListedAccount] = []
    named: list[ListedAccount] = []
    pending: list[ListedAccount] = []
    rotating: list[ListedAccount] = []
    hour = hour_index(now, refresh_hours)
    for account in _unique(listed, current):
        known = current.get(account.account_id)
        if known is None or _arrives(known, account):
            new.append(account)  # new to the table, or new to this organisation: read through it
        elif account.account_id in forced_ids:
            named.append(account)
        elif known.details_pending:
            pending.append(account)  # whatever its status: a suspension notice must reach its customer too
        elif rotate and account.status == ACTIVE and refresh_slot(account.account_id, refresh_hours) == hour:
            rotating.append(account)
    ordered = [*new, *named, *pending, *rotating]
    if budget is None or len(ordered) <= budget:
        return Selection(tuple(ordered), ())
    chosen = ordered[:budget]
    # Rotating accounts over the budget simply wait for their next turn; new and pending ones are reported.
    rotating_ids = {a.account_id for a in rotating}
    waiting = [a.account_id for a in ordered[budget:] if a.account_id not in rotating_ids]
    return Selection(tuple(chosen), tuple(waiting))


def _unique(listed: Iterable[ListedAccount], current: Mapping[str, Account]) -> list[ListedAccount]:
    """Each account once. Two organisations listing one account (it moved between their listings): the
    organisation it is recorded in keeps it until it lists it no more, else the first listing has it."""
    found: dict[str, ListedAccount] = {}
    for account in listed:
        held = found.get(account.account_id)
        known = current.get(account.account_id)
        if held is None or (
            known is not None
            and _same_organization(known, account.management_account_id, account.organization)
        ):
            found[account.account_id] = account
    return list(found.values())


def _arrives(known: Account, account: ListedAccount) -> bool:
    """Listed by an organisation it was not recorded in: imported before, back after it left, or moved from
    another organisation."""
    if known.imported or known.inactive_reason == LEFT_ORGANIZATION:
        return True
    return bool(known.organization) and not _same_organization(
        known, account.management_account_id, account.organization
    )


def _same_organization(known: Account, management_account: str | None, organization: str) -> bool:
    """Whether the organisation `known` is recorded in is this one. An organisation is its management account,
    whatever name the configuration gives it (a renamed organisation's accounts have not moved); by name when either
    side does not say."""
    if known.management_account and management_account:
        return known.management_account == management_account
    return known.organization == organization


# ---- the plan ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    before: Account
    after: Account

    @property
    def fields(self) -> tuple[str, ...]:
        before, after = self.before.to_dict(), self.after.to_dict()
        return tuple(k for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k))


@dataclass(frozen=True)
class SyncPlan:
    added: tuple[Account, ...] = ()
    changed: tuple[Change, ...] = ()
    deactivated: tuple[Change, ...] = ()
    unchanged: int = 0
    # Active accounts, after the plan, of organisations the run did not sync (removed from the configuration, or a
    # run over some of them): left as they are. Organisation → how many.
    unsynced: tuple[tuple[str, int], ...] = ()

    @property
    def writes(self) -> tuple[Account, ...]:
        return (*self.added, *(c.after for c in self.changed), *(c.after for c in self.deactivated))

    @property
    def reactivated(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changed if not c.before.active and c.after.active)

    @property
    def moved(self) -> tuple[Change, ...]:
        """Accounts now listed by another organisation than the one they were recorded in (or than imported)."""
        return tuple(
            c
            for c in self.changed
            if c.before.imported
            or (
                c.before.organization
                and not _same_organization(c.before, c.after.management_account, c.after.organization)
            )
        )


def now_text(now: datetime) -> str:
    return now.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def plan_sync(
    current: Mapping[str, Account],
    listed: Sequence[ListedAccount],
    details: Mapping[str, AccountDetails],
    *,
    listing_complete: bool,
    now: datetime,
    organizations: Collection[str] | None = None,
) -> SyncPlan:
    """Compare the table (`current`) with the listings and the contacts read this run (`details`). An account no
    listing has is deactivated only when every listing completed and the organisation it was recorded in is one of
    this run's `organizations` (None: every one); an account of an organisation not synced this run (one removed
    from the configuration, a run over some of them) is left as it is."""
    stamp = now_text(now)
    added: list[Account] = []
    changed: list[Change] = []
    deactivated: list[Change] = []
    unchanged = 0
    seen: set[str] = set()
    for item in _unique(listed, current):
        seen.add(item.account_id)
        before = current.get(item.account_id)
        after = _updated(before, item, details.get(item.account_id), stamp)
        if before is None:
            added.append(after)
        elif after != before:
            changed.append(Change(before, after))
        else:
            unchanged += 1
    managements = {a.management_account_id for a in listed if a.management_account_id}
    for account_id, before in current.items():
        if account_id in seen:
            continue
        synced = (
            organizations is None
            or not before.organization
            or before.organization in organizations
            or before.management_account in managements  # its organisation, under a new name
        )
        if (
            not (listing_complete and synced)
            or before.imported
            or before.inactive_reason == LEFT_ORGANIZATION
        ):
            unchanged += 1
            continue
        # Gone from the organisations, also when it was inactive already (suspended, then removed): it keeps
        # the time it stopped being active, and no longer holds its root address.
        after = replace(
            before, inactive_since=before.inactive_since or stamp, inactive_reason=LEFT_ORGANIZATION
        )
        deactivated.append(Change(before, after))
    plan = SyncPlan(tuple(added), tuple(changed), tuple(deactivated), unchanged)
    if organizations is None:
        return plan
    table = {**current, **{a.account_id: a for a in plan.writes}}
    unsynced = Counter(
        a.organization
        for a in table.values()
        if a.active and a.organization and a.organization not in organizations
    )
    return replace(plan, unsynced=tuple(sorted(unsynced.items())))


def _updated(
    before: Account | None, item: ListedAccount, found: AccountDetails | None, stamp: str
) -> Account:
    base = before or Account(item.account_id, item.email, details_pending=True)
    account = replace(
        base,
        email=item.email,
        name=item.name,
        status=item.status,
        organization=item.organization or base.organization,
        management_account=item.management_account_id or base.management_account,
        imported=False,  # an organisation lists it: from now on the organisation's word is the account's
    )
    if before is not None and found is None and _arrives(before, item):
        # New to this organisation and its contacts not read through it yet: owed, like a new account's.
        account = replace(account, details_pending=True)
    if found is not None:
        account = replace(
            account,
            contacts=found.contacts,
            language=found.language or DEFAULT_LANGUAGE,
            contacts_from=found.sources,
            details_pending=False,
        )
    if item.status == ACTIVE:
        return replace(account, inactive_since=None, inactive_reason=None)
    # Inactive since it first stopped being active, whatever the reason now.
    return replace(
        account,
        inactive_since=base.inactive_since or stamp,
        inactive_reason=f"{item.status} in Organizations",
    )
