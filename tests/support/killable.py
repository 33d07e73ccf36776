"""A python-socketio client in its own process, killed with SIGKILL mid-session.

Why: race.md's seats that outlive a connection start with a drop, a transport that
closes without a Socket.IO DISCONNECT; a killed process is the honest way to get
one (the kernel closes its sockets, nothing says goodbye). The client is
``tests/app/killable_client.py``; see its docstring for what it prints.
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import trio

__all__ = ("KILLABLE", "Killable", "start_killable")

#: A python-socketio client in its own process, killed with SIGKILL: no goodbye.
KILLABLE = Path(__file__).resolve().parent.parent / "app" / "killable_client.py"


class Killable:
    """One killable_client.py process and the JSON lines it prints."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self._buffer = b""

    async def line(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        with trio.fail_after(20):
            while b"\n" not in self._buffer:
                chunk = await self.process.stdout.receive_some()
                assert chunk, f"the client process ended early: {self._buffer!r}"
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        result: dict[str, Any] = json.loads(line)
        return result

    async def say(self, text: str) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send_all(text.encode() + b"\n")

    async def kill(self) -> None:
        self.process.kill()  # the kernel closes its sockets: the server sees a transport close
        with trio.fail_after(10):
            await self.process.wait()


async def start_killable(nursery: trio.Nursery, *args: str) -> Killable:
    process: trio.Process = await nursery.start(
        partial(
            trio.run_process, [sys.executable, str(KILLABLE), *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, check=False,
        )
    )
    return Killable(process)
