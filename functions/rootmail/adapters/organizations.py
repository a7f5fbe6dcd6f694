"""AWS Organizations and the Account Management API, as the accounts sync needs them.

Called from the management account (or with a role assumed in it): ListAccounts for the accounts,
ListTagsForResource for each account's contact and language tags, and account:GetAlternateContact (with
`AccountId`; without it for the management account itself, which AWS requires) for the kinds the tags leave open.

Both APIs throttle large organisations. The clients handed in retry throttling in the SDK (adaptive mode in
bootstrap.py); what still fails is returned as that page's or that account's failure, never raised half-way: the
sync finishes, reports it, and a page that failed makes the listing incomplete (so nothing is deactivated).
Per-account calls run on a small thread pool (boto3 clients are thread-safe).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rootmail.adapters.aws import describe, error_code
from rootmail.app.ports import DetailsResult, Listing, Progress
from rootmail.domain.accounts import CONTACT_KINDS
from rootmail.domain.sync_plan import AccountDetails, ListedAccount, combine_details, contacts_from_tags


def _no_progress(phase: str, done: int, total: int) -> None:
    return None


class CallCounter:
    """API calls by operation, and the SDK's retries of them (from each answer's ResponseMetadata)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.retries = 0

    def count(self, operation: str, metadata: dict[str, Any] | None) -> None:
        retries = int((metadata or {}).get("RetryAttempts", 0) or 0)
        with self._lock:
            self.calls[operation] += 1
            self.retries += retries

    @property
    def total(self) -> int:
        return sum(self.calls.values())


class Organization:
    def __init__(
        self,
        organizations: Any,
        account: Any,
        *,
        contacts_tag: str = "rootmail:contacts",
        language_tag: str = "rootmail:language",
        alternate_contacts: bool = True,
        concurrency: int = 4,
        counter: CallCounter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._organizations = organizations
        self._account = account
        self.contacts_tag = contacts_tag
        self.language_tag = language_tag
        self.alternate_contacts = alternate_contacts
        self.concurrency = max(1, concurrency)
        self.counter = counter or CallCounter()
        self._clock = clock

    # ---- the listing ------------------------------------------------------------------------------------

    def list_accounts(self, progress: Progress = _no_progress, *, deadline: float | None = None) -> Listing:
        """Every page of ListAccounts. An empty page with a NextToken is not the end; a page that fails (after the
        SDK's retries), or the run's time running out, ends the listing as incomplete with what was read."""
        accounts: list[ListedAccount] = []
        pages = 0
        token: str | None = None
        seen_tokens: set[str] = set()
        while True:
            if deadline is not None and self._clock() > deadline:
                return Listing(
                    tuple(accounts), False, pages, f"time was up after {pages} ListAccounts page(s)"
                )
            try:
                answer = self._call(
                    self._organizations, "ListAccounts", **({"NextToken": token} if token else {})
                )
            except (ClientError, BotoCoreError) as exc:
                return Listing(
                    tuple(accounts), False, pages, f"ListAccounts page {pages + 1}: {describe(exc)}"
                )
            pages += 1
            accounts.extend(ListedAccount.from_item(item) for item in answer.get("Accounts", []))
            progress("listing", len(accounts), 0)
            token = answer.get("NextToken") or None
            if token is None and not accounts:
                # An organisation always lists its management account: an empty listing is a wrong account or role
                # (or an emulator without an organisation), and must not deactivate the whole table.
                error = "ListAccounts listed no account: not the management account of an organisation?"
                return Listing((), False, pages, error)
            if token is None:
                progress("listing", len(accounts), len(accounts))
                return Listing(tuple(accounts), True, pages)
            if token in seen_tokens:
                error = f"ListAccounts page {pages}: the same NextToken came back again; listing stopped"
                return Listing(tuple(accounts), False, pages, error)
            seen_tokens.add(token)

    # ---- contacts and language --------------------------------------------------------------------------

    def fetch_details(
        self,
        accounts: Sequence[ListedAccount],
        *,
        deadline: float | None = None,
        progress: Progress = _no_progress,
    ) -> DetailsResult:
        """Contacts and language of each account, a few at a time. An account whose calls fail is reported in
        `failures`; accounts not started before `deadline` (a `clock()` value) are `skipped`."""
        result = DetailsResult()
        lock = threading.Lock()
        done = 0

        def one(account: ListedAccount) -> None:
            nonlocal done
            if deadline is not None and self._clock() > deadline:
                with lock:
                    result.skipped.append(account.account_id)
                return
            try:
                details = self.account_details(account)
            except Exception as exc:  # one account's failure, whatever it is, never ends the run
                with lock:
                    result.failures[account.account_id] = describe(exc)
            else:
                with lock:
                    result.details[account.account_id] = details
            with lock:
                done += 1
                progress("details", done, len(accounts))

        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="rootmail-details") as pool:
            for _ in pool.map(one, accounts):
                pass
        return result

    def account_details(self, account: ListedAccount) -> AccountDetails:
        """Tags first; alternate contacts only for the kinds the tags leave open (one call per kind)."""
        tagged = contacts_from_tags(self.tags(account.account_id), self.contacts_tag, self.language_tag)
        alternates: dict[str, str] = {}
        if self.alternate_contacts:
            for kind in CONTACT_KINDS:
                if kind not in tagged.kinds:
                    address = self.alternate_contact(account, kind)
                    if address:
                        alternates[kind] = address
        return combine_details(tagged, alternates)

    def tags(self, account_id: str) -> dict[str, str]:
        tags: dict[str, str] = {}
        for page in self._pages("ListTagsForResource", ResourceId=account_id):
            tags.update({t["Key"]: t["Value"] for t in page.get("Tags", [])})
        return tags

    def alternate_contact(self, account: ListedAccount, kind: str) -> str | None:
        # The management account's own contacts are read without AccountId (AWS refuses its own ID there).
        target = {} if account.is_management else {"AccountId": account.account_id}
        try:
            answer = self._call(
                self._account, "GetAlternateContact", AlternateContactType=kind.upper(), **target
            )
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None  # no contact of that kind
            raise
        address = answer.get("AlternateContact", {}).get("EmailAddress")
        return str(address) if address else None

    # ---- calls ------------------------------------------------------------------------------------------

    def _pages(self, operation: str, **params: Any) -> Iterator[dict[str, Any]]:
        client = self._organizations
        token: str | None = None
        while True:
            answer = self._call(client, operation, **params, **({"NextToken": token} if token else {}))
            yield answer
            token = answer.get("NextToken") or None
            if token is None:
                return

    def _call(self, client: Any, operation: str, **params: Any) -> dict[str, Any]:
        method = getattr(client, _snake(operation))
        try:
            answer: dict[str, Any] = method(**params)
        except ClientError as exc:
            self.counter.count(operation, exc.response.get("ResponseMetadata"))
            raise
        except BotoCoreError:
            self.counter.count(operation, None)
            raise
        self.counter.count(operation, answer.get("ResponseMetadata"))
        return answer


def _snake(operation: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")
