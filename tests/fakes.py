"""In-memory stand-ins for the ports of rootmail/app/ports.py, for use-case tests that run in milliseconds. Each keeps
the promises its adapter makes (a claim held by another execution is DeliveryInProgress, a workflow starts once per
name, a give-up never overwrites a terminal state); tests/test_port_contracts.py runs the same checks against the
fake and the DynamoDB adapter, so the two cannot drift apart."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from rootmail.app.ports import (
    DetailsResult,
    Listing,
    ManagedOrganization,
    PostedMessage,
    Progress,
    RefreshClaim,
    TicketRef,
    WriteResult,
)
from rootmail.config import Settings
from rootmail.domain.accounts import Account, owner_of_address
from rootmail.domain.alerts import MAX_NAMED_ACCOUNTS, TURN_LEASE_MS, AlertBatch, Membership
from rootmail.domain.moments import now_iso, stamp
from rootmail.domain.pacing import Slot, reserve
from rootmail.domain.rules.index import RuleSet
from rootmail.domain.rules.sets import usable_rules
from rootmail.domain.ses_events import Suppression
from rootmail.domain.sync_plan import ListedAccount
from rootmail.domain.vocabulary import IN_FLIGHT
from rootmail.errors import (
    DeliveryInProgress,
    DeliveryUnconfirmed,
    MailNotFound,
    RulesUnavailable,
    SlackMessageGone,
)

LEASE = timedelta(minutes=5)
HOLD_LEASE = timedelta(seconds=90)


class MailStore:
    def __init__(self, bucket: str = "mail") -> None:
        self.bucket = bucket
        self.objects: dict[str, tuple[bytes, str]] = {}

    def put(self, key: str, raw: bytes, stored_at: str | None = None) -> str:
        self.objects[key] = (raw, stored_at or now_iso())
        return key

    def get(self, key: str) -> bytes:
        if key not in self.objects:
            raise MailNotFound(f"s3://{self.bucket}/{key} does not exist")
        return self.objects[key][0]

    def list(self, prefix: str = "incoming/") -> Iterator[tuple[str, str]]:
        for key, (_, stored_at) in sorted(self.objects.items()):
            if key.startswith(prefix):
                yield key, stored_at


class Ledger:
    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}

    def _set(self, mail_id: str, fields: dict[str, Any], **if_missing: Any) -> None:
        record = self.records.setdefault(mail_id, {"mail_id": mail_id})
        for name, value in if_missing.items():
            record.setdefault(name, value)
        record.update(fields)

    def open(self, mail_id: str, *, bucket: str, key: str, execution: str, summary: dict[str, Any]) -> None:
        now = now_iso()
        fields = {"state": IN_FLIGHT, "updated_at": now, "bucket": bucket, "object_key": key}
        fields |= {"execution": execution, "summary": json.dumps(summary, ensure_ascii=False)}
        self._set(mail_id, fields, received_at=now, attempts=0)
        self.records[mail_id]["attempts"] += 1

    def record(self, mail_id: str, fields: dict[str, Any]) -> None:
        now = now_iso()
        self._set(mail_id, {**fields, "updated_at": now}, received_at=now)

    def count_redrive(self, mail_id: str, *, execution: str, bucket: str, key: str, received_at: str) -> None:
        self._set(
            mail_id,
            {"last_redrive": execution},
            redrives=0,
            bucket=bucket,
            object_key=key,
            received_at=received_at,
        )
        self.records[mail_id]["redrives"] += 1

    def give_up(self, mail_id: str, *, reason: str, bucket: str, key: str) -> bool:
        if self.records.get(mail_id, {}).get("state") not in (None, IN_FLIGHT):
            return False
        now = now_iso()
        fields = {"state": "queued", "queue_reason": reason, "updated_at": now}
        self._set(mail_id, fields, bucket=bucket, object_key=key, received_at=now)
        return True

    def get(self, mail_id: str) -> dict[str, Any] | None:
        record = self.records.get(mail_id)
        return dict(record) if record is not None else None

    def scan(self, *, fields: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
        for record in list(self.records.values()):
            yield {k: v for k, v in record.items() if not fields or k in fields}

    def get_many(self, mail_ids: Sequence[str], *, fields: Sequence[str]) -> dict[str, dict[str, Any]]:
        return {
            i: {k: v for k, v in self.records[i].items() if k in fields}
            for i in mail_ids
            if i in self.records
        }

    def in_state(self, state: str, *, oldest_first: bool = False) -> Iterator[dict[str, Any]]:
        chosen = [dict(r) for r in self.records.values() if r.get("state") == state]
        yield from sorted(chosen, key=lambda r: str(r.get("updated_at")), reverse=not oldest_first)


class Accounts:
    def __init__(self, accounts: Iterable[Account] = ()) -> None:
        self.accounts = {a.account_id: a for a in accounts}
        self.marker: dict[str, Any] | None = None

    def by_id(self, account_id: str) -> Account | None:
        return self.accounts.get(account_id)

    def by_email(self, email: str) -> Account | None:
        return owner_of_address(a for a in self.accounts.values() if a.email.lower() == email.lower())

    def load_accounts(self) -> dict[str, Account]:
        return dict(self.accounts)

    def write(self, accounts: Sequence[Account]) -> WriteResult:
        self.accounts.update((a.account_id, a) for a in accounts)
        return WriteResult(written=len(accounts), requests=-(-len(accounts) // 25))

    def claim_refresh(self, now: datetime, window: timedelta) -> RefreshClaim:
        if self.marker is None or self.marker["started_at"] < stamp(now - window):
            self.marker = {"state": "running", "started_at": stamp(now)}
            return RefreshClaim(True, stamp(now))
        held = self.marker
        return RefreshClaim(False, held["started_at"], held["state"], held.get("finished_at"))

    def finish_refresh(self, claim: RefreshClaim, now: datetime, summary: dict[str, Any]) -> None:
        if self.marker is not None and self.marker["started_at"] == claim.started_at:
            self.marker |= {"state": "done", "finished_at": stamp(now), "summary": json.dumps(summary)}


class DeliveryGuard:
    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def claim(self, delivery_id: str, owner: str, *, resend_safe: bool = False) -> bool:
        held = self.items.get(delivery_id)
        stale = held is not None and str(held.get("at")) < now_iso(-LEASE)
        takeover = {"claimed", "sending"} if resend_safe else {"claimed"}
        if (
            held is None
            or held["status"] == "failed"
            or (held["status"] in takeover and (held["owner"] == owner or stale))
        ):
            self.items[delivery_id] = {
                "delivery_id": delivery_id,
                "status": "claimed",
                "owner": owner,
                "at": now_iso(),
            }
            return True
        if held["status"] == "sent":
            return False
        if held["status"] == "sending" and (held["owner"] == owner or stale):
            raise DeliveryUnconfirmed(f"{delivery_id} may have been delivered: its sender stopped half-way")
        raise DeliveryInProgress(f"{delivery_id} is claimed by {held.get('owner')} since {held.get('at')}")

    def sending(self, delivery_id: str, owner: str) -> None:
        held = self.items.get(delivery_id) or {}
        if held.get("owner") != owner or held.get("status") != "claimed":
            raise DeliveryInProgress(f"{delivery_id}: the claim was taken over before sending")
        held |= {"status": "sending", "at": now_iso()}

    def settle(self, delivery_id: str, status: str, detail: dict[str, Any]) -> None:
        item = self.items.setdefault(delivery_id, {"delivery_id": delivery_id})
        item |= {"status": status, "detail": json.loads(json.dumps(detail)), "settled_at": now_iso()}

    def get(self, delivery_id: str) -> dict[str, Any] | None:
        item = self.items.get(delivery_id)
        return json.loads(json.dumps(item)) if item is not None else None

    def first_copy(self, identity: str, mail_id: str) -> str:
        item = self.items.setdefault(
            f"identity#{identity}", {"status": "identity", "owner": mail_id, "at": now_iso()}
        )
        return str(item["owner"])

    def take_over(self, identity: str, previous: str, mail_id: str) -> bool:
        item = self.items.get(f"identity#{identity}")
        if item is None or item["owner"] != previous:
            return False
        item |= {"owner": mail_id, "at": now_iso()}
        return True

    @contextmanager
    def holding(self, key: str, owner: str) -> Iterator[None]:
        held = self.items.get(key)
        if (
            held
            and held["status"] != "released"
            and held["owner"] != owner
            and held["at"] >= now_iso(-HOLD_LEASE)
        ):
            raise DeliveryInProgress(f"{key} is held by {held['owner']} since {held['at']}")
        self.items[key] = {"delivery_id": key, "status": "held", "owner": owner, "at": now_iso()}
        try:
            yield
        finally:
            if self.items[key]["owner"] == owner:
                self.items[key] |= {"status": "released", "at": now_iso()}


class Suppressions:
    def __init__(self) -> None:
        self.active: dict[str, Suppression] = {}

    def suppress(self, suppression: Suppression) -> bool:
        if suppression.address in self.active:
            return False
        self.active[suppression.address] = suppression
        return True

    def suppressed(self, addresses: Iterable[str]) -> set[str]:
        return {a.lower() for a in addresses} & set(self.active)


class RulesTable:
    def __init__(self, rules: Iterable[dict[str, Any]] = ()) -> None:
        self.rules = {str(r["id"]): dict(r) for r in rules}
        self.changes: list[tuple[str, str, str]] = []  # (rule, by, why)

    def load(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.rules.values()]

    def create(self, rule: dict[str, Any], *, by: str, why: str, file: str | None = None) -> bool:
        if rule["id"] in self.rules:
            return False
        self.rules[str(rule["id"])] = dict(rule)
        self.changes.append((str(rule["id"]), by, why))
        return True


class SlackRequests:
    def __init__(self) -> None:
        self.seen: set[str] = set()

    def first_time(self, signature: str, what: str) -> bool:
        if signature in self.seen:
            return False
        self.seen.add(signature)
        return True


class Clock:
    """The time the use cases read, in milliseconds since the epoch: it starts at the real time and moves only when
    a test moves it, or when the walked definition passes a Wait state (tests/walk.py), which waits no real time."""

    def __init__(self) -> None:
        self.at_ms = time.time_ns() // 1_000_000

    def now_ms(self) -> int:
        return self.at_ms

    def advance_to(self, moment_ms: int) -> None:
        self.at_ms = max(self.at_ms, moment_ms)


class Pacer:
    """The shared rates in memory."""

    def __init__(self) -> None:
        self.tats: dict[str, int] = {}
        self.reservations: list[tuple[str, int]] = []

    def reserve(self, limit: str, cost: int, rate_per_second: float, *, now_ms: int) -> Slot:
        slot, self.tats[limit] = reserve(self.tats.get(limit), now_ms * 1000, cost, rate_per_second)
        self.reservations.append((limit, cost))
        return slot


class AlertBatches:
    """The alert batches in memory, with the DynamoDB adapter's conditions (tests/test_port_contracts.py)."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.members: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, tuple[str, list[dict[str, Any]]]] = {}

    def join(
        self, batch_id: str, member: str, account_ids: Sequence[str], *, poster: str, now_ms: int
    ) -> Membership:
        held = self.members.get(member)
        if held is None:
            item = self.items.setdefault(
                batch_id,
                {"mails": 0, "accounts": set(), "opened": now_ms, "poster": poster, "poster_at": now_ms},
            )
            item["mails"] += 1
            if len(item["accounts"]) < MAX_NAMED_ACCOUNTS:
                item["accounts"].update(account_ids)
            held = self.members[member] = {"batch": batch_id, "joined": now_ms, "position": item["mails"]}
        return Membership(held["batch"], held["position"], held["joined"])

    def get(self, batch_id: str) -> AlertBatch | None:
        item = self.items.get(batch_id)
        if item is None:
            return None
        return AlertBatch(
            batch_id=batch_id,
            count=item["mails"],
            accounts=tuple(sorted(item["accounts"])),
            opened_ms=item["opened"],
            shown=item.get("shown", 0),
            channel=item.get("channel"),
            ts=item.get("ts"),
            next_update_ms=item.get("next_update", 0),
            generation=item.get("generation", 0),
        )

    def claim_post(self, batch_id: str, poster: str, *, now_ms: int) -> bool:
        item = self.items.get(batch_id)
        if (
            item is None
            or "ts" in item
            or (item["poster"] != poster and item["poster_at"] >= now_ms - TURN_LEASE_MS)
        ):
            return False
        item.update(poster=poster, poster_at=now_ms)
        return True

    def save_message(self, batch_id: str, text: str, blocks: Sequence[dict[str, Any]]) -> None:
        self.messages[batch_id] = (text, json.loads(json.dumps(list(blocks))))

    def message(self, batch_id: str) -> tuple[str, list[dict[str, Any]]] | None:
        return self.messages.get(batch_id)

    def posted(self, batch_id: str, poster: str, *, channel: str, ts: str, shown: int) -> bool:
        item = self.items.get(batch_id)
        if item is None or not (("ts" not in item and item["poster"] == poster) or item.get("ts") == ts):
            return False
        item.update(channel=channel, ts=ts, shown=shown)
        return True

    def take_turn(self, batch_id: str, owner: str, *, now_ms: int) -> bool:
        item = self.items.get(batch_id)
        if (
            item is None
            or "ts" not in item
            or item.get("turn_until", 0) >= now_ms
            or item.get("next_update", 0) > now_ms
        ):
            return False
        item.update(turn_owner=owner, turn_until=now_ms + TURN_LEASE_MS)
        return True

    def end_turn(self, batch_id: str, owner: str, *, shown: int | None, next_ms: int) -> None:
        item = self.items.get(batch_id)
        if item is None or item.get("turn_owner") != owner:
            return
        item["next_update"] = next_ms
        if shown is not None:
            item["shown"] = shown
        item.pop("turn_owner", None)
        item.pop("turn_until", None)

    def message_gone(self, batch_id: str, ts: str, poster: str, *, now_ms: int) -> bool:
        item = self.items.get(batch_id)
        if item is None or item.get("ts") != ts:
            return False
        for name in ("ts", "channel", "turn_until", "turn_owner"):
            item.pop(name, None)
        item.update(poster=poster, poster_at=now_ms, shown=0, generation=item.get("generation", 0) + 1)
        return True


