"""The delivery guard: one item per (mail, channel, recipient), so a delivery is made at most once whatever
replays the mail; and the claim on a mail's identity that makes a copy stored twice be triaged once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rootmail.adapters.aws import describe, is_transient
from rootmail.adapters.dynamodb.items import conditional_write, from_item, to_item, unavailable
from rootmail.domain.moments import now_iso
from rootmail.errors import (
    DeliveryInProgress,
    DeliveryUnconfirmed,
    LedgerUnavailable,
)
from rootmail.observability import logger


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
    # A case's hold: longer than the ticket function's timeout (60 s), shorter than the Ticket state's wait for
    # DeliveryInProgress (statemachine/triage.asl.json), so a waiting mail outlives a dead holder's hold.
    HOLD_LEASE = timedelta(seconds=90)

    def __init__(self, dynamodb: Any, table: str) -> None:
        self._db = dynamodb
        self.table = table

    def claim(self, delivery_id: str, owner: str, *, resend_safe: bool = False) -> bool:
        """True: ours to deliver now. False: already delivered. Raises DeliveryInProgress or DeliveryUnconfirmed."""
        takeover = "#s = :claimed OR #s = :sending" if resend_safe else "#s = :claimed"
        claimed = conditional_write(
            self._db.put_item,
            LedgerUnavailable,
            f"delivery guard {delivery_id}",
            TableName=self.table,
            Item=to_item({"delivery_id": delivery_id, "status": "claimed", "owner": owner, "at": now_iso()}),
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
        if claimed:
            return True
        held = self.get(delivery_id) or {}
        if held.get("status") == "sent":
            return False
        stale = str(held.get("at") or "") < now_iso(-self.LEASE)
        if held.get("status") == "sending" and (held.get("owner") == owner or stale):
            raise DeliveryUnconfirmed(
                f"{delivery_id} may have been delivered: its sender stopped between sending and recording "
                f"it (at {held.get('at')}). Check, then `rootmail deliveries confirm {delivery_id}` (it "
                f"arrived) or `rootmail deliveries resend {delivery_id}` (it did not), and retry the mail"
            )
        raise DeliveryInProgress(f"{delivery_id} is claimed by {held.get('owner')} since {held.get('at')}")

    def sending(self, delivery_id: str, owner: str) -> None:
        """Mark our claim as being sent, just before the call that delivers (if this fails, nothing was sent)."""
        marked = conditional_write(
            self._db.update_item,
            LedgerUnavailable,
            f"delivery guard {delivery_id}",
            TableName=self.table,
            Key=to_item({"delivery_id": delivery_id}),
            UpdateExpression="SET #s = :sending, #at = :now",
            ConditionExpression="#o = :owner AND #s = :claimed",
            ExpressionAttributeNames={"#s": "status", "#o": "owner", "#at": "at"},
            ExpressionAttributeValues=to_item(
                {":sending": "sending", ":claimed": "claimed", ":owner": owner, ":now": now_iso()}
            ),
        )
        if not marked:
            raise DeliveryInProgress(f"{delivery_id}: the claim was taken over before sending")

    def first_copy(self, identity: str, mail_id: str) -> str:
        """Claim a mail's identity for this stored mail; the mail ID that holds it (this one, if first)."""
        key = f"identity#{identity}"
        first = conditional_write(
            self._db.put_item,
            LedgerUnavailable,
            f"delivery guard {key}",
            TableName=self.table,
            Item=to_item({"delivery_id": key, "status": "identity", "owner": mail_id, "at": now_iso()}),
            ConditionExpression="attribute_not_exists(delivery_id) OR #o = :mine",
            ExpressionAttributeNames={"#o": "owner"},
            ExpressionAttributeValues=to_item({":mine": mail_id}),
        )
        return mail_id if first else str((self.get(key) or {}).get("owner") or mail_id)

    def take_over(self, identity: str, previous: str, mail_id: str) -> bool:
        """Make this stored mail the identity's holder instead of `previous` (whose triage did not deliver it)."""
        return conditional_write(
            self._db.update_item,
            LedgerUnavailable,
            f"delivery guard identity#{identity}",
            TableName=self.table,
            Key=to_item({"delivery_id": f"identity#{identity}"}),
            UpdateExpression="SET #o = :mine, #at = :now",
            ConditionExpression="#o = :previous",
            ExpressionAttributeNames={"#o": "owner", "#at": "at"},
            ExpressionAttributeValues=to_item({":mine": mail_id, ":previous": previous, ":now": now_iso()}),
        )

    @contextmanager
    def holding(self, key: str, owner: str) -> Iterator[None]:
        """Hold `key` (a support case's thread) while the block runs: another owner's live hold is
        DeliveryInProgress, which the state machine retries; a hold older than the lease (its holder died) is taken
        over. Across Lambda containers, so that two mails of one case never both find no ticket and create one."""
        held = conditional_write(
            self._db.put_item,
            LedgerUnavailable,
            f"delivery guard {key}",
            TableName=self.table,
            Item=to_item({"delivery_id": key, "status": "held", "owner": owner, "at": now_iso()}),
            ConditionExpression="attribute_not_exists(delivery_id) OR #s = :released OR #o = :owner OR #at < :stale",
            ExpressionAttributeNames={"#s": "status", "#o": "owner", "#at": "at"},
            ExpressionAttributeValues=to_item(
                {":released": "released", ":owner": owner, ":stale": now_iso(-self.HOLD_LEASE)}
            ),
        )
        if not held:
            holder = self.get(key) or {}
            raise DeliveryInProgress(f"{key} is held by {holder.get('owner')} since {holder.get('at')}")
        try:
            yield
        finally:
            # Released however the block ended (an update: the steps may not delete); a release that fails leaves
            # the hold to its lease.
            try:
                self._db.update_item(
                    TableName=self.table,
                    Key=to_item({"delivery_id": key}),
                    UpdateExpression="SET #s = :released, #at = :now",
                    ConditionExpression="#o = :owner",
                    ExpressionAttributeNames={"#s": "status", "#o": "owner", "#at": "at"},
                    ExpressionAttributeValues=to_item(
                        {":released": "released", ":owner": owner, ":now": now_iso()}
                    ),
                )
            except (ClientError, BotoCoreError) as exc:
                logger.warning(
                    "hold not released: its lease ends it", extra={"hold": key, "error": describe(exc)}
                )

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
        with unavailable(LedgerUnavailable, f"delivery guard {delivery_id}"):
            item = self._db.get_item(
                TableName=self.table, Key=to_item({"delivery_id": delivery_id}), ConsistentRead=True
            )
        if "Item" not in item:
            return None
        record = from_item(item["Item"])
        if "detail" in record:
            record["detail"] = json.loads(record["detail"])
        return record
