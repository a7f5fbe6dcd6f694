"""The operators' alert batches (domain/alerts.py) in the deliveries table. A batch is one small item (`alerts#…`:
the count, up to 30 accounts, the message's channel and ts, how many it shows, whose turn it is to post or update),
so that a burst's writes to it stay cheap; each mail's membership is its own item (`alertmember#…`, written with the
count in one transaction: a mail is counted once however often it joins); the message's base, the first mail's
alert, is one more (`alertmessage#…`), written once."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rootmail.adapters.aws import describe
from rootmail.adapters.dynamodb.items import conditional_write, from_item, to_item, unavailable
from rootmail.domain.alerts import MAX_NAMED_ACCOUNTS, TURN_LEASE_MS, AlertBatch, Membership
from rootmail.errors import LedgerUnavailable


class AlertBatches:
    def __init__(self, dynamodb: Any, table: str) -> None:
        self._db = dynamodb
        self.table = table

    def _key(self, name: str) -> dict[str, Any]:
        return to_item({"delivery_id": name})

    def _read(self, name: str) -> dict[str, Any] | None:
        with unavailable(LedgerUnavailable, f"alert batch {name}"):
            answer = self._db.get_item(TableName=self.table, Key=self._key(name), ConsistentRead=True)
        return from_item(answer["Item"]) if "Item" in answer else None

    def _write(self, name: str, update: str, condition: str | None = None, **values: Any) -> bool:
        request: dict[str, Any] = {
            "TableName": self.table,
            "Key": self._key(name),
            "UpdateExpression": update,
            "ExpressionAttributeValues": to_item(values),
        }
        if condition:
            request["ConditionExpression"] = condition
        return conditional_write(self._db.update_item, LedgerUnavailable, f"alert batch {name}", **request)

    def join(
        self,
        batch_id: str,
        member: str,
        account_ids: Sequence[str],
        *,
        poster: str,
        now_ms: int,
    ) -> Membership:
        """Count the member (a mail's alert) in the batch, once: joining again returns its first membership,
        whatever batch it is in."""
        name = f"alertmember#{member}"
        try:
            self._db.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": to_item({"delivery_id": name, "batch": batch_id, "joined": now_ms}),
                            "ConditionExpression": "attribute_not_exists(delivery_id)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": self._key(batch_id),
                            "UpdateExpression": (
                                "ADD mails :one SET opened = if_not_exists(opened, :now), "
                                "poster = if_not_exists(poster, :poster), "
                                "poster_at = if_not_exists(poster_at, :now)"
                            ),
                            "ExpressionAttributeValues": to_item(
                                {":one": 1, ":now": now_ms, ":poster": poster}
                            ),
                        }
                    },
                ]
            )
            joined = True
        except ClientError as exc:
            reasons = exc.response.get("CancellationReasons") or []
            if not reasons or reasons[0].get("Code") != "ConditionalCheckFailed":
                raise LedgerUnavailable(f"alert batch {batch_id}: {describe(exc)}") from None
            joined = False  # a member already: its first membership stands
        except BotoCoreError as exc:
            raise LedgerUnavailable(f"alert batch {batch_id}: {describe(exc)}") from None
        held = self._read(name) or {}
        if "position" in held:
            return Membership(held["batch"], int(held["position"]), int(held["joined"]))
        batch_id = str(held.get("batch", batch_id))
        if joined and account_ids:
            # Best effort: a batch names its first accounts; the count covers the rest.
            self._write(
                batch_id,
                "ADD accounts :accounts",
                "attribute_not_exists(accounts) OR size(accounts) < :named",
                **{":accounts": set(account_ids), ":named": MAX_NAMED_ACCOUNTS},
            )
        # The count as read now is at least the member's place: the message showing it counts the member.
        position = int((self._read(batch_id) or {}).get("mails", 1))
        self._position(name, position)
        return Membership(batch_id, position, int(held.get("joined", now_ms)))

    def _position(self, name: str, position: int) -> None:
        with unavailable(LedgerUnavailable, f"alert batch {name}"):
            self._db.update_item(
                TableName=self.table,
                Key=self._key(name),
                UpdateExpression="SET #p = :p",
                ExpressionAttributeNames={"#p": "position"},
                ExpressionAttributeValues=to_item({":p": position}),
            )

    def get(self, batch_id: str) -> AlertBatch | None:
        item = self._read(batch_id)
        if item is None:
            return None
        return AlertBatch(
            batch_id=batch_id,
            count=int(item.get("mails", 0)),
            accounts=tuple(item.get("accounts", [])),
            opened_ms=int(item.get("opened", 0)),
            shown=int(item.get("shown", 0)),
            channel=item.get("channel"),
            ts=item.get("ts"),
            next_update_ms=int(item.get("next_update", 0)),
            generation=int(item.get("generation", 0)),
        )

    def claim_post(self, batch_id: str, poster: str, *, now_ms: int) -> bool:
        """The turn to post the batch's message: its first mail's, or anyone's once that one's turn is over."""
        return self._write(
            batch_id,
            "SET poster = :me, poster_at = :now",
            "attribute_not_exists(ts) AND (poster = :me OR poster_at < :stale)",
            **{":me": poster, ":now": now_ms, ":stale": now_ms - TURN_LEASE_MS},
        )

    def save_message(self, batch_id: str, text: str, blocks: Sequence[dict[str, Any]]) -> None:
        """The message's base, which every update shows under its count: the poster's own alert."""
        with unavailable(LedgerUnavailable, f"alert batch {batch_id}"):
            self._db.put_item(
                TableName=self.table,
                Item=to_item(
                    {
                        "delivery_id": f"alertmessage#{batch_id}",
                        "text": text,
                        "blocks": json.dumps(list(blocks)),
                    }
                ),
            )

    def message(self, batch_id: str) -> tuple[str, list[dict[str, Any]]] | None:
        item = self._read(f"alertmessage#{batch_id}")
        return None if item is None else (str(item["text"]), json.loads(item["blocks"]))

    def posted(self, batch_id: str, poster: str, *, channel: str, ts: str, shown: int) -> bool:
        """Record the posted message; False when another poster's is recorded (this one is then left over)."""
        return self._write(
            batch_id,
            "SET channel = :channel, ts = :ts, shown = :shown",
            "(attribute_not_exists(ts) AND poster = :me) OR ts = :ts",
            **{":channel": channel, ":ts": ts, ":shown": shown, ":me": poster},
        )

    def take_turn(self, batch_id: str, owner: str, *, now_ms: int) -> bool:
        """The turn to update the message: nobody else's turn is running and the last update is old enough."""
        return self._write(
            batch_id,
            "SET turn_owner = :me, turn_until = :until",
            "attribute_exists(ts) AND (attribute_not_exists(turn_until) OR turn_until < :now) "
            "AND (attribute_not_exists(next_update) OR next_update <= :now)",
            **{":me": owner, ":until": now_ms + TURN_LEASE_MS, ":now": now_ms},
        )

    def end_turn(self, batch_id: str, owner: str, *, shown: int | None, next_ms: int) -> None:
        """End the turn: the message now counts `shown` mails (None: the update failed), and the next update may
        come at `next_ms`. Nothing, if the turn was no longer ours."""
        update = "SET next_update = :next REMOVE turn_until, turn_owner"
        values: dict[str, Any] = {":next": next_ms, ":me": owner}
        if shown is not None:
            update = "SET next_update = :next, shown = :shown REMOVE turn_until, turn_owner"
            values[":shown"] = shown
        self._write(batch_id, update, "turn_owner = :me", **values)

    def message_gone(self, batch_id: str, ts: str, poster: str, *, now_ms: int) -> bool:
        """The message was deleted in Slack: forget it, and take the turn to post a new one."""
        return self._write(
            batch_id,
            "SET poster = :me, poster_at = :now, shown = :zero ADD generation :one "
            "REMOVE ts, channel, turn_until, turn_owner",
            "ts = :ts",
            **{":me": poster, ":now": now_ms, ":ts": ts, ":zero": 0, ":one": 1},
        )
