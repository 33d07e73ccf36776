"""A child process's stderr, drained as lines, that a test can wait on.

Why: the tests that start a real ``roomserver`` process must keep reading its
stderr (or it blocks on a full pipe) and wait for the line that says it listens;
tests/cli and tests/ops each had their own copy of this.
"""

from __future__ import annotations

import re

import trio

__all__ = ("StderrLog",)


class StderrLog:
    """Drains the child's stderr (so it never blocks on a full pipe) and lets the test
    wait for a line that matches."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._changed = trio.Event()

    async def drain(self, stream: trio.abc.ReceiveStream) -> None:
        pending = b""
        async for chunk in stream:
            pending += chunk
            *complete, pending = pending.split(b"\n")
            self.lines.extend(line.decode(errors="replace") for line in complete)
            self._changed.set()
            self._changed = trio.Event()

    async def wait_for(self, pattern: re.Pattern[str]) -> re.Match[str]:
        seen = 0
        while True:
            for line in self.lines[seen:]:
                if match := pattern.search(line):
                    return match
            seen = len(self.lines)
            await self._changed.wait()
