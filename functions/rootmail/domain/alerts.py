"""Operators' alerts in a burst: the alerts of one kind (the same headline, sender and masked subject) within a
window share one Slack message, posted by the first and updated with the count and the accounts as the others join,
instead of one message per mail. Each mail waits (in the state machine) until the message counts it, for a bounded
time; updates are spaced so that one message stays within Slack's limit for chat.update."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from rootmail.domain.digest import mask

WINDOW_SECONDS = 300
# chat.update is a Tier 3 method (about 50 calls a minute): a message is updated at most every 3 seconds.
UPDATE_EVERY_MS = 3_000
# Whoever posts or updates a batch's message holds its turn this long at most: longer than the alert function's
# timeout (30 s), so a turn still held after it belongs to an invocation that is gone.
TURN_LEASE_MS = 60_000
# A mail waits this long at most for the message to count it; then it is queued (SlackUnavailable), so that a Slack
# that refuses every post or update leaves the mail where the digest shows it, not waiting forever.
SHOW_WITHIN_MS = 600_000
# Accounts a batch names; the rest are counted as mails.
MAX_NAMED_ACCOUNTS = 30


def batch_kind(headline: str, sender: str | None, subject: str) -> str:
    """The kind of an alert: different mails (another sender, another subject pattern) never share a message, so
    the first mail a message shows stands for every mail it counts."""
    text = "\x1f".join((headline, (sender or "").lower(), mask(subject)))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def batch_id(kind: str, moment_ms: int) -> str:
    return f"alerts#{kind}#{moment_ms // (WINDOW_SECONDS * 1000)}"


def window_start(moment_ms: int) -> datetime:
    return datetime.fromtimestamp(moment_ms // (WINDOW_SECONDS * 1000) * WINDOW_SECONDS, UTC)


@dataclass(frozen=True)
class Membership:
    """A mail in its batch: the batch, how many mails it held once the mail was in, and when it joined."""

    batch_id: str
    position: int
    joined_ms: int


@dataclass(frozen=True)
class AlertBatch:
    batch_id: str
    count: int
    accounts: tuple[str, ...]
    opened_ms: int
    shown: int = 0  # how many mails the message counts, as last posted or updated
    channel: str | None = None
    ts: str | None = None
    next_update_ms: int = 0
    generation: int = 0  # messages posted for the batch before this one (each deleted in Slack)

    def shows(self, position: int) -> bool:
        """The message counts the mail that joined as the `position`th (mails only join, so a count as large was
        taken after it joined)."""
        return self.shown >= position
