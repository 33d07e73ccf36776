"""Room servers as nodes of one cluster on a test's redis-server, in the test's nursery."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import trio
from support.pyclient import PySocket, PythonClients
from support.rawhttp import http
from support.redisserver import RedisServer
from support.waiting import wait_until

from roomactors.config import RoomServerConfig
from roomactors.server import RoomServer, serve_roomserver

DECK = {"name": "Week 3", "flashcards": [{"id": 1, "problem": "1/2+1/4", "answer": "3/4"}]}
SUMS = {"name": "Sums", "flashcards": [
    {"id": 1, "problem": "1+1", "answer": "2"}, {"id": 2, "problem": "2+2", "answer": "4"},
]}
"""Two cards, for a race with a card left after the first answer."""


def _names(rooms: list[dict[str, Any]]) -> list[str]:
    return [room["name"] for room in rooms]


async def lists_become(socks: list[PySocket], expected: list[str], timeout: float = 15) -> list[list[dict[str, Any]]]:
    """Wait until every client's newest ``updaterooms`` names exactly ``expected``; those lists."""

    def newest(sock: PySocket) -> list[dict[str, Any]] | None:
        lists = sock.received("updaterooms")
        return lists[-1][0] if lists else None

    with trio.fail_after(timeout):
        await wait_until(
            lambda: all((n := newest(s)) is not None and _names(n) == expected for s in socks),
            state=lambda: [_names(newest(s) or []) for s in socks],
        )
    return [newest(s) for s in socks]  # type: ignore[misc]


async def join(clients: PythonClients, url: str, user_id: int, name: str) -> PySocket:
    sock = clients.connect(url, "/lobby")
    await sock.wait_connected()
    (ack,) = await sock.call("join_lobby", {"id": user_id, "username": name, "auth_level": "student"})
    assert ack["ok"] is True
    return sock


async def seat_across(
    clients: PythonClients, room_node: str, player_node: str, name: str = "Sums", *, student: PySocket | None = None
) -> tuple[PySocket, PySocket, int]:
    """A teacher (user 1) on ``room_node`` with a room ``name`` (deck ``SUMS``), and a
    student (user 2, or the ``student`` given) on ``player_node`` seated in it
    through the relay: (teacher, student, room id)."""
    teacher = await join(clients, room_node, 1, "mia")
    if student is None:
        student = await join(clients, player_node, 2, "sam")
    (created,) = await teacher.call("create_room", {"name": name, "deck": SUMS})
    room_id: int = created["room"]["id"]
    await lists_become([student], [name])  # the player's node knows the room
    (joined,) = await student.call("join_room", {"id": room_id})
    assert joined["ok"] is True, joined
    return teacher, student, room_id


@asynccontextmanager
async def roomserver_process(
    redis: RedisServer, prefix: str, node_id: str, ttl: float
) -> AsyncIterator[tuple[str, trio.Process]]:
    """A real ``roomserver`` process; yields its URL and the process (to kill)."""
    argv = [sys.executable, "-m", "roomactors.cli", "--port", "0", "--redis", redis.url, "--node-id", node_id,
            "--redis-prefix", prefix, "--redis-channel", f"{prefix}socketio", "--node-ttl", str(ttl)]
    async with trio.open_nursery() as nursery:
        process: trio.Process = await nursery.start(
            lambda task_status: trio.run_process(argv, stderr=subprocess.PIPE, check=False, task_status=task_status)
        )
        assert process.stderr is not None
        seen = b""
        marker = b"clients connect to "
        with trio.fail_after(30):
            while marker not in seen or b"\n" not in seen.split(marker, 1)[1]:
                chunk = await process.stderr.receive_some()
                assert chunk, f"roomserver exited: {seen.decode(errors='replace')}"
                seen += chunk
        url = seen.split(marker, 1)[1].split(b"\n", 1)[0].decode().strip()

        async def drain() -> None:
            assert process.stderr is not None
            while await process.stderr.receive_some():
                pass

        nursery.start_soon(drain)
        try:
            yield url, process
        finally:
            if process.returncode is None:
                process.kill()
            nursery.cancel_scope.cancel()


def node_config(redis: RedisServer, prefix: str, node_id: str, **more: Any) -> RoomServerConfig:
    """A node on ``redis`` whose keys and python-socketio channel carry ``prefix``."""
    return RoomServerConfig(
        port=0, shutdown_timeout=5, redis_url=redis.url, node_id=node_id,
        redis_prefix=prefix, redis_channel=f"{prefix}socketio", **more,
    )


@asynccontextmanager
async def open_node(config: RoomServerConfig) -> AsyncIterator[RoomServer]:
    async with trio.open_nursery() as nursery:
        server: RoomServer = await nursery.start(serve_roomserver, config)
        try:
            yield server
        finally:
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def open_nodes(
    redis: RedisServer, prefix: str, count: int, *, first: int = 0, **more: Any
) -> AsyncIterator[list[RoomServer]]:
    """``count`` nodes (ids ``n{first}`` on), returned once each has subscribed to the
    python-socketio channel and synced its room directory."""
    async with AsyncExitStack() as stack:
        nodes = [
            await stack.enter_async_context(open_node(node_config(redis, prefix, f"n{i}", **more)))
            for i in range(first, first + count)
        ]
        with trio.fail_after(10):
            await wait_until(
                lambda: all(
                    n.cluster is not None and n.cluster.subscribed.is_set() and n.cluster.directory.synced.is_set()
                    for n in nodes
                )
            )
        yield nodes


async def healthz(server: RoomServer) -> dict[str, Any]:
    reply = await http(server.port, "GET", "/healthz")
    assert reply.status == 200
    return json.loads(reply.body)
