"""The 2017 game client, unchanged (issue 14): socket.io-client 1.7 and 2.x
under Node (Engine.IO v3, Socket.IO protocol 4) running the game's own
sequence against the room server, in the room protocol's legacy mode.

What the 2017 client (its ``Lobby.js``) does: connects to ``<url>/lobby`` with
default settings, emits ``join_lobby`` on connect, sends ``create_room``,
``join_room`` and ``leave_room`` without acks, and runs ``JSON.parse(data)``
on every ``updaterooms`` (the driver does exactly that: a list sent as an
array would fail there, and the test with it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from support.clientapi import ConnectRefused
from support.nodeclient import LEGACY_LIBRARIES, NodeSocket, open_node_clients

from roomactors.actors import RoomLimits
from roomactors.app import open_room_app
from roomactors.engineio import EngineIOConfig
from roomactors.socketio import SocketIOServer

TEACHER = {"id": 1, "auth_level": "teacher", "username": "ms_frizzle"}
STUDENT = {"id": 2, "auth_level": "student", "username": "arnold"}
DECK = {
    "name": "Week 3",
    "flashcards": [{"id": 1, "problem": "1/2+1/4", "solution": "3/4"}, {"id": 2, "problem": "2*3", "solution": 6}],
}
NO_RATE_LIMIT = RoomLimits(command_rate=None)

pytestmark = [pytest.mark.node, pytest.mark.parametrize("library", LEGACY_LIBRARIES)]


async def serve(nursery: trio.Nursery, engineio: EngineIOConfig | None = None) -> tuple[str, SocketIOServer]:
    sio = SocketIOServer(engineio=engineio or EngineIOConfig())
    addresses = await nursery.start(sio.serve, "127.0.0.1", 0)
    return f"http://127.0.0.1:{addresses[0][1]}", sio


@pytest.fixture
async def url(nursery: trio.Nursery) -> AsyncIterator[str]:
    async with trio.open_nursery() as server_nursery:
        base, sio = await serve(server_nursery)
        async with open_room_app(sio, NO_RATE_LIMIT):
            yield base
        server_nursery.cancel_scope.cancel()


def rooms_named(*names: str) -> Any:
    return lambda args: [room["name"] for room in args[0]] == list(names)


def players_of(rooms: list[dict[str, Any]]) -> list[int]:
    (room,) = rooms
    return [player["id"] for player in room["players"]]


async def connect_2017(clients: Any, url: str, user: dict[str, Any], **opts: Any) -> NodeSocket:
    """Connect as Lobby.js did, emitting join_lobby once connected; its first list."""
    sock: NodeSocket = clients.connect(url, "/lobby", parseRoomLists=True, **opts)
    await sock.wait_connected()
    sock.emit("join_lobby", user)
    await sock.next_event("updaterooms")
    return sock


@pytest.mark.parametrize("transports", [None, ["websocket"]], ids=["polling+upgrade", "websocket"])
async def test_the_2017_sequence(url: str, library: str, transports: list[str] | None) -> None:
    opts = {} if transports is None else {"transports": transports}
    async with open_node_clients(library) as clients:
        teacher = await connect_2017(clients, url, TEACHER, **opts)
        student = await connect_2017(clients, url, STUDENT, **opts)

        teacher.emit("create_room", {"name": "Fractions", "host": TEACHER, "deck": DECK})
        for sock in (teacher, student):
            (rooms,) = await sock.next_event("updaterooms", where=rooms_named("Fractions"))
            assert rooms[0]["host"].items() >= TEACHER.items() and rooms[0]["deck"]["numProblems"] == 2
            assert "3/4" not in repr(rooms)  # never the answers
        room_id = rooms[0]["id"]

        student.emit("join_room", {"id": room_id})
        for sock in (teacher, student):
            (rooms,) = await sock.next_event("updaterooms", where=lambda args: players_of(args[0]) == [2])
        student.emit("leave_room", {"id": room_id})
        for sock in (teacher, student):
            await sock.next_event("updaterooms", where=lambda args: players_of(args[0]) == [])

        student.emit("join_room", {"id": room_id})
        await student.next_event("updaterooms", where=lambda args: players_of(args[0]) == [2])
        teacher.emit("leave_room", {"id": room_id})  # the host leaves: the room disappears
        assert await student.next_event("roomclosed") == [{"id": room_id, "reason": "host_left"}]  # an object
        for sock in (teacher, student):
            await sock.next_event("updaterooms", where=rooms_named())

        if transports is None:  # default settings: polling first, then the upgrade
            await teacher.wait_record("upgrade")
        assert await teacher.transport() == "websocket"
        assert teacher.received("rejected") == student.received("rejected") == []


async def test_errors_arrive_as_objects_and_acks_work(url: str, library: str) -> None:
    async with open_node_clients(library) as clients:
        sock = await connect_2017(clients, url, TEACHER)
        sock.emit("join_room", {"id": 99})
        (rejected,) = await sock.next_event("rejected")
        assert rejected["event"] == "join_room" and rejected["code"] == "room_not_found"
        (reply,) = await sock.call("create_room", {"name": "Acked", "deck": DECK})
        assert reply["ok"] is True and reply["room"]["name"] == "Acked"


async def test_a_modern_and_a_2017_client_see_the_same_lists(url: str, library: str) -> None:
    async with open_node_clients(library) as old_clients, open_node_clients() as new_clients:
        old = await connect_2017(old_clients, url, TEACHER)
        new = new_clients.connect(url, "/lobby")
        await new.wait_connected()
        (ack,) = await new.call("join_lobby", STUDENT)
        assert ack["ok"] is True
        old.emit("create_room", {"name": "Mixed", "host": TEACHER, "deck": DECK})
        (old_rooms,) = await old.next_event("updaterooms", where=rooms_named("Mixed"))
        (new_rooms,) = await new.next_event("updaterooms", where=rooms_named("Mixed"))
        assert old_rooms == new_rooms  # the text the old client parsed is the new one's array
        room_id = new_rooms[0]["id"]
        (ack,) = await new.call("join_room", {"id": room_id})
        assert ack["ok"] is True
        (old_rooms,) = await old.next_event("updaterooms", where=lambda args: players_of(args[0]) == [2])
        (new_rooms,) = await new.next_event("updaterooms", where=lambda args: players_of(args[0]) == [2])
        assert old_rooms == new_rooms
        old.emit("leave_room", {"id": room_id})
        assert await new.next_event("roomclosed") == [{"id": room_id, "reason": "host_left"}]
        assert await new.next_event("updaterooms", where=rooms_named()) == [[]]
        assert await old.next_event("updaterooms", where=rooms_named()) == [[]]


@pytest.mark.parametrize("transports", [["polling"], ["websocket"]])
async def test_non_ascii_names_survive(url: str, library: str, transports: list[str]) -> None:
    # socket.io-client 1.x under Node polls with engine.io-parser 1.x's double
    # UTF-8 text payloads (see roomactors/engineio/packets_v3.py)
    user = {"id": 7, "auth_level": "teacher", "username": "Zoë 🦊"}
    async with open_node_clients(library) as clients:
        sock = await connect_2017(clients, url, user, transports=transports)
        sock.emit("create_room", {"name": "Brüche ½ 😀", "deck": DECK})
        (rooms,) = await sock.next_event("updaterooms", where=rooms_named("Brüche ½ 😀"))
        assert rooms[0]["host"]["username"] == "Zoë 🦊"


async def test_eio3_off_refuses_the_old_clients(nursery: trio.Nursery, library: str) -> None:
    base, sio = await serve(nursery, EngineIOConfig(eio3=False))
    async with open_room_app(sio, NO_RATE_LIMIT), open_node_clients(library) as clients:
        sock = clients.connect(base, "/lobby", reconnection=False)
        with pytest.raises(ConnectRefused):
            await sock.wait_connected()
