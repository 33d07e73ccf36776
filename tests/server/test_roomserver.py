"""The room server as an embedder runs it: ``await nursery.start(serve_roomserver, config)``.

Real clients on 127.0.0.1 port 0; assertions on what they received.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import trio
from support.clients import client_params, open_clients
from support.rawhttp import http

from roomactors.config import RoomServerConfig
from roomactors.server import RoomServer, serve_roomserver

DECK = {"name": "Week 3", "flashcards": [{"id": 1, "problem": "1/2+1/4", "answer": "3/4"}]}


@pytest.fixture
async def server(nursery: trio.Nursery) -> AsyncIterator[RoomServer]:
    started: RoomServer = await nursery.start(serve_roomserver, RoomServerConfig(port=0, shutdown_timeout=5))
    yield started
    nursery.cancel_scope.cancel()


async def http_request(port: int, method: str, target: str) -> tuple[int, dict[str, str], bytes]:
    reply = await http(port, method, target)
    return reply.status, reply.headers, reply.body


async def http_get(port: int, target: str) -> tuple[int, bytes]:
    status, _, body = await http_request(port, "GET", target)
    return status, body


@pytest.mark.parametrize("target", ["/", "/static/lobby.css"])
async def test_head_answers_with_the_length_of_get_and_no_body(server: RoomServer, target: str) -> None:
    status, headers, body = await http_request(server.port, "GET", target)
    head_status, head_headers, head_body = await http_request(server.port, "HEAD", target)
    assert status == head_status == 200
    assert head_body == b""
    assert int(head_headers["content-length"]) == len(body) > 0
    assert head_headers["content-type"] == headers["content-type"]


async def test_head_of_healthz_has_a_length_and_no_body(server: RoomServer) -> None:
    """(Its uptime changes from one request to the next, so only the shape is compared.)"""
    status, headers, body = await http_request(server.port, "HEAD", "/healthz")
    assert (status, body) == (200, b"")
    assert headers["content-type"] == "application/json" and int(headers["content-length"]) > 30


async def test_url_and_healthz(server: RoomServer) -> None:
    assert server.url == f"http://127.0.0.1:{server.port}"
    status, body = await http_get(server.port, "/healthz")
    health = json.loads(body)
    assert status == 200
    assert health["status"] == "ok"
    assert health["connections"] == 0 and health["rooms"] == 0
    assert isinstance(health["uptime"], float) and health["uptime"] >= 0


async def test_unknown_path_is_404(server: RoomServer) -> None:
    status, _ = await http_get(server.port, "/no-such-page")
    assert status == 404


@pytest.mark.parametrize("client_kind", client_params())
async def test_worked_example_against_the_embedded_server(server: RoomServer, client_kind: str) -> None:
    async with open_clients(client_kind) as clients:
        a = clients.connect(server.url, "/lobby")
        b = clients.connect(server.url, "/lobby")
        await a.wait_connected()
        await b.wait_connected()
        a.emit("join_lobby", {"id": 1, "username": "mia", "auth_level": "teacher"})
        assert await a.next_event("updaterooms") == [[]]
        b.emit("join_lobby", {"id": 2, "username": "sam", "auth_level": "student"})
        assert await b.next_event("updaterooms") == [[]]
        (ack,) = await a.call("create_room", {"name": "Fractions", "deck": DECK})
        assert ack["ok"] is True and ack["room"]["id"] == 1
        for client in (a, b):
            (rooms,) = await client.next_event("updaterooms", where=lambda args: len(args[0]) == 1)
            assert rooms[0]["name"] == "Fractions" and rooms[0]["players"] == []
            assert set(rooms[0]["deck"]) == {
                "id", "name", "description", "numProblems", "user_id", "user_name", "created", "changed", "private"
            }
            assert rooms[0]["deck"]["name"] == "Week 3" and rooms[0]["deck"]["numProblems"] == 1
        b.emit("join_room", {"id": 1})
        for client in (a, b):
            (rooms,) = await client.next_event("updaterooms", where=lambda args: args[0] and args[0][0]["players"])
            assert [p["id"] for p in rooms[0]["players"]] == [2]
        a.emit("leave_room", {"id": 1})
        assert await b.next_event("roomclosed") == [{"id": 1, "reason": "host_left"}]
        for client in (a, b):
            assert await client.next_event("updaterooms", where=lambda args: args[0] == []) == [[]]
        status, body = await http_get(server.port, "/healthz")
        assert status == 200 and json.loads(body)["connections"] == 2


async def test_graceful_shutdown_tells_everyone_and_stops(nursery: trio.Nursery) -> None:
    stopped = trio.Event()

    async def run(task_status: trio.TaskStatus[RoomServer] = trio.TASK_STATUS_IGNORED) -> None:
        await serve_roomserver(RoomServerConfig(port=0, shutdown_timeout=5), task_status=task_status)
        stopped.set()

    server: RoomServer = await nursery.start(run)
    async with open_clients("python") as clients:
        host = clients.connect(server.url, "/lobby")
        player = clients.connect(server.url, "/")
        watcher = clients.connect(server.url, "/lobby")
        for sock in (host, player, watcher):
            await sock.wait_connected()
        await host.call("join_lobby", {"id": "t", "username": "teacher"})
        (ack,) = await host.call("create_room", {"name": "Maths", "deck": DECK})
        await player.call("join_lobby", {"id": "s", "username": "student"})
        assert (await player.call("join_room", {"id": ack["room"]["id"]}))[0]["ok"] is True

        with trio.fail_after(10):
            await server.shutdown()
            await stopped.wait()  # serve_roomserver returned by itself
        closed = {"id": ack["room"]["id"], "reason": "shutdown"}
        assert await host.next_event("roomclosed") == [closed]
        assert await player.next_event("roomclosed") == [closed]
        for sock in (host, player, watcher):
            await sock.wait_record("disconnect")
        assert "roomclosed" not in watcher.names()

    # Nothing listens any more.
    with pytest.raises(OSError):
        await trio.open_tcp_stream("127.0.0.1", server.port)
