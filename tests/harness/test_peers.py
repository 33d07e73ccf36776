"""The benchmark peers (bench/peers) follow the room protocol: the worked example of
protocol.md and the rules a benchmark run leans on, through both client harnesses.

Why: the benchmark compares roomactors with these peers, which is only fair if
they do the same work; these tests pin them to the contract.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from support.clientapi import ConnectRefused
from support.clients import ClientSocket, Clients, client_params, open_clients
from support.refservers import open_node_peer, open_pysocketio_peer

pytestmark = pytest.mark.node

MIA = {"id": 1, "username": "mia", "auth_level": "teacher"}
SAM = {"id": 2, "username": "sam", "auth_level": "student"}
DECK = {"name": "Week 3", "flashcards": [{"id": 1, "problem": "1/2+1/4", "answer": "3/4"}]}


@pytest.fixture(params=["node", "pysocketio"])
async def peer_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    opener = open_node_peer if request.param == "node" else open_pysocketio_peer
    async with opener() as url:
        yield url


async def joined(clients: Clients, url: str, user: dict[str, Any], namespace: str = "/lobby") -> ClientSocket:
    sock = clients.connect(url, namespace)
    (reply,) = await sock.call("join_lobby", user)
    assert reply == {"ok": True, "user": {"username": None, "auth_level": None, **user}, "room": None}
    (rooms,) = await sock.next_event("updaterooms")
    assert isinstance(rooms, list)
    return sock


def error_code(reply: list[Any]) -> str:
    assert reply[0]["ok"] is False, reply
    return str(reply[0]["error"]["code"])


@pytest.mark.parametrize("client_kind", client_params())
async def test_worked_example(peer_url: str, client_kind: str) -> None:
    await run_worked_example(peer_url, client_kind)


@pytest.mark.parametrize("transport", ["polling", "websocket"])
async def test_worked_example_on_one_transport(peer_url: str, transport: str) -> None:
    await run_worked_example(peer_url, "python", transports=[transport])


async def run_worked_example(peer_url: str, client_kind: str, **options: Any) -> None:
    async with open_clients(client_kind) as clients:
        a = clients.connect(peer_url, "/lobby", **options)
        b = clients.connect(peer_url, "/lobby", **options)
        a.emit("join_lobby", MIA)
        assert await a.next_event("updaterooms") == [[]]
        b.emit("join_lobby", SAM)
        assert await b.next_event("updaterooms") == [[]]

        (reply,) = await a.call("create_room", {"name": "Fractions", "deck": DECK})
        assert reply["ok"] is True
        room = reply["room"]
        assert room == {
            "id": 1,
            "name": "Fractions",
            "host": MIA,
            "deck": {
                "id": None, "name": "Week 3", "description": None, "numProblems": 1, "user_id": None,
                "user_name": None, "created": None, "changed": None, "private": None,
            },
            "players": [],
            "max_players": 50,
        }  # fmt: skip
        for sock in (a, b):
            assert await sock.next_event("updaterooms", where=lambda args: len(args[0]) == 1) == [[room]]

        b.emit("join_room", {"id": 1})
        with_sam = {**room, "players": [SAM]}
        for sock in (a, b):
            assert await sock.next_event("updaterooms", where=lambda args: args[0][0]["players"]) == [[with_sam]]

        a.emit("leave_room", {"id": 1})
        assert await b.next_event("roomclosed") == [{"id": 1, "reason": "host_left"}]
        for sock in (a, b):
            assert await sock.next_event("updaterooms", where=lambda args: args[0] == []) == [[]]
        names = b.names()
        assert names.index("roomclosed") < len(names) - 1 - names[::-1].index("updaterooms")
        assert "roomclosed" not in a.names()
        assert "rejected" not in a.names() + b.names()


async def test_errors_in_contract_order(peer_url: str) -> None:
    async with open_clients("node") as clients:
        anon = clients.connect(peer_url, "/")
        assert error_code(await anon.call("join_room", "not an object")) == "invalid_payload"
        assert error_code(await anon.call("join_room", {"id": 0})) == "invalid_payload"
        assert error_code(await anon.call("join_room", {"id": 1})) == "not_in_lobby"
        assert error_code(await anon.call("create_room", {"name": "r", "deck": DECK})) == "not_in_lobby"
        assert error_code(await anon.call("create_room", {"name": " ", "deck": DECK})) == "invalid_payload"

        mia = await joined(clients, peer_url, MIA)
        assert error_code(await mia.call("join_lobby", SAM)) == "identity_mismatch"
        assert error_code(await mia.call("leave_lobby", {"id": 2})) == "forbidden"
        assert error_code(await mia.call("join_room", {"id": 99})) == "room_not_found"
        assert error_code(await mia.call("leave_room", {"id": 99})) == "room_not_found"
        (made,) = await mia.call("create_room", {"name": "R", "deck": {"name": "D", "flashcard": [{"id": "c", "problem": 1, "solution": 2}]}})
        assert made["ok"] is True and made["room"]["deck"]["numProblems"] == 1
        assert error_code(await mia.call("create_room", {"name": "R2", "deck": DECK})) == "already_in_room"
        assert error_code(await mia.call("join_room", {"id": 99})) == "room_not_found"

        sam = await joined(clients, peer_url, SAM)
        assert error_code(await sam.call("leave_room", {"id": made["room"]["id"]})) == "not_in_room"

        # Without an ack, a failure comes back as `rejected`.
        sam.emit("join_room", {"id": 12345})
        (rejected,) = await sam.next_event("rejected")
        assert (rejected["event"], rejected["code"]) == ("join_room", "room_not_found")


async def test_players_in_joining_order_and_answers_never_shown(peer_url: str) -> None:
    async with open_clients("node") as clients:
        host = await joined(clients, peer_url, MIA)
        (made,) = await host.call("create_room", {"name": "R", "deck": DECK})
        players = [await joined(clients, peer_url, {"id": f"p{n}"}) for n in range(2)]
        for p in players:
            (reply,) = await p.call("join_room", {"id": made["room"]["id"]})
            assert reply["ok"] is True
        (rooms,) = await host.next_event("updaterooms", where=lambda args: len(args[0][0]["players"]) == 2)
        assert [p["id"] for p in rooms[0]["players"]] == ["p0", "p1"]
        assert "3/4" not in repr(host.events)


@pytest.mark.parametrize("peer", ["node", "pysocketio"])
async def test_limits_from_flags(peer: str) -> None:
    opener = open_node_peer if peer == "node" else open_pysocketio_peer
    async with opener("--max-rooms", "1", "--max-players", "1") as url, open_clients("node") as clients:
        host = await joined(clients, url, MIA)
        (made,) = await host.call("create_room", {"name": "R", "deck": DECK})
        assert made["room"]["max_players"] == 1
        sam = await joined(clients, url, SAM)
        assert error_code(await sam.call("create_room", {"name": "R2", "deck": DECK})) == "too_many_rooms"
        assert (await sam.call("join_room", {"id": 1}))[0]["ok"] is True
        third = await joined(clients, url, {"id": 3})
        assert error_code(await third.call("join_room", {"id": 1})) == "room_full"


@pytest.mark.parametrize("peer", ["node", "pysocketio"])
async def test_rate_limit_comes_first(peer: str) -> None:
    opener = open_node_peer if peer == "node" else open_pysocketio_peer
    async with opener("--command-rate", "0.001", "--command-burst", "3") as url, open_clients("node") as clients:
        sock = clients.connect(url)
        codes = [error_code(await sock.call("join_room", "bad")) for _ in range(4)]
        assert codes == ["invalid_payload"] * 3 + ["rate_limited"]


async def test_unknown_namespace_is_refused(peer_url: str) -> None:
    async with open_clients("node") as clients:
        sock = clients.connect(peer_url, "/nope")
        with pytest.raises(ConnectRefused, match="Invalid namespace"):
            await sock.wait_connected()


async def test_takeover_across_namespaces_keeps_the_host_seat(peer_url: str) -> None:
    async with open_clients("node") as clients:
        old = await joined(clients, peer_url, MIA, namespace="/")
        (made,) = await old.call("create_room", {"name": "R", "deck": DECK})
        new = clients.connect(peer_url, "/lobby")
        (reply,) = await new.call("join_lobby", {"id": 1, "username": "mia2"})
        assert reply == {"ok": True, "user": {**MIA, "username": "mia2"}, "room": made["room"]["id"]}
        (replaced,) = await old.next_event("replaced")
        assert isinstance(replaced["reason"], str)
        assert await old.next_event("disconnect") == ["server disconnect"]
        (rooms,) = await new.next_event("updaterooms", where=lambda args: args[0] and args[0][0]["host"]["username"] == "mia2")
        assert rooms[0]["id"] == made["room"]["id"]


async def test_host_disconnect_closes_the_room(peer_url: str) -> None:
    async with open_clients("node") as clients:
        host = await joined(clients, peer_url, MIA)
        sam = await joined(clients, peer_url, SAM)
        (made,) = await host.call("create_room", {"name": "R", "deck": DECK})
        await sam.call("join_room", {"id": made["room"]["id"]})
        await host.disconnect()
        assert await sam.next_event("roomclosed") == [{"id": made["room"]["id"], "reason": "host_disconnected"}]
        assert await sam.next_event("updaterooms", where=lambda args: args[0] == []) == [[]]
