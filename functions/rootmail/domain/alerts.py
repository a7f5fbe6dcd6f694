"""Operators' alerts in a burst: the alerts of one kind (its headline) within a window share one Slack message,
posted by the first mail and updated with the count and the accounts as the others join, instead of one message per
mail. Each mail waits (in the state machine) until the message shows it; updates are spaced so that one message
stays within Slack's limit for chat.update."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

WINDOW_SECONDS = 300
# Mails per message: the batch's item (its mail IDs and accounts) stays far below DynamoDB's 400 KB; a burst larger
# than this within a window continues in a second message.
BATCH_CAP = 1_000
MAX_PARTS = 100
# chat.update is a Tier 3 method (about 50 calls a minute): a message is updated at most every 3 seconds.
UPDATE_EVERY_MS = 3_000
# The first mail of a batch posts its message; if its invocation died before posting, another mail of the batch
# posts it after this long.
POSTER_LEASE_MS = 60_000


def batch_id(headline: str, moment_ms: int, part: int = 0) -> str:
    """The batch a mail of this kind joins at this moment: one per kind, window and part."""
    window = moment_ms // (WINDOW_SECONDS * 1000)
    kind = hashlib.sha256(headline.encode("utf-8")).hexdigest()[:16]
    return f"alerts#{kind}#{window}#{part}"


def window_start(moment_ms: int) -> datetime:
    return datetime.fromtimestamp(moment_ms // (WINDOW_SECONDS * 1000) * WINDOW_SECONDS, UTC)


@dataclass(frozen=True)
class Joined:
    """A mail in its batch: how many mails the batch held once it was in, and whether it is the one to post."""

    count: int
    poster: bool


@dataclass(frozen=True)
class AlertBatch:
    batch_id: str
    count: int
    accounts: tuple[str, ...]
    headline: str
    opened_ms: int
    shown: int = 0  # how many mails the message counts as last posted or updated
    channel: str | None = None
    ts: str | None = None
    text: str | None = None
    blocks: tuple[dict[str, Any], ...] = ()
    next_update_ms: int = 0

    def shows(self, position: int) -> bool:
        """The message counts the mail that joined as the `position`th (mails only join, so any count as large
        was taken after it joined)."""
        return self.shown >= position

    def poster_gone(self, now_ms: int) -> bool:
        return self.ts is None and now_ms - self.opened_ms > POSTER_LEASE_MS
