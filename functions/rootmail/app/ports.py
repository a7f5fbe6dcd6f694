"""What the use cases need of the world, as small Protocols: the stored mail, the tables, SES, Zendesk, Slack, Step
Functions and Organizations. The adapters (rootmail/adapters) satisfy them over AWS and the services; tests hand in
in-memory fakes (tests/fakes.py). The records these ports return live here too, so a use case never imports an
adapter."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from rootmail.config import Settings
from rootmail.domain.accounts import Account
from rootmail.domain.alerts import AlertBatch, Membership
from rootmail.domain.pacing import Slot
from rootmail.domain.rules.index import RuleSet
from rootmail.domain.ses_events import Suppression
from rootmail.domain.sync_plan import AccountDetails, ListedAccount

Progress = Callable[[str, int, int], None]  # (phase, done, total or 0 when unknown)

# What the operators' views read of a record: not the mail's summary or its deliveries (the bulk of it).
LEDGER_OVERVIEW = (
    "mail_id",
    "state",
    "received_at",
    "updated_at",
    "sender",
    "subject",
    "category",
    "action",
    "queue_reason",
    "account_ids",
    "bucket",
    "object_key",
    "attempts",
    "redrives",
    "last_redrive",
)

# ---- records the ports return ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostedMessage:
    """A Slack message as chat.update finds it again: the channel's ID (not its name) and the message's ts."""

    channel: str
    ts: str


@dataclass(frozen=True)
class TicketRef:
    ticket_id: int
    created: bool  # this call created the ticket
    commented: bool  # this call wrote the mail onto the ticket (as its first comment when created)
    url: str
    note: str | None = None


@dataclass(frozen=True)
class RefreshClaim:
    """The outcome of asking for the one accounts refresh allowed per window."""

    claimed: bool
    started_at: str
    state: str = "running"
    finished_at: str | None = None


@dataclass(frozen=True)
class WriteResult:
    written: int = 0
    failed: tuple[
        str, ...
    ] = ()  # account IDs not written (the next sync finds them different and tries again)
    errors: tuple[str, ...] = ()
    requests: int = 0  # BatchWriteItem calls


@dataclass(frozen=True)
class Listing:
    accounts: tuple[ListedAccount, ...]
    complete: bool
    pages: int
    error: str | None = None


@dataclass
class DetailsResult:
    details: dict[str, AccountDetails] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)  # account id → what failed
    skipped: list[str] = field(default_factory=list)  # not read: the run's time was up


# ---- storage -----------------------------------------------------------------------------------------------------


class MailStore(Protocol):
    """The mail SES stored, by object key."""

    @property
    def bucket(self) -> str: ...

    def get(self, key: str) -> bytes: ...

    def list(self, prefix: str = "incoming/") -> Iterator[tuple[str, str]]: ...


class Ledger(Protocol):
    """One record per mail: opened by Parse, made terminal by Record."""

    def open(
        self, mail_id: str, *, bucket: str, key: str, execution: str, summary: dict[str, Any]
    ) -> None: ...

    def record(self, mail_id: str, fields: dict[str, Any]) -> None: ...

    def get(self, mail_id: str) -> dict[str, Any] | None: ...

    def scan(self, *, fields: Sequence[str] | None = None) -> Iterator[dict[str, Any]]: ...

    def in_state(self, state: str, *, oldest_first: bool = False) -> Iterator[dict[str, Any]]: ...

    def get_many(self, mail_ids: Sequence[str], *, fields: Sequence[str]) -> dict[str, dict[str, Any]]: ...

    def count_redrive(
        self, mail_id: str, *, execution: str, bucket: str, key: str, received_at: str
    ) -> None: ...

    def give_up(self, mail_id: str, *, reason: str, bucket: str, key: str) -> bool: ...


class AccountsTable(Protocol):
    """The accounts synced from Organizations, with the operators' overrides applied."""

    def by_id(self, account_id: str) -> Account | None: ...

    def by_email(self, email: str) -> Account | None: ...

    def load_accounts(self) -> dict[str, Account]: ...

    def write(self, accounts: Sequence[Account]) -> WriteResult: ...

    def claim_refresh(self, now: datetime, window: timedelta) -> RefreshClaim: ...

    def finish_refresh(self, claim: RefreshClaim, now: datetime, summary: dict[str, Any]) -> None: ...


class DeliveryGuard(Protocol):
    """Each side effect (a forward, a ticket, an alert) at most once per delivery key, whatever re-runs."""

    def claim(self, delivery_id: str, owner: str, *, resend_safe: bool = False) -> bool: ...

    def sending(self, delivery_id: str, owner: str) -> None: ...

    def settle(self, delivery_id: str, status: str, detail: dict[str, Any]) -> None: ...

    def get(self, delivery_id: str) -> dict[str, Any] | None: ...

    def first_copy(self, identity: str, mail_id: str) -> str: ...

    def take_over(self, identity: str, previous: str, mail_id: str) -> bool: ...

    def holding(self, key: str, owner: str) -> AbstractContextManager[None]: ...


class Pacer(Protocol):
    """Rates shared by every invocation (SES's send rate, Zendesk's API limit): slots handed out in order."""

    def reserve(self, limit: str, cost: int, rate_per_second: float, *, now_ms: int) -> Slot: ...


