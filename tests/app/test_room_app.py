"""The room protocol end to end: real Socket.IO clients on 127.0.0.1, port 0.

python-socketio's client always; socket.io-client 4 under Node for the cases
marked ``node``. Everything is asserted on what the clients received.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from robustness.rawclients import RawWebSocket, encode_event
from support.clients import client_params, open_clients
from support.roomapp import Served, serve_room_app

from roomactors.actors import RoomLimits

DECK = {"name": "Week 3", "flashcards": [{"id": 1, "problem": "1/2+1/4", "answer": "3/4"}]}


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    async with serve_room_app() as served:
        yield served


def without_answers(value: Any) -> None:
    assert "3/4" not in repr(value), value


@pytest.mark.parametrize("namespace", ["/lobby", "/"])
@pytest.mark.parametrize("client_kind", client_params())
async def test_worked_example(served: Served, namespace: str, client_kind: str) -> None:
    await run_worked_example(served, client_kind, namespace)


@pytest.mark.parametrize("transports", [["polling"], ["websocket"]])
async def test_worked_example_on_one_transport(served: Served, transports: list[str]) -> None:
    await run_worked_example(served, "python", "/lobby", transports=transports)


async def run_worked_example(served: Served, client_kind: str, namespace: str, **options: Any) -> None:
    async with open_clients(client_kind) as clients:
        a = clients.connect(served.url, namespace, **options)
        b = clients.connect(served.url, namespace, **options)
        await a.wait_connected()
        await b.wait_connected()
        ack = await a.call("join_lobby", {"id": 1, "username": "mia", "auth_level": "teacher"})
        token = ack[0].pop("token")  # the seat's token (race.md, "Identity")
        assert isinstance(token, str) and len(token) >= 22
        assert ack == [{"ok": True, "user": {"id": 1, "username": "mia", "auth_level": "teacher"}, "room": None}]
        assert await a.next_event("updaterooms") == [[]]
        b.emit("join_lobby", {"id": 2, "username": "sam", "auth_level": "student"})
        assert await b.next_event("updaterooms") == [[]]

        ack = await a.call("create_room", {"name": "Fractions", "deck": DECK})
        room = ack[0]["room"]
        assert ack[0]["ok"] is True and room["id"] == 1 and room["name"] == "Fractions"
        assert room["host"] == {"id": 1, "username": "mia", "auth_level": "teacher", "connected": True}
        assert room["state"] == "waiting" and room["locked"] is False
        assert room["deck"]["name"] == "Week 3" and room["deck"]["numProblems"] == 1
        assert room["players"] == [] and room["max_players"] == 50
        without_answers(ack)
        for client in (a, b):
            (rooms,) = await client.next_event("updaterooms", where=lambda args: len(args[0]) == 1)
            assert rooms == [room]
            without_answers(rooms)

        b.emit("join_room", {"id": 1})
        sam = {"id": 2, "username": "sam", "auth_level": "student"}
        for client in (a, b):
            (rooms,) = await client.next_event("updaterooms", where=lambda args: args[0] and args[0][0]["players"])
            assert rooms[0]["players"] == [{**sam, "connected": True}]

        a.emit("leave_room", {"id": 1})
        assert await b.next_event("roomclosed") == [{"id": 1, "reason": "host_left"}]
        for client in (a, b):
            assert await client.next_event("updaterooms", where=lambda args: args[0] == []) == [[]]
        # roomclosed came before the first list without the room
        seen = [(e.event, e.args) for e in b.events if e.event in ("roomclosed", "updaterooms")]
        first_listed = next(i for i, (name, args) in enumerate(seen) if name == "updaterooms" and args[0])
        first_gone = next(i for i, (name, args) in enumerate(seen) if i > first_listed and name == "updaterooms" and not args[0])
        assert seen.index(("roomclosed", [{"id": 1, "reason": "host_left"}])) < first_gone
        assert a.received("roomclosed") == []
        assert a.received("rejected") == [] and b.received("rejected") == []


async def test_both_namespaces_share_one_lobby(served: Served) -> None:
    async with open_clients("python") as clients:
        main = clients.connect(served.url, "/")
        lobby = clients.connect(served.url, "/lobby")
        await main.wait_connected()
        await lobby.wait_connected()
        await main.call("join_lobby", {"id": "m"})
        await lobby.call("join_lobby", {"id": "l"})
        ack = await main.call("create_room", {"name": "Shared", "deck": DECK})
        room_id = ack[0]["room"]["id"]
        await lobby.next_event("updaterooms", where=lambda args: len(args[0]) == 1)
        assert (await lobby.call("join_room", {"id": room_id}))[0]["ok"] is True
        (rooms,) = await main.next_event("updaterooms", where=lambda args: args[0] and args[0][0]["players"])
        assert rooms[0]["players"][0]["id"] == "l"


async def test_errors_as_acks_and_as_rejected(served: Served) -> None:
    async with open_clients("python") as clients:
        sock = clients.connect(served.url, "/lobby")
        await sock.wait_connected()
        ack = await sock.call("join_room", {"id": 5})
        assert ack[0]["ok"] is False and ack[0]["error"]["code"] == "not_in_lobby"
        sock.emit("join_room", {"id": 0})
        rejected = await sock.next_event("rejected", where=lambda args: args[0]["code"] == "invalid_payload")
        assert rejected[0]["event"] == "join_room" and rejected[0]["message"]
        # a payload that is not exactly one object: invalid_payload, the connection stays
        ack = await sock.call("join_lobby", {"id": 1}, {"id": 2})
        assert ack[0]["error"]["code"] == "invalid_payload"
        ack = await sock.call("join_lobby", "me")
        assert ack[0]["error"]["code"] == "invalid_payload"
        assert (await sock.call("join_lobby", {"id": 1}))[0]["ok"] is True
        assert sock.connected


async def test_takeover_replaces_and_disconnects_the_old_socket(served: Served) -> None:
    async with open_clients("python") as clients:
        old = clients.connect(served.url, "/lobby", reconnection=False)
        await old.wait_connected()
        (joined,) = await old.call("join_lobby", {"id": 7, "username": "ann"})
        room_id = (await old.call("create_room", {"name": "R", "deck": DECK}))[0]["room"]["id"]
        new = clients.connect(served.url, "/lobby")
        await new.wait_connected()
        assert (await new.call("join_lobby", {"id": 7}))[0]["error"]["code"] == "identity_taken"
        ack = await new.call("join_lobby", {"id": 7, "token": joined["token"]})
        assert ack[0]["room"] == room_id and ack[0]["user"]["username"] == "ann"
        replaced = await old.next_event("replaced")
        assert "reason" in replaced[0]
        await old.next_event("disconnect")
        assert old.names().index("replaced") < old.names().index("disconnect")
        # the new socket holds the host seat
        assert (await new.call("leave_room", {"id": room_id}))[0] == {"ok": True}


@pytest.fixture
async def served_without_grace() -> AsyncIterator[Served]:
    """A server whose drops leave at once (``reconnect_grace`` 0, the old behaviour)."""
    async with serve_room_app(RoomLimits(command_rate=None, reconnect_grace=0)) as served:
        yield served


async def test_host_disconnect_closes_the_room(served_without_grace: Served) -> None:
    # python-socketio's disconnect() may close the WebSocket before its goodbye
    # is written (a drop, race.md); without a grace, a drop leaves at once too
    served = served_without_grace
    async with open_clients("python") as clients:
        host = clients.connect(served.url, "/lobby")
        player = clients.connect(served.url, "/")
        await host.wait_connected()
        await player.wait_connected()
        await host.call("join_lobby", {"id": "h"})
        await player.call("join_lobby", {"id": "p"})
        room_id = (await host.call("create_room", {"name": "R", "deck": DECK}))[0]["room"]["id"]
        assert (await player.call("join_room", {"id": room_id}))[0]["ok"] is True
        await host.disconnect()
        assert await player.next_event("roomclosed") == [{"id": room_id, "reason": "host_disconnected"}]
        await player.next_event("updaterooms", where=lambda args: args[0] == [])
        assert served.app.statistics().rooms == 0


async def test_no_rejected_event_when_the_client_asked_for_an_ack(served: Served) -> None:
    async with open_clients("python") as clients:
        sock = clients.connect(served.url, "/lobby")
        await sock.wait_connected()
        ack = await sock.call("leave_room", {"id": 3})
        assert ack[0]["error"]["code"] == "not_in_lobby"
        sock.emit("leave_room", {"id": 0})
        await sock.next_event("rejected", where=lambda args: args[0]["code"] == "invalid_payload")
        assert [args[0]["code"] for args in sock.received("rejected")] == ["invalid_payload"]


async def test_shutdown_tells_hosts_and_players_then_refuses_connects(served: Served) -> None:
    async with open_clients("python") as clients:
        host = clients.connect(served.url, "/lobby")
        player = clients.connect(served.url, "/lobby")
        await host.wait_connected()
        await player.wait_connected()
        await host.call("join_lobby", {"id": "h"})
        await player.call("join_lobby", {"id": "p"})
        room_id = (await host.call("create_room", {"name": "R", "deck": DECK}))[0]["room"]["id"]
        await player.call("join_room", {"id": room_id})
        await served.app.shutdown()
        for client in (host, player):
            assert await client.next_event("roomclosed") == [{"id": room_id, "reason": "shutdown"}]
        ack = await player.call("join_lobby", {"id": "p"})
        assert ack[0]["error"]["code"] == "internal"
        late = clients.connect(served.url, "/", reconnection=False)
        with pytest.raises(Exception, match="shutting down"):
            await late.wait_connected()


async def test_one_connection_on_both_namespaces_gets_the_newest_list_on_each(served: Served) -> None:
    """Both namespaces share one Engine.IO session here, so their undelivered
    lists must not replace each other (the newest-wins key is per namespace)."""
    async with open_clients("python") as clients:
        main = clients.connect(served.url, "/", namespaces=["/", "/lobby"])
        lobby = main.sibling("/lobby")
        await main.wait_connected()
        await lobby.wait_connected()
        host = clients.connect(served.url, "/lobby")
        await host.wait_connected()
        await host.call("join_lobby", {"id": "h"})
        for name in ("A", "B", "C"):  # several changes, some lists may be skipped
            (created,) = await host.call("create_room", {"name": name, "deck": DECK})
            assert (await host.call("leave_room", {"id": created["room"]["id"]}))[0]["ok"] is True
        assert (await host.call("create_room", {"name": "Last", "deck": DECK}))[0]["ok"] is True
        for sock in (main, lobby):
            (rooms,) = await sock.next_event("updaterooms", where=lambda args: [r["name"] for r in args[0]] == ["Last"])
            assert rooms[0]["id"] == 4


async def test_commands_sent_without_waiting_are_answered_in_order(served: Served) -> None:
    """A client that does not wait for its acks: the lobby answers each command of a
    socket in the order sent (one at a time per socket), acks and ``rejected`` alike."""
    port = int(served.url.rsplit(":", 1)[1])
    ws = await RawWebSocket.open(port)
    try:
        await ws.connect_namespace("/lobby")
        frames = [encode_event("join_lobby", {"id": 1}, ack=0)]
        for n in range(1, 21):
            if n == 10:
                frames.append(encode_event("join_room", "99"))  # no ack, not an object: `rejected` by the app itself
            command = "create_room" if n % 2 else "leave_room"  # create room k, then leave it
            frames.append(encode_event(command, {"name": f"r{n}", "deck": DECK, "id": n // 2}, ack=n))
        for frame in frames:
            await ws.send(frame)
        answers: list[str] = []
        with trio.fail_after(10):
            while len(answers) < 22:
                message = await ws.next_matching("4")
                if message.startswith("43/lobby,"):
                    answers.append(message[len("43/lobby,"):].split("[", 1)[0])
                elif message.startswith('42/lobby,["rejected"'):
                    answers.append("rejected")
    finally:
        await ws.aclose()
    expected = ["0", *[str(n) for n in range(1, 10)], "rejected", *[str(n) for n in range(10, 21)]]
    assert answers == expected, answers
