"""Moments as every record holds them: ISO 8601 in UTC, milliseconds, `Z` (they sort as text)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_iso(delta: timedelta = timedelta(0)) -> str:
    return stamp(datetime.now(UTC) + delta)
