"""The time the use cases read: the system's, in milliseconds since the epoch."""

from __future__ import annotations

import time


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000