@dataclass
class Mailer:
    sender: str = "rootmail@provider.example"
    sent: list[tuple[bytes, list[str]]] = field(default_factory=list)
    failure: Exception | None = None  # raised by the next send

    def send(self, data: bytes, to: Sequence[str]) -> str:
        if self.failure is not None:
            raise self.failure
        self.sent.append((data, list(to)))
        return f"ses-{len(self.sent)}"


@dataclass
class Ticket:
    ticket_id: int
    fields: dict[str, Any]
    comments: list[dict[str, Any]] = field(default_factory=list)


class Helpdesk:
    def __init__(self) -> None:
        self.tickets: dict[int, Ticket] = {}
        self.cases: dict[str, int] = {}

    def _ticket(
        self, fields: dict[str, Any], comment: dict[str, Any], case_id: str | None = None
    ) -> TicketRef:
        if case_id is not None and case_id in self.cases:
            ticket = self.tickets[self.cases[case_id]]
            ticket.comments.append(comment)
            return TicketRef(
                ticket.ticket_id, False, True, f"https://desk.example/tickets/{ticket.ticket_id}"
            )
        ticket = Ticket(len(self.tickets) + 1, fields, [comment])
        self.tickets[ticket.ticket_id] = ticket
        if case_id is not None:
            self.cases[case_id] = ticket.ticket_id
        return TicketRef(ticket.ticket_id, True, True, f"https://desk.example/tickets/{ticket.ticket_id}")

    def case_ticket(self, *, case_id: str, message_key: str, subject: str, body: str, requester_email: str | None,
                    tags: list[str], attachment: tuple[str, bytes] | None = None, public: bool = False) -> TicketRef:  # fmt: skip
        fields = {"subject": subject, "tags": tags, "requester": requester_email}
        comment = {"body": body, "public": public, "attachment": attachment, "message_key": message_key}
        return self._ticket(fields, comment, case_id)

    def urgent_ticket(self, *, message_key: str, subject: str, body: str, requester_email: str | None,
                      requester_name: str | None, tags: list[str], attachment: tuple[str, bytes] | None = None,
                      public: bool = True) -> TicketRef:  # fmt: skip
        fields = {"subject": subject, "tags": tags, "requester": requester_email, "priority": "urgent"}
        comment = {"body": body, "public": public, "attachment": attachment, "message_key": message_key}
        return self._ticket(fields, comment)


