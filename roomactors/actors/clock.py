"""The server's wire clock: epoch milliseconds that never jump.

Race times on the wire (``start_at``, ``end_at``, ``server_ms``) are the
monotonic clock (trio's, so tests run them on ``autojump_clock``) plus one
epoch offset taken when the lobby starts: a wall clock adjusted by NTP while
a race runs would move a deadline under the players' feet. Everything the
server ranks by is its own clock; a client's only says what to display.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import trio


@dataclass(frozen=True)
class ServerClock:
    """Converts trio time (seconds) to server epoch milliseconds and back."""

    epoch_offset_ms: int
    """Epoch milliseconds at trio time 0 (taken once, at start-up)."""

    @classmethod
    def start(cls) -> ServerClock:
        """A clock whose epoch offset is taken now (call inside trio)."""
        return cls(round(time.time() * 1000 - trio.current_time() * 1000))

    def ms(self, at: float | None = None) -> int:
        """Server epoch milliseconds at trio time ``at`` (default: now)."""
        if at is None:
            at = trio.current_time()
        return round(at * 1000) + self.epoch_offset_ms

    def trio_time(self, ms: int) -> float:
        """The trio time at which ``ms`` is reached (for deadlines)."""
        return (ms - self.epoch_offset_ms) / 1000
