"""Room codes, unlisted rooms and the room feed end to end (protocol.md, "Room
codes and the room feed"): python-socketio and socket.io-client 4 under Node on
127.0.0.1, port 0; a raw long-polling session as the client that stops reading
(it simply sends no GET: the server can write nothing to it, exactly like a
stalled tab). Everything is asserted on what the clients received.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from robustness.rawclients import RawPolling, encode_event
from support.clients import ClientSocket, client_params, open_clients
from support.roomapp import Served, serve_room_app

from roomactors.actors.codes import CODE_ALPHABET

DECK = {"name": "Week 3", "flashcards": [{"id": 1, "problem": "1/2+1/4", "answer": "3/4"}]}


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    async with serve_room_app() as served:
        yield served


async def signed_in(clients: Any, url: str, user_id: str) -> ClientSocket:
    sock: ClientSocket = clients.connect(url, "/lobby")
    await sock.wait_connected()
    (ack,) = await sock.call("join_lobby", {"id": user_id})
    assert ack["ok"] is True, ack
    return sock


class Feed:
    """A watcher's view, replayed from the ack and the roomschanged it received."""

    def __init__(self, sock: ClientSocket, ack: dict[str, Any]) -> None:
        assert ack["ok"] is True, ack
        self.sock = sock
        self.version = ack["version"]
        self.rooms = {room["id"]: room for room in ack["rooms"]}
        self.applied = len(sock.received("roomschanged"))

    def apply(self) -> None:
        frames = [args[0] for args in self.sock.received("roomschanged")]
        for frame in frames[self.applied:]:
            if frame["snapshot"]:
                assert frame["version"] > self.version
                self.rooms = {room["id"]: room for room in frame["rooms"]}
            else:
                assert frame["version"] == self.version + 1, (self.version, frame)
                for room_id in frame["remove"]:
                    self.rooms.pop(room_id, None)
                for room in frame["upsert"]:
                    self.rooms[room["id"]] = room
            self.version = frame["version"]
        self.applied = len(frames)

    async def until(self, version: int) -> list[str]:
        await self.sock.next_event("roomschanged", where=lambda args: args[0]["version"] >= version)
        self.apply()
        return [room["name"] for _, room in sorted(self.rooms.items(), reverse=True)]


@pytest.mark.parametrize("client_kind", client_params())
async def test_codes_and_unlisted_rooms(served: Served, client_kind: str) -> None:
    async with open_clients(client_kind) as clients:
        host, player, other = [await signed_in(clients, served.url, n) for n in ("host", "player", "other")]
        (ack,) = await host.call("create_room", {"name": "Secret", "deck": DECK, "listed": False})
        room, code = ack["room"], ack["room"]["code"]
        assert len(code) == 6 and set(code) <= set(CODE_ALPHABET)
        (refused,) = await other.call("join_room", {"id": room["id"]})
        assert refused["error"]["code"] == "room_not_found"
        (refused,) = await other.call("join_room", {"code": "ZZZZZ2" if code != "ZZZZZ2" else "ZZZZZ3"})
        assert refused["error"]["code"] == "room_not_found"
        (refused,) = await other.call("join_room", {"code": None})
        assert refused["error"]["code"] == "invalid_payload"
        (joined,) = await player.call("join_room", {"code": code.lower()})
        assert joined["ok"] is True and joined["room"]["id"] == room["id"] and joined["room"]["code"] == code
        # the members see their room through roomupdated, nobody sees it in a list
        for sock in (host, player):
            (update,) = await sock.next_event("roomupdated", where=lambda args: args[0]["room"]["players"])
            assert update["room"]["code"] == code and update["room"]["players"][0]["id"] == "player"
        (listed,) = await other.call("create_room", {"name": "Open", "deck": DECK})
        for sock in (host, player, other):
            (rooms,) = await sock.next_event("updaterooms", where=lambda args: args[0])
            assert [r["name"] for r in rooms] == ["Open"] and rooms[0]["code"] == listed["room"]["code"]
        assert all(r["name"] != "Secret" for args in other.received("updaterooms") for r in args[0])
        assert other.received("roomupdated")[-1][0]["room"]["name"] == "Open"


