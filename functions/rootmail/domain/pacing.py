"""Pacing a rate every invocation shares (SES's maximum send rate, Zendesk's API limit): the generic cell rate
algorithm. A limit is one number, its theoretical arrival time (TAT, in microseconds): the moment it is free again. A reservation
of `cost` units takes the slot that starts at max(TAT, now) and moves the TAT on by cost / rate, so a burst is
handed consecutive slots, in order, however many invocations ask at once; nobody retries to find one. A slot that
starts soon is used at once; a later one is waited for, in the state machine, and then used without asking again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

# A slot starting within this is used at once: SES and Zendesk take short bursts, and a Wait state cannot be
# shorter than a second anyway.
SEND_NOW_MS = 1_000
# SES counts each recipient of a message against its maximum send rate.
SES = "ses"
# Zendesk counts API requests: a ticket is a search, a create or an update, and sometimes an upload.
ZENDESK = "zendesk"
ZENDESK_REQUESTS_PER_TICKET = 3


def interval_us(cost: int, rate_per_second: float) -> int:
    """How far a reservation of `cost` units moves the TAT, in microseconds (whole milliseconds would cap the
    rate at 1,000 a second and round 700 a second down to 500)."""
    if cost < 1 or rate_per_second <= 0:
        raise ValueError(
            f"a reservation needs a cost of at least 1 and a positive rate, not {cost} at {rate_per_second}/s"
        )
    return math.ceil(cost * 1_000_000 / rate_per_second)


@dataclass(frozen=True)
class Slot:
    """Where a reservation landed: its start and the moment it was made, in milliseconds since the epoch."""

    starts_ms: int
    reserved_ms: int

    @property
    def due(self) -> bool:
        return self.starts_ms - self.reserved_ms <= SEND_NOW_MS

    def timestamp(self) -> str:
        """The slot's start as a Wait state's TimestampPath reads it: whole seconds, rounded up (never early)."""
        moment = datetime.fromtimestamp(math.ceil(self.starts_ms / 1000), UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def reserve(tat_us: int | None, now_us: int, cost: int, rate_per_second: float) -> tuple[Slot, int]:
    """The slot a reservation takes and the limit's TAT after it (microseconds since the epoch)."""
    start = max(tat_us or now_us, now_us)
    return Slot(start // 1000, now_us // 1000), start + interval_us(cost, rate_per_second)
