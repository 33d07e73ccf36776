"""Reference servers in subprocesses: the Node echo server and the benchmark peers.

Why: the client harnesses, and the benchmark's peers, are proven against servers
built on the reference libraries (Node's socket.io 4, python-socketio) while ours
is written in parallel. Each server prints its bound port as its first stdout
line; it is stopped when the block ends (and exits by itself if its stdin closes).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import pytest
import trio

from support.clientapi import single_errors
from support.nodeclient import JS_DIR, node_or_skip

REPO = Path(__file__).resolve().parent.parent.parent
ECHO_SERVER = JS_DIR / "echo-server.mjs"
NODE_PEER = REPO / "bench" / "peers" / "node" / "server.mjs"
PYSOCKETIO_PEER = REPO / "bench" / "peers" / "pysocketio" / "server.py"

STARTUP_TIMEOUT = 30.0


@asynccontextmanager
async def open_subprocess_server(argv: Sequence[str], *, cwd: Path) -> AsyncIterator[str]:
    """Run a server that prints its port, and yield its ``http://127.0.0.1:PORT`` URL."""
    with single_errors():
        async with trio.open_nursery() as nursery:
            process: trio.Process = await nursery.start(
                partial(
                    trio.run_process,
                    list(argv),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    check=False,
                    cwd=str(cwd),
                )
            )
            assert process.stdout is not None
            buffer = b""
            with trio.fail_after(STARTUP_TIMEOUT):
                while b"\n" not in buffer:
                    chunk = await process.stdout.receive_some()
                    if not chunk:
                        raise RuntimeError(f"{argv} exited before printing its port")
                    buffer += chunk
            port = int(buffer.split(b"\n", 1)[0])
            try:
                yield f"http://127.0.0.1:{port}"
            finally:
                nursery.cancel_scope.cancel()


def open_echo_server() -> AsyncIterator[str]:
    """The Node socket.io 4 echo server of ``tests/js/echo-server.mjs``."""
    node = node_or_skip()
    return open_subprocess_server([node, str(ECHO_SERVER)], cwd=JS_DIR)


def open_node_peer(*extra: str) -> AsyncIterator[str]:
    """The room protocol on Node's socket.io 4 (``bench/peers/node/server.mjs``)."""
    node = node_or_skip()
    if not (NODE_PEER.parent.parent.parent / "node_modules" / "socket.io").is_dir() and not (
        JS_DIR / "node_modules" / "socket.io"
    ).is_dir():
        pytest.skip("socket.io is not installed: run `npm install --no-package-lock` in bench/ or tests/js/")
    return open_subprocess_server([node, str(NODE_PEER), "--port", "0", "--exit-on-stdin-close", *extra], cwd=NODE_PEER.parent)


def open_pysocketio_peer(*extra: str) -> AsyncIterator[str]:
    """The room protocol on python-socketio's AsyncServer (``bench/peers/pysocketio/server.py``)."""
    pytest.importorskip("aiohttp", reason="aiohttp is needed for the python-socketio peer: pip install -r bench/requirements.txt")
    return open_subprocess_server(
        [sys.executable, str(PYSOCKETIO_PEER), "--port", "0", "--exit-on-stdin-close", *extra], cwd=PYSOCKETIO_PEER.parent
    )
