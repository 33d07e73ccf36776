"""A redis-server of the benchmark's own, for the cluster workload (cluster.py).

Why its own and not the machine's: a benchmark must not write into a Redis someone
else uses, nor depend on one being there. It runs on 127.0.0.1 on a free port, in a
temporary directory, with ``--save ""`` (nothing on disk), and is stopped when the
block ends, whatever happened. Every sub-run uses its own key prefix on it.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

STARTUP_TIMEOUT = 20.0
READY = b"Ready to accept connections"
MISSING = "redis-server is not installed: `bash tests/cluster/setup.sh` installs Debian's package"


@dataclass(frozen=True)
class RedisServer:
    port: int
    pid: int
    version: str

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def redis_version() -> str | None:
    """`redis-server --version`'s "v=..." (for the JSON's versions), or None if missing."""
    if shutil.which("redis-server") is None:
        return None
    out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True, timeout=30, check=False).stdout
    return next((word[2:] for word in out.split() if word.startswith("v=")), out.strip() or None)


@asynccontextmanager
async def open_redis_server() -> AsyncIterator[RedisServer]:
    """Starts redis-server, yields it once it accepts connections, stops it on exit."""
    if shutil.which("redis-server") is None:
        raise RuntimeError(MISSING)
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as workdir:
        port = _free_port()
        argv = [
            "redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
            "--dir", workdir, "--daemonize", "no", "--loglevel", "notice",
        ]
        async with trio.open_nursery() as nursery:
            process: trio.Process = await nursery.start(
                lambda task_status: trio.run_process(
                    argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False, task_status=task_status
                )
            )
            assert process.stdout is not None
            seen = b""
            with trio.fail_after(STARTUP_TIMEOUT):
                while READY not in seen:
                    chunk = await process.stdout.receive_some()
                    if not chunk:
                        raise RuntimeError(f"redis-server exited at start: {seen.decode(errors='replace')[-1000:]}")
                    seen += chunk

            async def drain() -> None:
                assert process.stdout is not None
                while await process.stdout.receive_some():
                    pass

            nursery.start_soon(drain)
            try:
                yield RedisServer(port, process.pid, redis_version() or "unknown")
            finally:
                if process.returncode is None:
                    process.send_signal(signal.SIGTERM)  # with --save "" it writes nothing
                nursery.cancel_scope.cancel()
