"""Slack requests already answered: a retried delivery of the same signed request is answered once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from rootmail.adapters.dynamodb.items import conditional_write, to_item
from rootmail.domain.moments import now_iso
from rootmail.errors import (
    LedgerUnavailable,
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
        return conditional_write(
            self._db.put_item,
            LedgerUnavailable,
            "slack requests table",
            TableName=self.table,
            Item=to_item({"signature": signature, "what": what, "at": now_iso(), "expires_at": expires}),
            ConditionExpression="attribute_not_exists(signature)",
        )
