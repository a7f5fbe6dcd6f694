"""The ledger: one record per stored mail, what it is, what happened to it, and its terminal state."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from rootmail.adapters.dynamodb.items import (
    conditional_write,
    from_item,
    serialize,
    to_item,
    unavailable,
    update_assignments,
)
from rootmail.app.ports import LEDGER_OVERVIEW
from rootmail.domain.moments import now_iso
from rootmail.domain.vocabulary import IN_FLIGHT
from rootmail.errors import (
    LedgerUnavailable,
)


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
        assignments, names, values = update_assignments(fields)
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
        assignments, names, values = update_assignments({**fields, "updated_at": now})
        # A mail that failed before Parse opened its record still gets when it was first seen.
        names["#received"], values[":now"] = "received_at", now
        assignments.append("#received = if_not_exists(#received, :now)")
        self._update(mail_id, "SET " + ", ".join(assignments), values, names)

    def count_redrive(self, mail_id: str, *, execution: str, bucket: str, key: str, received_at: str) -> None:
        """Count one more re-drive of the mail by the reconciler (one atomic increment; a mail with no record gets
        one that holds only this count and where it is stored, no state) and name its execution."""
        fields = {"last_redrive": execution}
        assignments, names, values = update_assignments(fields)
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
        assignments, names, values = update_assignments(
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
        with unavailable(LedgerUnavailable, f"ledger read of {mail_id}"):
            item = self._db.get_item(
                TableName=self.table, Key=to_item({"mail_id": mail_id}), ConsistentRead=True
            )
        return from_item(item["Item"]) if "Item" in item else None

    def scan(self, *, fields: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
        """Every record (only `fields` of each, when given)."""
        kwargs: dict[str, Any] = {"TableName": self.table}
        if fields:
            names = {f"#p{i}": name for i, name in enumerate(fields)}
            kwargs.update(ProjectionExpression=", ".join(names), ExpressionAttributeNames=names)
        with unavailable(LedgerUnavailable, "ledger scan"):
            for page in self._db.get_paginator("scan").paginate(**kwargs):
                for item in page["Items"]:
                    yield from_item(item)

    OVERVIEW = LEDGER_OVERVIEW
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
                with unavailable(LedgerUnavailable, "ledger read"):
                    answer = self._db.batch_get_item(RequestItems=request)
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
        with unavailable(LedgerUnavailable, f"ledger query of {state} mail"):
            for page in pages:
                for item in page["Items"]:
                    yield from_item(item)

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
            "ExpressionAttributeValues": {k: serialize(v) for k, v in values.items()},
        }
        if names:
            kwargs["ExpressionAttributeNames"] = names
        if condition:
            kwargs["ConditionExpression"] = condition
        return conditional_write(
            self._db.update_item, LedgerUnavailable, f"ledger write of {mail_id}", **kwargs
        )