@dataclass
class Chat:
    channel: str = "C0OPS"
    posts: list[dict[str, Any]] = field(default_factory=list)
    views: list[dict[str, Any]] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)
    failure: Exception | None = None  # raised by every post and update while set

    def post(
        self, text: str, blocks: list[dict[str, Any]] | None = None, *, channel: str | None = None
    ) -> str:
        if self.failure is not None:
            raise self.failure
        ts = f"{len(self.posts) + 1}.000100"
        self.posts.append(
            {"text": text, "blocks": blocks or [], "channel": channel or self.channel, "ts": ts}
        )
        return ts

    def post_message(self, text: str, blocks: list[dict[str, Any]]) -> PostedMessage:
        ts = self.post(text, blocks)
        return PostedMessage(channel=self.channel, ts=ts)

    def update(self, message: PostedMessage, text: str, blocks: list[dict[str, Any]]) -> None:
        if self.failure is not None:
            raise self.failure
        found = [p for p in self.posts if p["ts"] == message.ts and p["channel"] == message.channel]
        if not found:  # deleted in Slack (a test removed it from `posts`)
            raise SlackMessageGone(f"Slack answered 200 to chat.update of {message.ts}: message_not_found")
        found[0].update(text=text, blocks=blocks, updates=found[0].get("updates", 0) + 1)

    def open_view(self, trigger_id: str, view: dict[str, Any]) -> str:
        self.views.append({"trigger_id": trigger_id, "view": view})
        return f"V{len(self.views)}"

    def respond(self, response_url: str, text: str, blocks: list[dict[str, Any]] | None = None, *,
                ephemeral: bool = False) -> None:  # fmt: skip
        self.responses.append({"url": response_url, "text": text, "blocks": blocks, "ephemeral": ephemeral})