class AlertBatches(Protocol):
    """The operators' alerts of one kind and window, sharing one Slack message (domain/alerts.py)."""

    def join(
        self, batch_id: str, member: str, account_ids: Sequence[str], *, poster: str, now_ms: int
    ) -> Membership: ...

    def get(self, batch_id: str) -> AlertBatch | None: ...

    def claim_post(self, batch_id: str, poster: str, *, now_ms: int) -> bool: ...

    def save_message(self, batch_id: str, text: str, blocks: Sequence[dict[str, Any]]) -> None: ...

    def message(self, batch_id: str) -> tuple[str, list[dict[str, Any]]] | None: ...

    def posted(self, batch_id: str, poster: str, *, channel: str, ts: str, shown: int) -> bool: ...

    def take_turn(self, batch_id: str, owner: str, *, now_ms: int) -> bool: ...

    def end_turn(self, batch_id: str, owner: str, *, shown: int | None, next_ms: int) -> None: ...

    def message_gone(self, batch_id: str, ts: str, poster: str, *, now_ms: int) -> bool: ...


class Clock(Protocol):
    def now_ms(self) -> int: ...


class Suppressions(Protocol):
    """Addresses SES must not be asked to send to (bounced, complained)."""

    def suppress(self, suppression: Suppression) -> bool: ...

    def suppressed(self, addresses: Iterable[str]) -> set[str]: ...


class RulesTable(Protocol):
    def load(self) -> list[dict[str, Any]]: ...

    def create(self, rule: dict[str, Any], *, by: str, why: str, file: str | None = None) -> bool: ...


class SlackRequests(Protocol):
    def first_time(self, signature: str, what: str) -> bool: ...


# ---- services ----------------------------------------------------------------------------------------------------


class Mailer(Protocol):
    @property
    def sender(self) -> str: ...

    def send(self, data: bytes, to: Sequence[str]) -> str: ...


class Helpdesk(Protocol):
    def case_ticket(
        self,
        *,
        case_id: str,
        message_key: str,
        subject: str,
        body: str,
        requester_email: str | None,
        tags: list[str],
        attachment: tuple[str, bytes] | None = None,
        public: bool = False,
    ) -> TicketRef: ...

    def urgent_ticket(
        self,
        *,
        message_key: str,
        subject: str,
        body: str,
        requester_email: str | None,
        requester_name: str | None,
        tags: list[str],
        attachment: tuple[str, bytes] | None = None,
        public: bool = True,
    ) -> TicketRef: ...


class Chat(Protocol):
    """The operators' Slack channel."""

    @property
    def channel(self) -> str: ...

    def post(
        self, text: str, blocks: list[dict[str, Any]] | None = None, *, channel: str | None = None
    ) -> str: ...

    def post_message(self, text: str, blocks: list[dict[str, Any]]) -> PostedMessage:
        """Post to the operators' channel a message that will be updated."""
        ...

    def update(self, message: PostedMessage, text: str, blocks: list[dict[str, Any]]) -> None: ...

    def open_view(self, trigger_id: str, view: dict[str, Any]) -> str: ...

    def respond(
        self,
        response_url: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        *,
        ephemeral: bool = False,
    ) -> None: ...


class Metrics(Protocol):
    """Figures the alarms and dashboards watch (CloudWatch, by name, unit and dimensions)."""

    def put(self, name: str, value: float, unit: str = "Count", **dimensions: str) -> None: ...


class Workflow(Protocol):
    """A state machine whose executions are started once per name."""

    def start(self, name: str, payload: dict[str, Any]) -> bool: ...

    def status(self, name: str) -> str: ...

    def outcome(self, name: str) -> dict[str, str]: ...


class CallCounts(Protocol):
    @property
    def calls(self) -> Mapping[str, int]: ...

    @property
    def retries(self) -> int: ...


class Organization(Protocol):
    """AWS Organizations and the Account API, as the accounts sync reads them."""

    @property
    def counter(self) -> CallCounts: ...

    def list_accounts(self, progress: Progress = ..., *, deadline: float | None = None) -> Listing: ...

    def fetch_details(
        self, accounts: Sequence[ListedAccount], *, deadline: float | None = None, progress: Progress = ...
    ) -> DetailsResult: ...


@dataclass(frozen=True)
class ManagedOrganization:
    """One organisation the provider syncs: its name, and how to reach it (through its management account's role;
    `connect` raises OrganizationsUnavailable when that role cannot be assumed)."""

    name: str
    connect: Callable[[], Organization]

    @classmethod
    def of(cls, name: str, organization: Organization) -> ManagedOrganization:
        return cls(name, lambda: organization)


class Services(Protocol):
    """Everything a use case may reach, built once per Lambda container (rootmail/bootstrap.py)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def mail_store(self) -> MailStore: ...

    @property
    def ledger(self) -> Ledger: ...

    @property
    def accounts(self) -> AccountsTable: ...

    @property
    def guard(self) -> DeliveryGuard: ...

    @property
    def pacer(self) -> Pacer: ...

    @property
    def alert_batches(self) -> AlertBatches: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def suppressions(self) -> Suppressions: ...

    @property
    def rules_table(self) -> RulesTable: ...

    @property
    def slack_requests(self) -> SlackRequests: ...

    @property
    def mailer(self) -> Mailer: ...

    @property
    def desk(self) -> Helpdesk: ...

    @property
    def slack(self) -> Chat: ...

    @property
    def metrics(self) -> Metrics: ...

    @property
    def starter(self) -> Workflow: ...

    @property
    def retries(self) -> Workflow: ...

    def rules(self, *, fresh: bool = False) -> RuleSet: ...

    def organizations(self) -> Sequence[ManagedOrganization]: ...
