"""Contacts we stopped sending to after a permanent bounce or a complaint, until an operator clears them.

Bounces from dead customer addresses count against our own SES reputation: at 10 % SES pauses sending, and
then no customer gets any notice. One item per address; clearing keeps the item (who, when) for the record.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rootmail.adapters.aws import describe, error_code
from rootmail.adapters.dynamodb.items import conditional_write, from_item, to_item
from rootmail.domain.moments import now_iso
from rootmail.domain.ses_events import Suppression
from rootmail.errors import LedgerUnavailable

ACTIVE = "suppressed"
CLEARED = "cleared"


class SuppressionList:
    def __init__(self, dynamodb: Any, table: str) -> None:
        self._db = dynamodb
        self.table = table

    def suppress(self, suppression: Suppression) -> bool:
        """Record the address as suppressed; False when it already was (so operators are told once)."""
        item = {
            "address": suppression.address,
            "status": ACTIVE,
            "kind": suppression.kind,
            "reason": suppression.reason,
            "message_id": suppression.message_id,
            "mail_id": suppression.mail_id,
            "since": now_iso(),
        }
        return conditional_write(
            self._db.put_item,
            LedgerUnavailable,
            "suppression of a contact",
            TableName=self.table,
            Item=to_item(item),
            ConditionExpression="attribute_not_exists(address) OR #s <> :active",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=to_item({":active": ACTIVE}),
        )

    def suppressed(self, addresses: Iterable[str]) -> set[str]:
        """Which of these addresses we must not send to."""
        wanted = sorted({a.lower() for a in addresses})
        found: set[str] = set()
        for start in range(0, len(wanted), 100):  # BatchGetItem takes 100 keys
            request = {self.table: {"Keys": [to_item({"address": a}) for a in wanted[start : start + 100]]}}
            try:
                while request:
                    answer = self._db.batch_get_item(RequestItems=request)
                    for item in answer["Responses"].get(self.table, []):
                        record = from_item(item)
                        if record.get("status") == ACTIVE:
                            found.add(str(record["address"]))
                    request = answer.get("UnprocessedKeys") or {}
            except (ClientError, BotoCoreError) as exc:
                raise LedgerUnavailable(f"suppression list: {describe(exc)}") from None
        return found

    def clear(self, address: str, operator: str) -> bool:
        """Allow sending to the address again; False when it was not suppressed."""
        try:
            self._db.update_item(
                TableName=self.table,
                Key=to_item({"address": address.lower()}),
                UpdateExpression="SET #s = :cleared, cleared_by = :by, cleared_at = :now",
                ConditionExpression="#s = :active",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=to_item(
                    {":cleared": CLEARED, ":by": operator, ":now": now_iso(), ":active": ACTIVE}
                ),
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def list(self) -> Iterator[dict[str, Any]]:
        for page in self._db.get_paginator("scan").paginate(TableName=self.table):
            for item in page["Items"]:
                yield from_item(item)
