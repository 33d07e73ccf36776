"""A real ``redis-server`` (Debian's package) for the cluster tests.

Started on 127.0.0.1 on a free port with a temporary directory and ``--save ""``
(nothing written to disk), stopped when the block ends. ``restart()`` stops it and
starts it again on the same port, as an operator's restart would look to the nodes.
Tests skip when ``redis-server`` is missing (``tests/cluster/setup.sh`` installs it).
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

STARTUP_TIMEOUT = 20.0
READY = b"Ready to accept connections"

_prefixes = itertools.count(1)


def unique_prefix(test_name: str) -> str:
    """A key prefix (and pub/sub channel stem) that no other test uses."""
    return f"t{os.getpid()}-{next(_prefixes)}-{test_name[:40]}:"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """One redis-server process (started and restarted by the test)."""

    def __init__(self, nursery: trio.Nursery, workdir: str) -> None:
        self._nursery = nursery
        self._workdir = workdir
        self.port = _free_port()
        self._process: trio.Process | None = None
        self._exited: trio.Event | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        argv = [
            "redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
            "--appendonly", "no", "--dir", self._workdir, "--daemonize", "no", "--loglevel", "notice",
        ]
        exited = trio.Event()

        async def run(task_status: trio.TaskStatus[trio.Process]) -> None:
            try:
                await trio.run_process(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       check=False, task_status=task_status)
            finally:
                exited.set()

        process: trio.Process = await self._nursery.start(run)
        self._process, self._exited = process, exited
        assert process.stdout is not None
        seen = b""
        with trio.fail_after(STARTUP_TIMEOUT):
            while READY not in seen:
                chunk = await process.stdout.receive_some()
                if not chunk:
                    raise RuntimeError(f"redis-server exited at start:\n{seen.decode(errors='replace')}")
                seen += chunk
        self._nursery.start_soon(self._drain, process)

    @staticmethod
    async def _drain(process: trio.Process) -> None:
        assert process.stdout is not None
        while await process.stdout.receive_some():
            pass

    async def stop(self) -> None:
        """SIGTERM (with ``--save ""`` it saves nothing) and wait until it is gone."""
        if self._process is None or self._exited is None:
            return
        if self._process.returncode is None:
            self._process.send_signal(signal.SIGTERM)
        with trio.fail_after(STARTUP_TIMEOUT):
            await self._exited.wait()
        self._process = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()


@asynccontextmanager
async def open_redis_server() -> AsyncIterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (bash tests/cluster/setup.sh installs it)")
    with tempfile.TemporaryDirectory(prefix="roomactors-redis-") as workdir:
        async with trio.open_nursery() as nursery:
            server = RedisServer(nursery, workdir)
            await server.start()
            try:
                yield server
            finally:
                await server.stop()
                nursery.cancel_scope.cancel()
