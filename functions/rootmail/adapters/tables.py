"""DynamoDB tables: the ledger, the accounts, the live rules and the per-delivery guard.

Low-level clients (thread-safe, unlike boto3 resources) with the type (de)serialiser.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from rootmail.adapters.aws import describe, error_code, is_transient
from rootmail.domain.accounts import Account, ContactOverride
from rootmail.domain.vocabulary import IN_FLIGHT
from rootmail.errors import (
    AccountsUnavailable,
    DeliveryInProgress,
    DeliveryUnconfirmed,
    LedgerUnavailable,
    RuleConflict,
    RuleError,
    RulesUnavailable,
)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def stamp(moment: datetime) -> str:
    """A moment as every record holds it: ISO 8601 in UTC, milliseconds, `Z`."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_iso(delta: timedelta = timedelta(0)) -> str:
    return stamp(datetime.now(UTC) + delta)


def to_item(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in data.items() if v is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain(_deserializer.deserialize(v)) for k, v in item.items()}


def _plain(value: Any) -> Any:
    # DynamoDB numbers come back as Decimal; the ledger only holds whole numbers.
    if hasattr(value, "as_integer_ratio") and not isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, set):
        return sorted(value)
    return value


def _assignments(fields: dict[str, Any]) -> tuple[list[str], dict[str, str], dict[str, Any]]:
    """`#fN = :vN` for each field: attribute names go through placeholders (`state`, `bucket` are reserved words)."""
    names = {f"#f{i}": name for i, name in enumerate(fields)}
    values = {f":v{i}": value for i, value in enumerate(fields.values())}
    return [f"#f{i} = :v{i}" for i in range(len(fields))], names, values


