"""The servers under test: how each one starts, announces its URL, and stops.

Why one place: a comparison is only fair when every server runs with the same
limits turned off the same way, on the same core, with the same file-descriptor
limit; keeping the three command lines side by side makes a difference visible.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import trio

BENCH = Path(__file__).resolve().parent.parent
REPO = BENCH.parent
TARGETS: tuple[str, ...] = ("roomactors", "node", "pysocketio")
STARTUP_TIMEOUT = 30.0

_ROOMACTORS_URL = re.compile(rb"clients connect to (http://\S+)")

# roomserver's limits that a benchmark turns off, when this roomserver has them: the
# per-connection command rate (the peers get --command-rate 0 too), the connection
# caps (10,000 at once, 500 per address: every load client is 127.0.0.1), and
# expulsion for flooding. A quick shutdown keeps runs short.
_ROOMACTORS_UNLIMITED: tuple[tuple[str, str], ...] = (
    ("--command-rate", "0"),
    ("--max-connections", "0"),
    ("--max-sessions-per-address", "0"),
    ("--flood-limit", "0"),
    ("--shutdown-timeout", "2"),
)


@dataclass(frozen=True)
class Options:
    """What every target's command line depends on."""

    node: str
    server_cpus: str | None
    """``taskset -c`` list for the servers, or None to leave them unpinned."""
    rate_limit_off: bool
    """True when every server can run without its per-connection command rate."""
    roomactors_src: Path | None = None
    """A tree with ``roomactors/`` and ``bin/`` to run instead of this checkout's
    (``--roomactors-ref``): numbers from a commit, not from files being edited."""


def _roomserver(src: Path | None) -> tuple[list[str], dict[str, str] | None]:
    """roomserver's argv head and environment: this checkout's, or the one in `src`
    (first on PYTHONPATH, ahead of the editable install's finder)."""
    if src is None:
        return [sys.executable, str(REPO / "bin" / "roomserver")], None
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(src), os.environ.get("PYTHONPATH")]))}
    return [sys.executable, str(src / "bin" / "roomserver")], env


def roomserver_flags(src: Path | None) -> set[str]:
    """The options this roomserver's ``--help`` lists (they change as the server
    grows; the benchmark uses what is there)."""
    head, env = _roomserver(src)
    out = subprocess.run(
        [*head, "--help"], capture_output=True, text=True, check=True, cwd=REPO, timeout=60, env=env
    ).stdout
    return set(re.findall(r"(--[a-z][a-z-]+)", out))


def server_argv(
    target: str, options: Options, available: set[str], extra: Sequence[str] = ()
) -> tuple[list[str], str]:
    """A target's argv (`extra` appended: e.g. a cluster node's Redis options), and where
    it announces itself: "port" (first stdout line, the peers) or "log" (roomserver's
    start-up log line on stderr)."""
    pin = ["taskset", "-c", options.server_cpus] if options.server_cpus else []
    rate = ["--command-rate", "0"] if options.rate_limit_off else []
    if target == "roomactors":
        rate_flags = ("--command-rate", "--flood-limit")
        extra_flags = [
            arg
            for flag, value in _ROOMACTORS_UNLIMITED
            if flag in available and (options.rate_limit_off or flag not in rate_flags)
            for arg in (flag, value)
        ]
        argv = [*_roomserver(options.roomactors_src)[0], "--port", "0", "--log-level", "info"]
        return [*pin, *argv, *extra_flags, *extra], "log"
    if target == "node":
        script = BENCH / "peers" / "node" / "server.mjs"
        return pin + [options.node, str(script), "--port", "0", "--exit-on-stdin-close", *rate, *extra], "port"
    if target == "pysocketio":
        script = BENCH / "peers" / "pysocketio" / "server.py"
        return pin + [sys.executable, str(script), "--port", "0", "--exit-on-stdin-close", *rate, *extra], "port"
    raise ValueError(f"unknown target {target!r}: use {', '.join(TARGETS)}")


@dataclass
class RunningServer:
    target: str
    url: str
    pid: int
    output: deque[bytes]
    """The last lines the server printed, for an error message."""


async def _announced_url(stream: trio.abc.ReceiveStream, how: str, output: deque[bytes]) -> tuple[str, bytes]:
    buffer = b""
    async for chunk in stream:
        buffer += chunk
        if how == "port" and b"\n" in buffer:
            first, rest = buffer.split(b"\n", 1)
            return f"http://127.0.0.1:{int(first)}", rest
        if how == "log" and (match := _ROOMACTORS_URL.search(buffer)):
            return match.group(1).decode(), buffer
    output.append(buffer[-4000:])
    raise RuntimeError(f"the server exited before announcing itself: {buffer[-2000:]!r}")


async def _drain(stream: trio.abc.ReceiveStream, output: deque[bytes]) -> None:
    """Keeps the server from blocking on a full pipe; remembers its last words."""
    async for chunk in stream:
        output.append(chunk)


async def _kill(process: trio.Process) -> None:
    """A server's graceful shutdown is not what is measured (and with 10,000 sessions
    it can take a while): stop it at once so the next scenario starts on a quiet core."""
    process.kill()


@asynccontextmanager
async def running(
    target: str, options: Options, available: set[str], extra: Sequence[str] = ()
) -> AsyncIterator[RunningServer]:
    """Starts one server and stops it on exit, whatever happened inside (trio
    terminates the process when the nursery is cancelled, and kills it if it lingers)."""
    argv, how = server_argv(target, options, available, extra)
    output: deque[bytes] = deque(maxlen=50)
    async with trio.open_nursery() as nursery:
        process: trio.Process = await nursery.start(
            partial(
                trio.run_process,
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                check=False,
                cwd=str(REPO),
                env=_roomserver(options.roomactors_src)[1] if target == "roomactors" else None,
                deliver_cancel=_kill,
            )
        )
        assert process.stdout is not None and process.stderr is not None
        announce, other = (process.stderr, process.stdout) if how == "log" else (process.stdout, process.stderr)
        nursery.start_soon(_drain, other, output)
        with trio.fail_after(STARTUP_TIMEOUT):
            url, seen = await _announced_url(announce, how, output)
        output.append(seen)
        nursery.start_soon(_drain, announce, output)
        try:
            yield RunningServer(target, url, process.pid, output)
        finally:
            nursery.cancel_scope.cancel()

