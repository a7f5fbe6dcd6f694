"""The live rules table and its history: versioned changes, each with who, when and why, in one transaction."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rootmail.adapters.aws import describe
from rootmail.adapters.dynamodb.items import from_item, to_item, unavailable
from rootmail.domain.moments import now_iso
from rootmail.errors import (
    RuleConflict,
    RuleError,
    RulesUnavailable,
)


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
        with unavailable(RulesUnavailable, f"rules table {self.table}"):
            pages = self._db.get_paginator("scan").paginate(TableName=self.table, ConsistentRead=True)
            return [from_item(i) for page in pages for i in page["Items"]]

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
        with unavailable(RulesUnavailable, f"rules table {self.table}"):
            answer = self._db.get_item(
                TableName=self.table, Key=to_item({"rule_id": rule_id}), ConsistentRead=True
            )
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
        with unavailable(RulesUnavailable, f"rules history {self.history_table}"):
            pages = self._db.get_paginator("query").paginate(
                TableName=self.history_table,
                KeyConditionExpression="rule_id = :id",
                ExpressionAttributeValues=to_item({":id": rule_id}),
                ConsistentRead=True,
            )
            records = [from_item(i) for page in pages for i in page["Items"]]
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
