"""The accounts table: the organisation's accounts with their contacts, operators' contact overrides, and the
marker that lets one refresh of the accounts run at a time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rootmail.adapters.aws import describe, error_code
from rootmail.adapters.dynamodb.items import conditional_write, from_item, to_item, unavailable
from rootmail.app.ports import RefreshClaim, WriteResult
from rootmail.domain.accounts import Account, ContactOverride, owner_of_address
from rootmail.domain.moments import now_iso, stamp
from rootmail.errors import (
    AccountsUnavailable,
)


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
        with unavailable(AccountsUnavailable, "accounts lookup of a root address"):
            answer = self._db.query(
                TableName=self.table,
                IndexName="by-email",
                KeyConditionExpression="email = :email",
                ExpressionAttributeValues={":email": {"S": email.lower()}},
            )
        owner = owner_of_address(Account.from_dict(from_item(i)) for i in answer["Items"])
        return owner.with_override(self.override(owner.account_id)) if owner else None

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
        with unavailable(AccountsUnavailable, f"accounts table {self.table}"):
            for page in self._db.get_paginator("scan").paginate(TableName=self.table):
                for raw in page["Items"]:
                    item = from_item(raw)
                    key = str(item["account_id"])
                    if key.startswith(self.OVERRIDE_PREFIX):
                        override = _override(item)
                        overrides[override.account_id] = override
                    elif not key.startswith("#"):
                        accounts[key] = Account.from_dict(item)
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
        claimed = conditional_write(
            self._db.put_item,
            AccountsUnavailable,
            "accounts refresh marker",
            TableName=self.table,
            Item=to_item({"account_id": self.REFRESH_MARKER, "state": "running", "started_at": started}),
            ConditionExpression="attribute_not_exists(account_id) OR started_at < :cutoff",
            ExpressionAttributeValues=to_item({":cutoff": stamp(now - window)}),
        )
        if claimed:
            return RefreshClaim(True, started)
        held = self._get(self.REFRESH_MARKER, consistent=True) or {}
        return RefreshClaim(
            False, str(held.get("started_at", "")), str(held.get("state", "running")), held.get("finished_at")
        )

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
        with unavailable(AccountsUnavailable, f"accounts read of {key}"):
            item = self._db.get_item(
                TableName=self.table, Key=to_item({"account_id": key}), ConsistentRead=consistent
            )
        return from_item(item["Item"]) if "Item" in item else None


def _override(item: dict[str, Any]) -> ContactOverride:
    return ContactOverride.from_entry(str(item["override_for"]), json.loads(item.get("override") or "{}"))