@dataclass
class Metrics:
    figures: list[tuple[str, float, str, dict[str, str]]] = field(default_factory=list)

    def put(self, name: str, value: float, unit: str = "Count", **dimensions: str) -> None:
        self.figures.append((name, value, unit, dimensions))

    def of(self, name: str) -> list[float]:
        return [value for figure, value, _, _ in self.figures if figure == name]


class Workflow:
    def __init__(self) -> None:
        self.executions: dict[str, dict[str, Any]] = {}  # name → {"payload", "status"}

    def start(self, name: str, payload: dict[str, Any]) -> bool:
        if name in self.executions:
            return False
        self.executions[name] = {"payload": payload, "status": "RUNNING"}
        return True

    def status(self, name: str) -> str:
        return str(self.executions[name]["status"])

    def outcome(self, name: str) -> dict[str, str]:
        return {k: v for k, v in self.executions[name].items() if k in ("status", "error", "cause")}


@dataclass
class CallCounts:
    calls: dict[str, int] = field(default_factory=dict)
    retries: int = 0


class Organization:
    """Organizations as a list of accounts and the details each read gives."""

    def __init__(self, accounts: Iterable[ListedAccount] = (), details: dict[str, Any] | None = None) -> None:
        self.accounts = list(accounts)
        self.details = details or {}
        self.counter = CallCounts()
        self.failure: str | None = None  # set: the listing fails with this error

    def list_accounts(
        self, progress: Progress = lambda *_: None, *, deadline: float | None = None
    ) -> Listing:
        if self.failure:
            return Listing((), False, 0, self.failure)
        return Listing(tuple(self.accounts), True, 1)

    def fetch_details(self, accounts: Sequence[ListedAccount], *, deadline: float | None = None,
                      progress: Progress = lambda *_: None) -> DetailsResult:  # fmt: skip
        return DetailsResult(
            {a.account_id: self.details[a.account_id] for a in accounts if a.account_id in self.details}
        )


