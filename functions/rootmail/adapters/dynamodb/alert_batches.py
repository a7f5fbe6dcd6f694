"""The operators' alert batches (domain/alerts.py), one item per batch in the deliveries table: the mail IDs and
accounts in it (string sets: joining twice is joining once), the mail that posts its message, the message, how many
mails it shows, and when it may next be updated."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from rootmail.adapters.aws import error_code
from rootmail.adapters.dynamodb.items import conditional_write, from_item, to_item, unavailable
from rootmail.domain.alerts import AlertBatch, Joined
from rootmail.errors import LedgerUnavailable


class AlertBatches:
    def __init__(self, dynamodb: Any, table: str) -> None:
        self._db = dynamodb
        self.table = table

    def join(
        self,
        batch_id: str,
        mail_id: str,
        account_ids: Sequence[str],
        *,
        headline: str,
        cap: int,
        now_ms: int,
    ) -> Joined | None:
        """Put the mail in the batch; None when the batch is full (the mail tries the next part)."""
        adds = "ADD mails :me_set" + (", accounts :accounts" if account_ids else "")
        values: dict[str, Any] = {
            ":me_set": {mail_id},
            ":me": mail_id,
            ":cap": cap,
            ":now": now_ms,
            ":headline": headline,
        }
        if account_ids:
            values[":accounts"] = set(account_ids)
        with unavailable(LedgerUnavailable, f"alert batch {batch_id}"):
            try:
                answer = self._db.update_item(
                    TableName=self.table,
                    Key=to_item({"delivery_id": batch_id}),
                    UpdateExpression=(
                        f"{adds} SET poster = if_not_exists(poster, :me), opened = if_not_exists(opened, :now), "
                        "headline = if_not_exists(headline, :headline)"
                    ),
                    ConditionExpression="attribute_not_exists(mails) OR size(mails) < :cap OR contains(mails, :me)",
                    ExpressionAttributeValues=to_item(values),
                    ReturnValues="ALL_NEW",
                )
            except ClientError as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    return None
                raise
        item = from_item(answer["Attributes"])
        return Joined(count=len(item["mails"]), poster=item["poster"] == mail_id)

    def take_post(self, batch_id: str, mail_id: str, *, stale_before_ms: int, now_ms: int) -> bool:
        """Become the batch's poster: its first mail died before posting (nothing posted since `stale_before_ms`)."""
        return conditional_write(
            self._db.update_item,
            LedgerUnavailable,
            f"alert batch {batch_id}",
            TableName=self.table,
            Key=to_item({"delivery_id": batch_id}),
            UpdateExpression="SET poster = :me, opened = :now",
            ConditionExpression="attribute_not_exists(ts) AND opened < :stale",
            ExpressionAttributeValues=to_item({":me": mail_id, ":now": now_ms, ":stale": stale_before_ms}),
        )

    def posted(
        self, batch_id: str, *, channel: str, ts: str, text: str, blocks: Sequence[dict[str, Any]]
    ) -> None:
        with unavailable(LedgerUnavailable, f"alert batch {batch_id}"):
            self._db.update_item(
                TableName=self.table,
                Key=to_item({"delivery_id": batch_id}),
                UpdateExpression="SET channel = :channel, ts = :ts, message_text = :text, blocks = :blocks, shown = :one",
                ExpressionAttributeValues=to_item(
                    {
                        ":channel": channel,
                        ":ts": ts,
                        ":text": text,
                        ":blocks": json.dumps(list(blocks)),
                        ":one": 1,
                    }
                ),
            )

    def get(self, batch_id: str) -> AlertBatch | None:
        with unavailable(LedgerUnavailable, f"alert batch {batch_id}"):
            answer = self._db.get_item(
                TableName=self.table, Key=to_item({"delivery_id": batch_id}), ConsistentRead=True
            )
        if "Item" not in answer:
            return None
        item = from_item(answer["Item"])
        return AlertBatch(
            batch_id=batch_id,
            count=len(item.get("mails", [])),
            accounts=tuple(item.get("accounts", [])),
            headline=str(item.get("headline", "")),
            opened_ms=int(item.get("opened", 0)),
            shown=int(item.get("shown", 0)),
            channel=item.get("channel"),
            ts=item.get("ts"),
            text=item.get("message_text"),
            blocks=tuple(json.loads(item["blocks"])) if item.get("blocks") else (),
            next_update_ms=int(item.get("next_update", 0)),
        )

    def take_update(self, batch_id: str, *, now_ms: int, next_ms: int) -> bool:
        """The turn to update the batch's message: nobody updated it since `next_update`."""
        return conditional_write(
            self._db.update_item,
            LedgerUnavailable,
            f"alert batch {batch_id}",
            TableName=self.table,
            Key=to_item({"delivery_id": batch_id}),
            UpdateExpression="SET next_update = :next",
            ConditionExpression="attribute_exists(ts) AND (attribute_not_exists(next_update) OR next_update <= :now)",
            ExpressionAttributeValues=to_item({":next": next_ms, ":now": now_ms}),
        )

    def mark_shown(self, batch_id: str, count: int) -> None:
        """The message now counts `count` mails (never fewer than an update already showed)."""
        conditional_write(
            self._db.update_item,
            LedgerUnavailable,
            f"alert batch {batch_id}",
            TableName=self.table,
            Key=to_item({"delivery_id": batch_id}),
            UpdateExpression="SET shown = :count",
            ConditionExpression="attribute_not_exists(shown) OR shown < :count",
            ExpressionAttributeValues=to_item({":count": count}),
        )