class Ledger:
    """One record per stored mail: what it is, what happened to it, and its terminal state."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self._db = dynamodb
        self.table = table

    def open(self, mail_id: str, *, bucket: str, key: str, execution: str, summary: dict[str, Any]) -> None:
        """Mark the mail in flight for this execution; keep when it was first received and count attempts."""
        now = now_iso()
        fields = {
            "state": IN_FLIGHT,
            "updated_at": now,
            "bucket": bucket,
            "object_key": key,
            "execution": execution,
            "summary": json.dumps(summary, ensure_ascii=False),
        }
        assignments, names, values = _assignments(fields)
        names.update({"#received": "received_at", "#attempts": "attempts"})
        values.update({":now": now, ":zero": 0, ":one": 1})
        assignments += [
            "#received = if_not_exists(#received, :now)",
            "#attempts = if_not_exists(#attempts, :zero) + :one",
        ]
        self._update(mail_id, "SET " + ", ".join(assignments), values, names)

    def record(self, mail_id: str, fields: dict[str, Any]) -> None:
        """Write the terminal state and what led to it."""
        now = now_iso()
        assignments, names, values = _assignments({**fields, "updated_at": now})
        # A mail that failed before Parse opened its record still gets when it was first seen.
        names["#received"], values[":now"] = "received_at", now
        assignments.append("#received = if_not_exists(#received, :now)")
        self._update(mail_id, "SET " + ", ".join(assignments), values, names)

    def count_redrive(self, mail_id: str, *, execution: str, bucket: str, key: str, received_at: str) -> None:
        """Count one more re-drive of the mail by the reconciler (one atomic increment; a mail with no record gets
        one that holds only this count and where it is stored, no state) and name its execution."""
        fields = {"last_redrive": execution}
        assignments, names, values = _assignments(fields)
        names.update(
            {"#redrives": "redrives", "#bucket": "bucket", "#key": "object_key", "#received": "received_at"}
        )
        values.update({":zero": 0, ":one": 1, ":bucket": bucket, ":key": key, ":received": received_at})
        assignments += [
            "#redrives = if_not_exists(#redrives, :zero) + :one",
            "#bucket = if_not_exists(#bucket, :bucket)",
            "#key = if_not_exists(#key, :key)",
            "#received = if_not_exists(#received, :received)",
        ]
        self._update(mail_id, "SET " + ", ".join(assignments), values, names)

    def give_up(self, mail_id: str, *, reason: str, bucket: str, key: str) -> bool:
        """Queue a mail the reconciler stops re-driving, with why, unless it has reached a terminal state meanwhile
        (then False: nothing written)."""
        now = now_iso()
        assignments, names, values = _assignments(
            {"state": "queued", "queue_reason": reason, "updated_at": now}
        )
        names.update({"#s": "state", "#bucket": "bucket", "#key": "object_key", "#received": "received_at"})
        values.update({":in_flight": IN_FLIGHT, ":bucket": bucket, ":key": key, ":now": now})
        assignments += [
            "#bucket = if_not_exists(#bucket, :bucket)",
            "#key = if_not_exists(#key, :key)",
            "#received = if_not_exists(#received, :now)",
        ]
        return self._update(
            mail_id,
            "SET " + ", ".join(assignments),
            values,
            names,
            condition="attribute_not_exists(#s) OR #s = :in_flight",
        )

    def get(self, mail_id: str) -> dict[str, Any] | None:
        try:
            item = self._db.get_item(
                TableName=self.table, Key=to_item({"mail_id": mail_id}), ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise LedgerUnavailable(f"ledger read of {mail_id}: {describe(exc)}") from None
        return from_item(item["Item"]) if "Item" in item else None

    def scan(self, *, fields: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
        """Every record (only `fields` of each, when given)."""
        kwargs: dict[str, Any] = {"TableName": self.table}
        if fields:
            names = {f"#p{i}": name for i, name in enumerate(fields)}
            kwargs.update(ProjectionExpression=", ".join(names), ExpressionAttributeNames=names)
        try:
            for page in self._db.get_paginator("scan").paginate(**kwargs):
                for item in page["Items"]:
                    yield from_item(item)
        except (ClientError, BotoCoreError) as exc:
            raise LedgerUnavailable(f"ledger scan: {describe(exc)}") from None

    # What the operators' views read of a record: not the mail's summary or its deliveries (the bulk of it).
    OVERVIEW = (
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
    # What the digest and the slash command read of a record in a state: the overview, and for mail no rule knows
    # its urgent words and the suggested category.
    STATE_VIEW = (*OVERVIEW, "alert", "signals", "suggestion")

    # Every attribute the reconciler's writes touch (count_redrive, give_up): its IAM grant allows no other
    # (serverless.yml, ReconcileRole; tests/test_infra.py checks), so it can never rewrite what a triage recorded.
    REDRIVE_FIELDS = (
        "mail_id",
        "redrives",
        "last_redrive",
        "bucket",
        "object_key",
        "received_at",
        "state",
        "queue_reason",
        "updated_at",
    )

    def get_many(self, mail_ids: Sequence[str], *, fields: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The records of these mails that exist (only `fields` of each), by mail ID, 100 keys a request."""
        names = {f"#p{i}": name for i, name in enumerate(fields)}
        found: dict[str, dict[str, Any]] = {}
        unique = list(dict.fromkeys(mail_ids))
        for start in range(0, len(unique), 100):
            request: dict[str, Any] = {
                self.table: {
                    "Keys": [to_item({"mail_id": m}) for m in unique[start : start + 100]],
                    "ProjectionExpression": ", ".join(names),
                    "ExpressionAttributeNames": names,
                    "ConsistentRead": True,
                }
            }
            for _ in range(5):  # what DynamoDB leaves unprocessed, asked for again
                try:
                    answer = self._db.batch_get_item(RequestItems=request)
                except (ClientError, BotoCoreError) as exc:
                    raise LedgerUnavailable(f"ledger read: {describe(exc)}") from None
                for item in answer["Responses"].get(self.table, []):
                    record = from_item(item)
                    found[str(record["mail_id"])] = record
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                raise LedgerUnavailable("ledger read: keys left unprocessed after 5 requests")
        return found

    def in_state(self, state: str, *, oldest_first: bool = False) -> Iterator[dict[str, Any]]:
        """Records in one state (their STATE_VIEW fields), the most recently updated first unless `oldest_first`
        (the `by-state` index)."""
        names = {f"#p{i}": name for i, name in enumerate(self.STATE_VIEW)}
        pages = self._db.get_paginator("query").paginate(
            TableName=self.table,
            IndexName="by-state",
            KeyConditionExpression=f"{next(k for k, v in names.items() if v == 'state')} = :state",
            ProjectionExpression=", ".join(names),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={":state": {"S": state}},
            ScanIndexForward=oldest_first,
        )
        try:
            for page in pages:
                for item in page["Items"]:
                    yield from_item(item)
        except (ClientError, BotoCoreError) as exc:
            raise LedgerUnavailable(f"ledger query of {state} mail: {describe(exc)}") from None

    def _update(
        self,
        mail_id: str,
        expression: str,
        values: dict[str, Any],
        names: dict[str, str] | None = None,
        *,
        condition: str | None = None,
    ) -> bool:
        """False when the `condition` did not hold (nothing written)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "Key": to_item({"mail_id": mail_id}),
            "UpdateExpression": expression,
            "ExpressionAttributeValues": {k: _serializer.serialize(v) for k, v in values.items()},
        }
        if names:
            kwargs["ExpressionAttributeNames"] = names
        if condition:
            kwargs["ConditionExpression"] = condition
        try:
            self._db.update_item(**kwargs)
        except ClientError as exc:
            if condition and error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise LedgerUnavailable(f"ledger write of {mail_id}: {describe(exc)}") from None
        except BotoCoreError as exc:
            raise LedgerUnavailable(f"ledger write of {mail_id}: {describe(exc)}") from None
        return True


@dataclass(frozen=True)
class WriteResult:
    written: int = 0
    failed: tuple[
        str, ...
    ] = ()  # account IDs not written (the next sync finds them different and tries again)
    errors: tuple[str, ...] = ()
    requests: int = 0  # BatchWriteItem calls


@dataclass(frozen=True)
class RefreshClaim:
    """The outcome of asking for the one accounts refresh allowed per window."""

    claimed: bool
    started_at: str
    state: str = "running"
    finished_at: str | None = None


class AccountsTable:
    """Accounts by ID and by root address (GSI `by-email`), with two other kinds of item in the same table:
    operators' contact overrides (`override#<account id>`, no email, so never in the index) and the marker that
    rate-limits the pipeline's accounts refresh (`#refresh`)."""

    OVERRIDE_PREFIX = "override#"
    REFRESH_MARKER = "#refresh"
    BATCH = 25  # BatchWriteItem's limit
    UNPROCESSED_ATTEMPTS = 5

    def __init__(self, dynamodb: Any, table: str, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self._db = dynamodb
        self.table = table
        self._sleep = sleep

    # ---- the pipeline's lookups: the account with its override applied -----------------------------------

    def by_id(self, account_id: str) -> Account | None:
        account = self.stored(account_id)
        return account.with_override(self.override(account_id)) if account else None

    def by_email(self, email: str) -> Account | None:
        try:
            answer = self._db.query(
                TableName=self.table,
                IndexName="by-email",
                KeyConditionExpression="email = :email",
                ExpressionAttributeValues={":email": {"S": email.lower()}},
            )
        except (ClientError, BotoCoreError) as exc:
            raise AccountsUnavailable(f"accounts lookup of a root address: {describe(exc)}") from None
        items = [Account.from_dict(from_item(i)) for i in answer["Items"]]
        # An address reused after an account closed or left: the active account wins.
        items.sort(key=lambda a: (not a.active, a.account_id))
        return items[0].with_override(self.override(items[0].account_id)) if items else None

    # ---- items as stored ----------------------------------------------------------------------------------

    def stored(self, account_id: str) -> Account | None:
        item = self._get(account_id)
        return Account.from_dict(item) if item else None

    def override(self, account_id: str) -> ContactOverride | None:
        item = self._get(self.OVERRIDE_PREFIX + account_id)
        return _override(item) if item else None

    def scan(self) -> tuple[dict[str, Account], dict[str, ContactOverride]]:
        """Every account and every override, in one read of the table."""
        accounts: dict[str, Account] = {}
        overrides: dict[str, ContactOverride] = {}
        try:
            for page in self._db.get_paginator("scan").paginate(TableName=self.table):
                for raw in page["Items"]:
                    item = from_item(raw)
                    key = str(item["account_id"])
                    if key.startswith(self.OVERRIDE_PREFIX):
                        override = _override(item)
                        overrides[override.account_id] = override
                    elif not key.startswith("#"):
                        accounts[key] = Account.from_dict(item)
        except (ClientError, BotoCoreError) as exc:
            raise AccountsUnavailable(f"accounts table {self.table}: {describe(exc)}") from None
        return accounts, overrides

    def load_accounts(self) -> dict[str, Account]:
        return self.scan()[0]

    def write(self, accounts: Sequence[Account]) -> WriteResult:
        """Put the accounts, 25 per BatchWriteItem; what DynamoDB leaves unprocessed is retried a few times with a
        short backoff. Failures are returned, never raised half-way."""
        written, requests = 0, 0
        failed: list[str] = []
        errors: list[str] = []
        for start in range(0, len(accounts), self.BATCH):
            batch = {a.account_id: a for a in accounts[start : start + self.BATCH]}
            pending = [{"PutRequest": {"Item": to_item(a.to_dict())}} for a in batch.values()]
            for attempt in range(self.UNPROCESSED_ATTEMPTS):
                if attempt:
                    self._sleep(min(0.05 * 2**attempt, 1.0))
                requests += 1
                try:
                    answer = self._db.batch_write_item(RequestItems={self.table: pending})
                except (ClientError, BotoCoreError) as exc:
                    errors.append(describe(exc))
                    break
                pending = answer.get("UnprocessedItems", {}).get(self.table, [])
                if not pending:
                    break
            left = {str(from_item(r["PutRequest"]["Item"])["account_id"]) for r in pending}
            failed.extend(left)
            written += len(batch) - len(left)
        return WriteResult(written, tuple(failed), tuple(dict.fromkeys(errors)), requests)

    def put_all(self, accounts: Iterable[Account]) -> int:
        result = self.write(list(accounts))
        if result.failed:
            raise AccountsUnavailable(
                f"{len(result.failed)} account(s) not written: {'; '.join(result.errors)}"
            )
        return result.written

    # ---- operators' overrides -----------------------------------------------------------------------------

    def overrides(self) -> dict[str, ContactOverride]:
        return self.scan()[1]

    def put_override(self, override: ContactOverride) -> None:
        item = {
            "account_id": self.OVERRIDE_PREFIX + override.account_id,
            "override_for": override.account_id,
            "override": json.dumps(override.to_entry(), ensure_ascii=False),
            "updated_at": now_iso(),
        }
        self._db.put_item(TableName=self.table, Item=to_item(item))

    def delete_override(self, account_id: str) -> None:
        self._db.delete_item(
            TableName=self.table, Key=to_item({"account_id": self.OVERRIDE_PREFIX + account_id})
        )

    # ---- the pipeline's refresh: one per window ------------------------------------------------------------

    def claim_refresh(self, now: datetime, window: timedelta) -> RefreshClaim:
        """Claim the refresh if none started within `window` (a claim older than that counts as crashed).
        Otherwise say what the last one is doing."""
        started = stamp(now)
        try:
            self._db.put_item(
                TableName=self.table,
                Item=to_item({"account_id": self.REFRESH_MARKER, "state": "running", "started_at": started}),
                ConditionExpression="attribute_not_exists(account_id) OR started_at < :cutoff",
                ExpressionAttributeValues=to_item({":cutoff": stamp(now - window)}),
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise AccountsUnavailable(f"accounts refresh marker: {describe(exc)}") from None
            held = self._get(self.REFRESH_MARKER, consistent=True) or {}
            return RefreshClaim(
                False,
                str(held.get("started_at", "")),
                str(held.get("state", "running")),
                held.get("finished_at"),
            )
        except BotoCoreError as exc:
            raise AccountsUnavailable(f"accounts refresh marker: {describe(exc)}") from None
        return RefreshClaim(True, started)

    def finish_refresh(self, claim: RefreshClaim, now: datetime, summary: dict[str, Any]) -> None:
        """Mark our refresh done (only if the marker is still ours)."""
        try:
            self._db.update_item(
                TableName=self.table,
                Key=to_item({"account_id": self.REFRESH_MARKER}),
                UpdateExpression="SET #s = :done, finished_at = :now, summary = :summary",
                ConditionExpression="started_at = :mine",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues=to_item(
                    {
                        ":done": "done",
                        ":now": stamp(now),
                        ":summary": json.dumps(summary),
                        ":mine": claim.started_at,
                    }
                ),
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise AccountsUnavailable(f"accounts refresh marker: {describe(exc)}") from None

    def _get(self, key: str, *, consistent: bool = False) -> dict[str, Any] | None:
        try:
            item = self._db.get_item(
                TableName=self.table, Key=to_item({"account_id": key}), ConsistentRead=consistent
            )
        except (ClientError, BotoCoreError) as exc:
            raise AccountsUnavailable(f"accounts read of {key}: {describe(exc)}") from None
        return from_item(item["Item"]) if "Item" in item else None


def _override(item: dict[str, Any]) -> ContactOverride:
    return ContactOverride.from_entry(str(item["override_for"]), json.loads(item.get("override") or "{}"))


@dataclass(frozen=True)
class LiveRule:
    """A rule as the pipeline uses it, with the version an edit must name (optimistic locking)."""

    rule: dict[str, Any]
    version: int
    file: str | None = None  # the rule file it was pushed from (or created for), for `rules pull`
    updated_at: str | None = None
    updated_by: str | None = None


class RulesTable:
    """The live rules: one item per rule (the rule's data as JSON in `body`) with a `version` every change raises.
    A change names the version it was made from; if the rule moved on meanwhile, it is refused (RuleConflict)
    instead of silently overwriting someone's edit. Each change writes a history record (who, when, why, before
    and after) in the same transaction. A removed rule stays as a tombstone, so its versions keep counting."""

    def __init__(self, dynamodb: Any, table: str, history_table: str | None = None) -> None:
        self._db = dynamodb
        self.table = table
        self.history_table = history_table

    def _items(self) -> list[dict[str, Any]]:
        try:
            pages = self._db.get_paginator("scan").paginate(TableName=self.table, ConsistentRead=True)
            return [from_item(i) for page in pages for i in page["Items"]]
        except (ClientError, BotoCoreError) as exc:
            raise RulesUnavailable(f"rules table {self.table}: {describe(exc)}") from None

    def load(self) -> list[dict[str, Any]]:
        """The rules in force, as data."""
        return [json.loads(i["body"]) for i in self._items() if not i.get("deleted")]

    def live(self, *, with_removed: bool = False) -> dict[str, LiveRule]:
        return {
            str(i["rule_id"]): LiveRule(
                json.loads(i["body"]) if i.get("body") else {},
                int(i.get("version", 0)),
                i.get("file"),
                i.get("updated_at"),
                i.get("updated_by"),
            )
            for i in self._items()
            if with_removed or not i.get("deleted")
        }

    def get(self, rule_id: str) -> LiveRule | None:
        """The rule's current item, a removed one included (its version still counts)."""
        try:
            answer = self._db.get_item(
                TableName=self.table, Key=to_item({"rule_id": rule_id}), ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise RulesUnavailable(f"rules table {self.table}: {describe(exc)}") from None
        if "Item" not in answer:
            return None
        item = from_item(answer["Item"])
        body = json.loads(item["body"]) if item.get("body") and not item.get("deleted") else {}
        return LiveRule(
            body,
            int(item.get("version", 0)),
            item.get("file"),
            item.get("updated_at"),
            item.get("updated_by"),
        )

    def change(
        self,
        rule_id: str,
        after: dict[str, Any] | None,
        *,
        expected_version: int,
        by: str,
        why: str,
        file: str | None = None,
        kind: str | None = None,
    ) -> int:
        """Set (or, with `after=None`, remove) a rule, made from `expected_version` (0: the rule is new). Returns
        the new version. Raises RuleConflict when the rule is no longer at that version."""
        if not self.history_table:
            raise RulesUnavailable("no rules history table configured: a live change needs its audit record")
        current = self.get(rule_id)
        before = current.rule if current and current.rule else None
        version = expected_version + 1
        at = now_iso()
        live: dict[str, Any] = {"rule_id": rule_id, "version": version, "updated_at": at, "updated_by": by}
        if after is None:
            live["deleted"] = True
        else:
            live["body"] = json.dumps(after, ensure_ascii=False, sort_keys=True)
            live["priority"] = after.get("priority", 100)
        if file or (current and current.file):
            live["file"] = file or (current.file if current else None)
        history: dict[str, Any] = {
            "rule_id": rule_id,
            "version": version,
            "at": at,
            "by": by,
            "why": why,
            "kind": kind or ("remove" if after is None else "create" if before is None else "update"),
        }
        if before is not None:
            history["before"] = json.dumps(before, ensure_ascii=False, sort_keys=True)
        if after is not None:
            history["after"] = live["body"]
        if expected_version == 0:
            # New, removed at version 0, or written before rules had versions (rootmail before the history table).
            condition: dict[str, Any] = {
                "ConditionExpression": (
                    "attribute_not_exists(rule_id) OR attribute_not_exists(version) OR version = :zero"
                )
            }
            values = {":zero": 0}
        else:
            condition = {"ConditionExpression": "version = :expected"}
            values = {":expected": expected_version}
        condition["ExpressionAttributeValues"] = to_item(values)
        try:
            self._db.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": self.table, "Item": to_item(live), **condition}},
                    {
                        "Put": {
                            "TableName": self.history_table,
                            "Item": to_item(history),
                            "ConditionExpression": "attribute_not_exists(rule_id)",
                        }
                    },
                ]
            )
        except ClientError as exc:
            reasons = exc.response.get("CancellationReasons") or []
            if any(r.get("Code") == "ConditionalCheckFailed" for r in reasons):
                now = self.get(rule_id)
                raise RuleConflict(
                    f"rule {rule_id!r} changed since version {expected_version}: it is at version "
                    f"{now.version if now else 0}, last changed by {now.updated_by if now else '?'} at "
                    f"{now.updated_at if now else '?'}; nothing was written. Look at `rootmail rules history "
                    f"{rule_id}`, then edit from the current version"
                ) from None
            raise RulesUnavailable(f"rules table {self.table}: {describe(exc)}") from None
        except BotoCoreError as exc:
            raise RulesUnavailable(f"rules table {self.table}: {describe(exc)}") from None
        return version

    def create(self, rule: dict[str, Any], *, by: str, why: str, file: str | None = None) -> bool:
        """Add a new rule; False if a rule with its ID is in force."""
        current = self.get(rule["id"])
        if current is not None and current.rule:
            return False
        try:
            self.change(
                rule["id"],
                rule,
                expected_version=current.version if current else 0,
                by=by,
                why=why,
                file=file,
            )
        except RuleConflict:
            return False
        return True

    def history(self, rule_id: str) -> list[dict[str, Any]]:
        """A rule's history records, oldest first, `before` and `after` as data."""
        if not self.history_table:
            return []
        try:
            pages = self._db.get_paginator("query").paginate(
                TableName=self.history_table,
                KeyConditionExpression="rule_id = :id",
                ExpressionAttributeValues=to_item({":id": rule_id}),
                ConsistentRead=True,
            )
            records = [from_item(i) for page in pages for i in page["Items"]]
        except (ClientError, BotoCoreError) as exc:
            raise RulesUnavailable(f"rules history {self.history_table}: {describe(exc)}") from None
        for record in records:
            for side in ("before", "after"):
                if side in record:
                    record[side] = json.loads(record[side])
        return records

    def rollback(self, rule_id: str, version: int, *, by: str, why: str) -> int:
        """Put the rule back exactly as it was at `version` (or removed, if that version removed it)."""
        records = {int(r["version"]): r for r in self.history(rule_id)}
        if version not in records:
            known = ", ".join(str(v) for v in sorted(records)) or "none"
            raise RuleError(f"rule {rule_id!r} has no version {version} (versions: {known})")
        current = self.get(rule_id)
        return self.change(
            rule_id,
            records[version].get("after"),
            expected_version=current.version if current else 0,
            by=by,
            why=why or f"rollback to version {version}",
            kind=f"rollback to {version}",
        )


class SlackRequests:
    """The signatures of Slack requests that changed something, remembered past Slack's 5-minute window so a
    replayed request is refused (DynamoDB's TTL removes them later)."""

    KEEP = timedelta(minutes=10)

    def __init__(self, dynamodb: Any, table: str) -> None:
        self._db = dynamodb
        self.table = table

    def first_time(self, signature: str, what: str) -> bool:
        """Remember the signature; False when it was already seen (a replay)."""
        expires = int((datetime.now(UTC) + self.KEEP).timestamp())
        try:
            self._db.put_item(
                TableName=self.table,
                Item=to_item({"signature": signature, "what": what, "at": now_iso(), "expires_at": expires}),
                ConditionExpression="attribute_not_exists(signature)",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise LedgerUnavailable(f"slack requests table: {describe(exc)}") from None
        except BotoCoreError as exc:
            raise LedgerUnavailable(f"slack requests table: {describe(exc)}") from None
        return True


class DeliveryGuard:
    """One item per (mail, channel, recipient): a delivery is sent at most once, whatever replays the mail.

    The item goes `claimed` → `sending` (just before the call to SES, Zendesk or Slack) → `sent` (with what proves
    it) or `failed`. A claim succeeds when nobody holds the key, when an earlier attempt failed, or when a `claimed`
    item is this execution's own (its retry) or older than the lease (its holder died before sending). A `sending`
    item whose holder died may or may not have been delivered: for SES and Slack, which cannot tell a repeat, it is
    never taken over (`DeliveryUnconfirmed`, until an operator confirms or releases it with `rootmail deliveries`);
    a Zendesk delivery (idempotent by its key and marker) is taken over like a claim. Only `sent` counts as
    delivered; a live claim of another execution is `DeliveryInProgress`, which the state machine retries.
    """

    LEASE = timedelta(minutes=5)  # longer than any delivery function's timeout

    def __init__(self, dynamodb: Any, table: str) -> None:
        self._db = dynamodb
        self.table = table

    def claim(self, delivery_id: str, owner: str, *, resend_safe: bool = False) -> bool:
        """True: ours to deliver now. False: already delivered. Raises DeliveryInProgress or DeliveryUnconfirmed."""
        takeover = "#s = :claimed OR #s = :sending" if resend_safe else "#s = :claimed"
        try:
            self._db.put_item(
                TableName=self.table,
                Item=to_item(
                    {"delivery_id": delivery_id, "status": "claimed", "owner": owner, "at": now_iso()}
                ),
                ConditionExpression=(
                    f"attribute_not_exists(delivery_id) OR #s = :failed OR (({takeover}) AND (#o = :owner OR #at < :stale))"
                ),
                ExpressionAttributeNames={"#s": "status", "#o": "owner", "#at": "at"},
                ExpressionAttributeValues=to_item(
                    {
                        ":failed": "failed",
                        ":claimed": "claimed",
                        ":owner": owner,
                        ":stale": now_iso(-self.LEASE),
                        **({":sending": "sending"} if resend_safe else {}),
                    }
                ),
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                held = self.get(delivery_id) or {}
                if held.get("status") == "sent":
                    return False
                stale = str(held.get("at") or "") < now_iso(-self.LEASE)
                if held.get("status") == "sending" and (held.get("owner") == owner or stale):
                    raise DeliveryUnconfirmed(
                        f"{delivery_id} may have been delivered: its sender stopped between sending and recording "
                        f"it (at {held.get('at')}). Check, then `rootmail deliveries confirm {delivery_id}` (it "
                        f"arrived) or `rootmail deliveries resend {delivery_id}` (it did not), and retry the mail"
                    ) from None
                raise DeliveryInProgress(
                    f"{delivery_id} is claimed by {held.get('owner')} since {held.get('at')}"
                ) from None
            raise LedgerUnavailable(f"delivery guard {delivery_id}: {describe(exc)}") from None
        except BotoCoreError as exc:
            raise LedgerUnavailable(f"delivery guard {delivery_id}: {describe(exc)}") from None
        return True

    def sending(self, delivery_id: str, owner: str) -> None:
        """Mark our claim as being sent, just before the call that delivers (if this fails, nothing was sent)."""
        try:
            self._db.update_item(
                TableName=self.table,
                Key=to_item({"delivery_id": delivery_id}),
                UpdateExpression="SET #s = :sending, #at = :now",
                ConditionExpression="#o = :owner AND #s = :claimed",
                ExpressionAttributeNames={"#s": "status", "#o": "owner", "#at": "at"},
                ExpressionAttributeValues=to_item(
                    {":sending": "sending", ":claimed": "claimed", ":owner": owner, ":now": now_iso()}
                ),
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise DeliveryInProgress(f"{delivery_id}: the claim was taken over before sending") from None
            raise LedgerUnavailable(f"delivery guard {delivery_id}: {describe(exc)}") from None
        except BotoCoreError as exc:
            raise LedgerUnavailable(f"delivery guard {delivery_id}: {describe(exc)}") from None

    def first_copy(self, identity: str, mail_id: str) -> str:
        """Claim a mail's identity for this stored mail; the mail ID that holds it (this one, if first)."""
        key = f"identity#{identity}"
        try:
            self._db.put_item(
                TableName=self.table,
                Item=to_item({"delivery_id": key, "status": "identity", "owner": mail_id, "at": now_iso()}),
                ConditionExpression="attribute_not_exists(delivery_id) OR #o = :mine",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues=to_item({":mine": mail_id}),
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return str((self.get(key) or {}).get("owner") or mail_id)
            raise LedgerUnavailable(f"delivery guard {key}: {describe(exc)}") from None
        except BotoCoreError as exc:
            raise LedgerUnavailable(f"delivery guard {key}: {describe(exc)}") from None
        return mail_id

    def take_over(self, identity: str, previous: str, mail_id: str) -> bool:
        """Make this stored mail the identity's holder instead of `previous` (whose triage did not deliver it)."""
        try:
            self._db.update_item(
                TableName=self.table,
                Key=to_item({"delivery_id": f"identity#{identity}"}),
                UpdateExpression="SET #o = :mine, #at = :now",
                ConditionExpression="#o = :previous",
                ExpressionAttributeNames={"#o": "owner", "#at": "at"},
                ExpressionAttributeValues=to_item(
                    {":mine": mail_id, ":previous": previous, ":now": now_iso()}
                ),
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise LedgerUnavailable(f"delivery guard identity#{identity}: {describe(exc)}") from None
        except BotoCoreError as exc:
            raise LedgerUnavailable(f"delivery guard identity#{identity}: {describe(exc)}") from None
        return True

    def settle(self, delivery_id: str, status: str, detail: dict[str, Any]) -> None:
        """Mark a claimed delivery `sent` (with what proves it) or `failed` (so a later attempt may claim it)."""
        try:
            self._db.update_item(
                TableName=self.table,
                Key=to_item({"delivery_id": delivery_id}),
                UpdateExpression="SET #s = :status, detail = :detail, settled_at = :now",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=to_item(
                    {":status": status, ":detail": json.dumps(detail, ensure_ascii=False), ":now": now_iso()}
                ),
            )
        except (ClientError, BotoCoreError) as exc:
            if is_transient(exc):
                raise LedgerUnavailable(f"delivery guard {delivery_id}: {describe(exc)}") from None
            raise

    def get(self, delivery_id: str) -> dict[str, Any] | None:
        item = self._db.get_item(
            TableName=self.table, Key=to_item({"delivery_id": delivery_id}), ConsistentRead=True
        )
        if "Item" not in item:
            return None
        record = from_item(item["Item"])
        if "detail" in record:
            record["detail"] = json.loads(record["detail"])
        return record
