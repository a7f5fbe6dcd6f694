"""DynamoDB tables: the ledger, the accounts, the live rules and the per-delivery guard.

Low-level clients (thread-safe, unlike boto3 resources) with the type (de)serialiser.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from rootmail.adapters.aws import describe, error_code, is_transient
from rootmail.domain.accounts import Account
from rootmail.errors import AccountsUnavailable, DeliveryInProgress, LedgerUnavailable, RulesUnavailable

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def now_iso(delta: timedelta = timedelta(0)) -> str:
    return (datetime.now(UTC) + delta).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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

    IN_FLIGHT = "in-flight"

    def __init__(self, dynamodb: Any, table: str) -> None:
        self._db = dynamodb
        self.table = table

    def open(self, mail_id: str, *, bucket: str, key: str, execution: str, summary: dict[str, Any]) -> None:
        """Mark the mail in flight for this execution; keep when it was first received and count attempts."""
        now = now_iso()
        fields = {
            "state": self.IN_FLIGHT,
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

    def get(self, mail_id: str) -> dict[str, Any] | None:
        try:
            item = self._db.get_item(
                TableName=self.table, Key=to_item({"mail_id": mail_id}), ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise LedgerUnavailable(f"ledger read of {mail_id}: {describe(exc)}") from None
        return from_item(item["Item"]) if "Item" in item else None

    def scan(self) -> Iterator[dict[str, Any]]:
        for page in self._db.get_paginator("scan").paginate(TableName=self.table):
            for item in page["Items"]:
                yield from_item(item)

    def _update(
        self, mail_id: str, expression: str, values: dict[str, Any], names: dict[str, str] | None = None
    ) -> None:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "Key": to_item({"mail_id": mail_id}),
            "UpdateExpression": expression,
            "ExpressionAttributeValues": {k: _serializer.serialize(v) for k, v in values.items()},
        }
        if names:
            kwargs["ExpressionAttributeNames"] = names
        try:
            self._db.update_item(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise LedgerUnavailable(f"ledger write of {mail_id}: {describe(exc)}") from None


class AccountsTable:
    """Accounts by ID and by root address (GSI `by-email`)."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self._db = dynamodb
        self.table = table

    def by_id(self, account_id: str) -> Account | None:
        try:
            item = self._db.get_item(TableName=self.table, Key=to_item({"account_id": account_id}))
        except (ClientError, BotoCoreError) as exc:
            raise AccountsUnavailable(f"accounts read of {account_id}: {describe(exc)}") from None
        return Account.from_dict(from_item(item["Item"])) if "Item" in item else None

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
        # An address reused after an account closed: the active account wins.
        items.sort(key=lambda a: (a.status != "ACTIVE", a.account_id))
        return items[0] if items else None

    def put_all(self, accounts: Iterable[Account]) -> int:
        count = 0
        for account in accounts:
            self._db.put_item(TableName=self.table, Item=to_item(account.to_dict()))
            count += 1
        return count


class RulesTable:
    """The live rules: one item per rule, the rule's data as JSON in `body`."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self._db = dynamodb
        self.table = table

    def load(self) -> list[dict[str, Any]]:
        try:
            pages = self._db.get_paginator("scan").paginate(TableName=self.table, ConsistentRead=True)
            items = [from_item(i) for page in pages for i in page["Items"]]
        except (ClientError, BotoCoreError) as exc:
            raise RulesUnavailable(f"rules table {self.table}: {describe(exc)}") from None
        return [json.loads(i["body"]) for i in items]

    def put_all(self, rules: Iterable[dict[str, Any]]) -> int:
        count = 0
        for rule in rules:
            item = {
                "rule_id": rule["id"],
                "priority": rule["priority"],
                "body": json.dumps(rule, ensure_ascii=False),
            }
            self._db.put_item(TableName=self.table, Item=to_item(item))
            count += 1
        return count


class DeliveryGuard:
    """One item per (mail, channel, recipient): a delivery is sent at most once, whatever replays the mail.

    A claim succeeds when nobody holds the key, when an earlier attempt failed, when this same execution holds it
    (its own retry after a crash), or when another holder's claim is older than the lease (it crashed or timed
    out between claim and settle). Only a key marked `sent` counts as delivered; a live claim of another execution
    is `DeliveryInProgress`, which the state machine retries.
    """

    LEASE = timedelta(minutes=5)  # longer than any delivery function's timeout

    def __init__(self, dynamodb: Any, table: str) -> None:
        self._db = dynamodb
        self.table = table

    def claim(self, delivery_id: str, owner: str) -> bool:
        """True: ours to deliver now. False: already delivered. Raises DeliveryInProgress."""
        try:
            self._db.put_item(
                TableName=self.table,
                Item=to_item(
                    {"delivery_id": delivery_id, "status": "claimed", "owner": owner, "at": now_iso()}
                ),
                ConditionExpression=(
                    "attribute_not_exists(delivery_id) OR #s = :failed OR (#s <> :sent AND (#o = :owner OR #at < :stale))"
                ),
                ExpressionAttributeNames={"#s": "status", "#o": "owner", "#at": "at"},
                ExpressionAttributeValues=to_item(
                    {":failed": "failed", ":owner": owner, ":sent": "sent", ":stale": now_iso(-self.LEASE)}
                ),
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                held = self.get(delivery_id) or {}
                if held.get("status") == "sent":
                    return False
                raise DeliveryInProgress(
                    f"{delivery_id} is claimed by {held.get('owner')} since {held.get('at')}"
                ) from None
            raise LedgerUnavailable(f"delivery guard {delivery_id}: {describe(exc)}") from None
        except BotoCoreError as exc:
            raise LedgerUnavailable(f"delivery guard {delivery_id}: {describe(exc)}") from None
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
