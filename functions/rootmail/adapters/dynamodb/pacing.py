"""The shared send rates, one item per limit in the deliveries table (`pace#ses`, `pace#zendesk`): its theoretical
arrival time in milliseconds (domain/pacing.py)."""

from __future__ import annotations

from typing import Any

from rootmail.adapters.dynamodb.items import conditional_write, from_item, to_item, unavailable
from rootmail.domain.pacing import Slot, interval_us
from rootmail.errors import LedgerUnavailable


class Pacer:
    def __init__(self, dynamodb: Any, table: str) -> None:
        self._db = dynamodb
        self.table = table

    def reserve(self, limit: str, cost: int, rate_per_second: float, *, now_ms: int) -> Slot:
        now = now_ms * 1000
        step = interval_us(cost, rate_per_second)
        key = to_item({"delivery_id": f"pace#{limit}"})
        # The limit is free: the slot is now. One conditional write; it fails when others hold later slots.
        idle = conditional_write(
            self._db.update_item,
            LedgerUnavailable,
            f"send rate {limit}",
            TableName=self.table,
            Key=key,
            UpdateExpression="SET tat = :next",
            ConditionExpression="attribute_not_exists(tat) OR tat <= :now",
            ExpressionAttributeValues=to_item({":next": now + step, ":now": now}),
        )
        if idle:
            return Slot(now // 1000, now // 1000)
        # Busy: the next slot after everyone's, by an atomic add (no lost update, however many ask at once).
        with unavailable(LedgerUnavailable, f"send rate {limit}"):
            answer = self._db.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression="ADD tat :step",
                ExpressionAttributeValues=to_item({":step": step}),
                ReturnValues="UPDATED_NEW",
            )
        tat = int(from_item(answer["Attributes"])["tat"])
        return Slot(max(tat - step, now) // 1000, now // 1000)