@pytest.mark.parametrize("client_kind", client_params())
async def test_the_feed_with_a_filter(served: Served, client_kind: str) -> None:
    async with open_clients(client_kind) as clients:
        watcher = clients.connect(served.url, "/lobby")  # anonymous: watching needs no user
        await watcher.wait_connected()
        hosts = [await signed_in(clients, served.url, f"h{i}") for i in range(4)]
        (ack,) = await watcher.call("watch_rooms", {"filter": {"name": "fract", "has_seats": True}, "limit": 2})
        assert ack == {"ok": True, "version": 1, "rooms": []}
        feed = Feed(watcher, ack)
        lists = len(watcher.received("updaterooms"))
        await hosts[0].call("create_room", {"name": "Fractions A", "deck": DECK})
        await hosts[1].call("create_room", {"name": "Maps", "deck": DECK})  # no match: no event
        await hosts[2].call("create_room", {"name": "more FRACTIONS", "deck": DECK})
        assert await feed.until(3) == ["more FRACTIONS", "Fractions A"]
        await hosts[3].call("create_room", {"name": "Fractions C", "deck": DECK})  # pushes A out (limit 2)
        assert await feed.until(4) == ["Fractions C", "more FRACTIONS"]
        (frame,) = watcher.received("roomschanged")[-1]
        assert frame["remove"] == [1] and [r["name"] for r in frame["upsert"]] == ["Fractions C"]
        await hosts[3].call("leave_room", {"id": 4})  # C closes: A comes back within the limit
        assert await feed.until(5) == ["more FRACTIONS", "Fractions A"]
        assert len(watcher.received("updaterooms")) == lists, "no full lists while watching"
        (bad,) = await watcher.call("watch_rooms", {"filter": {"state": "lobby"}})
        assert bad["error"]["code"] == "invalid_payload"
        (again,) = await watcher.call("watch_rooms", {"filter": {"host": "h1"}})
        assert again["version"] > 5 and [r["name"] for r in again["rooms"]] == ["Maps"]
        assert (await watcher.call("unwatch_rooms", {}))[0] == {"ok": True}
        (rooms,) = await watcher.next_event("updaterooms")
        assert [r["name"] for r in rooms] == ["Fractions A", "Maps", "more FRACTIONS"]


async def test_a_client_that_stops_reading_gets_a_snapshot_when_it_resumes(served: Served) -> None:
    poller = await RawPolling.open(served.port)
    try:
        await poller.connect_namespace("/lobby")
        await poller.post(encode_event("watch_rooms", {"limit": 1}, ack=1))
        ack = json.loads((await poller.poll_until("43/lobby,1["))[len("43/lobby,1"):])[0]
        assert ack == {"ok": True, "version": 1, "rooms": []}
        # from here on the poller sends no GET: the server holds what it has for it
        async with open_clients("python") as clients:
            host = await signed_in(clients, served.url, "host")
            for _ in range(40):  # 80 changes of 40 rooms: more than the poller's limit and than 32
                (created,) = await host.call("create_room", {"name": "R", "deck": DECK})
                assert (await host.call("leave_room", {"id": created["room"]["id"]}))[0] == {"ok": True}
            (last,) = await host.call("create_room", {"name": "Last", "deck": DECK})
            with trio.fail_after(10):
                frame = await next_feed_frame(poller)
            assert frame["snapshot"] is True and frame["version"] > 1
            assert [room["name"] for room in frame["rooms"]] == ["Last"]
            # reading again: the next change is the next version, a delta
            assert (await host.call("leave_room", {"id": last["room"]["id"]}))[0] == {"ok": True}
            with trio.fail_after(10):
                after = await next_feed_frame(poller)
            assert after == {"version": frame["version"] + 1, "upsert": [], "remove": [last["room"]["id"]],
                             "snapshot": False}
            assert not [p for p in poller.received if p.startswith('42/lobby,["updaterooms"')]
    finally:
        await poller.aclose()


async def next_feed_frame(poller: RawPolling) -> dict[str, Any]:
    packet = await poller.poll_until('42/lobby,["roomschanged",')
    frame: dict[str, Any] = json.loads(packet[len("42/lobby,"):])[1]
    return frame