class Services:
    """Every port, in memory, with the settings a test gives (ROOTMAIL_* names without the prefix)."""

    def __init__(
        self,
        *,
        accounts: Iterable[Account] = (),
        rules: Iterable[dict[str, Any]] = (),
        organization: Organization | None = None,
        organizations: dict[str, Organization] | None = None,
        **settings: Any,
    ) -> None:
        defaults = {
            "reply_to_address": "support@provider.example",
            "operator_language": "en",
        }
        self.settings = Settings(**{**defaults, **settings})
        self.mail_store = MailStore()
        self.ledger = Ledger()
        self.accounts = Accounts(accounts)
        self.guard = DeliveryGuard()
        self.clock = Clock()
        self.pacer = Pacer()
        self.alert_batches = AlertBatches()
        self.suppressions = Suppressions()
        self.rules_table = RulesTable(rules)
        self.slack_requests = SlackRequests()
        self.mailer = Mailer()
        self.desk = Helpdesk()
        self.slack = Chat()
        self.metrics = Metrics()
        self.starter = Workflow()
        self.retries = Workflow()
        self._organizations = organizations or {"main": organization or Organization()}
        self._rules: RuleSet | None = None

    def rules(self, *, fresh: bool = False) -> RuleSet:
        """As a warm container has them: read once, and again only when asked `fresh` (the real cache also
        expires after ROOTMAIL_RULES_CACHE_SECONDS)."""
        if fresh or self._rules is None:
            rules, _ = usable_rules((item, "table") for item in self.rules_table.load())
            if not rules:
                raise RulesUnavailable("no valid rule in the rules table")
            self._rules = RuleSet(rules)
        return self._rules

    def organizations(self) -> list[ManagedOrganization]:
        return [ManagedOrganization.of(name, o) for name, o in self._organizations.items()]
