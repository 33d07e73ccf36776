"""The real ``roomserver`` process: starts on port 0, serves a python-socketio client,
and on SIGINT/SIGTERM shuts down gracefully (players told, exit status 0).

The server runs as a child process (``python -m roomactors.cli``) because signals
and logging configuration belong to a whole process; the test reads the URL from
its log on stderr, like an operator would.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import pytest
import trio

from support.pyclient import open_python_clients
from support.processlog import StderrLog


def _server_stack_missing() -> str | None:
    """Why the real server cannot run yet, while its layers are being written."""
    if importlib.util.find_spec("roomactors.server") is None:
        return "roomactors/server.py (serve_roomserver) does not exist yet"
    from roomactors.engineio import EngineIOServer

    if not hasattr(EngineIOServer, "shutdown"):
        return "EngineIOServer.shutdown(), which the graceful shutdown needs, does not exist yet"
    return None


_MISSING = _server_stack_missing()
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")

URL_LINE = re.compile(r"clients connect to (http://127\.0\.0\.1:(\d+)\S*)")
DECK = {"name": "Week 3", "flashcards": [{"id": 1, "problem": "1/2+1/4", "answer": "3/4"}]}


@contextmanager
def server_log_on_failure(log: StderrLog) -> Iterator[None]:
    """A failure's report carries the server's log: it says what the server did instead."""
    try:
        yield
    except BaseException as exc:
        exc.add_note("roomserver's stderr:\n" + "\n".join(log.lines[-60:]))
        raise


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOMSERVER_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_roomserver_serves_and_stops_gracefully_on_a_signal(signum: int) -> None:
    command = [sys.executable, "-m", "roomactors.cli", "--port", "0", "--shutdown-timeout", "5"]
    log = StderrLog()
    with server_log_on_failure(log):
        await _serve_two_clients_then_signal(command, log, signum)
    assert any("shutting down" in line for line in log.lines)


async def _serve_two_clients_then_signal(command: list[str], log: StderrLog, signum: int) -> None:
    async with trio.open_nursery() as nursery:
        process: trio.Process = await nursery.start(
            partial(trio.run_process, command, stderr=subprocess.PIPE, check=False, env=_child_env())
        )
        assert process.stderr is not None
        nursery.start_soon(log.drain, process.stderr)
        with trio.fail_after(30):
            match = await log.wait_for(URL_LINE)
        url, port = match.group(1), int(match.group(2))
        assert port != 0

        async with open_python_clients() as clients:
            host = clients.connect(url, "/lobby", reconnection=False)
            player = clients.connect(url, "/", reconnection=False)
            await host.wait_connected()
            await player.wait_connected()
            joined = await host.call("join_lobby", {"id": 1, "username": "mia", "auth_level": "teacher"})
            assert isinstance(joined[0].pop("token"), str)  # the seat's token
            assert joined == [{"ok": True, "user": {"id": 1, "username": "mia", "auth_level": "teacher"}, "room": None}]
            created = await host.call("create_room", {"name": "Fractions", "deck": DECK})
            assert created[0]["ok"] is True
            room_id = created[0]["room"]["id"]
            await player.call("join_lobby", {"id": 2, "username": "sam", "auth_level": "student"})
            assert (await player.call("join_room", {"id": room_id}))[0]["ok"] is True

            process.send_signal(signum)
            closed: dict[str, Any] = {"id": room_id, "reason": "shutdown"}
            assert await player.next_event("roomclosed", timeout=10) == [closed]
            assert await host.next_event("roomclosed", timeout=10) == [closed]
            with trio.fail_after(15):
                await process.wait()
        assert process.returncode == 0
