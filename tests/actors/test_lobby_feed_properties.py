"""Random lobby sessions with codes, unlisted rooms and watchers, checked after
each step against a brute-force oracle built from the lobby's own list.

Clients (some of which stop reading for a while) watch with random filters and
limits; after every step each reading watcher's view, replayed from its ack and
its ``roomschanged`` events, must equal the newest ``limit`` listed rooms that
match its filter. Versions never go back and deltas have no gaps; an unlisted
room never shows in a list, an ack or a frame; the codes of open rooms are
distinct and join their rooms.
"""

from __future__ import annotations

from typing import Any

import trio
from actors.helpers import make_deck
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roomactors.actors import Lobby, MemoryClient, RoomLimits, open_lobby

SLOTS = 4
USERS = (1, 2, "three", "four")
LIMITS = RoomLimits(max_rooms=6, max_players=1, command_rate=None)
NAMES = ("Fractions", "maps", "FRACTIONS 2")

filters = st.fixed_dictionaries(
    {},
    optional={
        "state": st.sampled_from(["waiting", ["waiting", "racing"], []]),
        "has_seats": st.booleans(),
        "name": st.sampled_from(["fract", "MAPS", "x"]),
        "host": st.sampled_from(USERS),
    },
)
slot = st.integers(0, SLOTS - 1)
step = st.one_of(
    st.tuples(st.just("create_room"), slot, st.tuples(st.sampled_from(NAMES), st.sampled_from([True, False, None]),
                                                     st.booleans())),
    st.tuples(st.just("join_by_code"), slot, st.integers(0, 10)),
    st.tuples(st.just("join_by_id"), slot, st.integers(1, 8)),
    st.tuples(st.just("leave_room"), slot, st.integers(1, 8)),
    st.tuples(st.just("watch_rooms"), slot, st.tuples(filters, st.integers(1, 3))),
    st.tuples(st.just("unwatch_rooms"), slot, st.none()),
    st.tuples(st.just("pause"), slot, st.none()),
    st.tuples(st.just("resume"), slot, st.none()),
    st.tuples(st.just("leave_lobby"), slot, st.none()),
    st.tuples(st.just("join_lobby"), slot, st.none()),
)


def matches(spec: dict[str, Any], room: dict[str, Any]) -> bool:
    state = spec.get("state")
    if state is not None and room["state"] not in ([state] if isinstance(state, str) else state):
        return False
    seats = not room["locked"] and len(room["players"]) < room["max_players"] and room["state"] in ("waiting", "finished")
    if spec.get("has_seats") is not None and seats != spec["has_seats"]:
        return False
    if spec.get("name") is not None and spec["name"].casefold() not in room["name"].casefold():
        return False
    host = spec.get("host")
    return host is None or (type(host) is type(room["host"]["id"]) and host == room["host"]["id"])


class Watcher:
    def __init__(self, client: MemoryClient, ack: dict[str, Any], spec: dict[str, Any], limit: int,
                 last_version: int) -> None:
        assert ack["ok"] is True, ack
        assert ack["version"] > last_version
        self.client, self.spec, self.limit = client, spec, limit
        self.version = ack["version"]
        self.view = {room["id"]: room for room in ack["rooms"]}
        self.applied = len(client.updates_named("roomschanged"))

    def catch_up(self) -> None:
        frames = self.client.updates_named("roomschanged")
        for frame in frames[self.applied:]:
            if frame["snapshot"]:
                assert frame["version"] > self.version
                self.view = {room["id"]: room for room in frame["rooms"]}
            else:
                assert frame["version"] == self.version + 1, (self.version, frame)
                for room_id in frame["remove"]:
                    self.view.pop(room_id, None)
                for room in frame["upsert"]:
                    self.view[room["id"]] = room
            self.version = frame["version"]
        self.applied = len(frames)


async def run(steps: list[tuple[str, int, Any]]) -> None:
    async with open_lobby(LIMITS) as lobby:
        clients = [MemoryClient(f"c{i}") for i in range(SLOTS)]
        for client in clients:
            await lobby.connect(client)
        watchers: dict[int, Watcher] = {}
        versions = [0] * SLOTS
        codes: list[str] = []
        unlisted: set[int] = set()
        for i in range(SLOTS):
            await lobby.command(clients[i], "join_lobby", {"id": USERS[i]})
        for kind, i, arg in steps:
            client = clients[i]
            if kind == "create_room":
                name, listed, private = arg
                payload: dict[str, Any] = {"name": name, "deck": make_deck(private=private)}
                if listed is not None:
                    payload["listed"] = listed
                ack = await lobby.command(client, "create_room", payload)
                if ack["ok"]:
                    codes.append(ack["room"]["code"])
                    if listed is False or (listed is None and private):
                        unlisted.add(ack["room"]["id"])
            elif kind == "join_by_code" and codes:
                ack = await lobby.command(client, "join_room", {"code": codes[arg % len(codes)].lower()})
                assert ack["ok"] or ack["error"]["code"] in {"room_not_found", "already_in_room", "room_full", "not_in_lobby"}, ack
            elif kind in ("join_by_id", "leave_room"):
                command = "join_room" if kind == "join_by_id" else "leave_room"
                ack = await lobby.command(client, command, {"id": arg})
                if not ack["ok"] and arg in unlisted:
                    assert ack["error"]["code"] in ("room_not_found", "not_in_lobby"), ack
            elif kind == "watch_rooms":
                spec, limit = arg
                ack = await lobby.command(client, "watch_rooms", {"filter": spec, "limit": limit})
                if client.reading:  # a paused client's ack is checked against its view when it reads again
                    watchers[i] = Watcher(client, ack, spec, limit, versions[i])
                    versions[i] = watchers[i].version
                else:
                    client.resume()
                    watchers[i] = Watcher(client, ack, spec, limit, versions[i])
                    client.pause()
                    versions[i] = watchers[i].version
            elif kind == "unwatch_rooms":
                assert await lobby.command(client, "unwatch_rooms", {}) == {"ok": True}
                if i in watchers:
                    watchers[i].catch_up()
                    versions[i] = watchers.pop(i).version
            elif kind == "pause":
                client.pause()
            elif kind == "resume":
                client.resume()
            elif kind == "leave_lobby":
                await lobby.command(client, "leave_lobby", {"id": USERS[i]})
            elif kind == "join_lobby":
                await lobby.command(client, "join_lobby", {"id": USERS[i]})
            await check(lobby, clients, watchers, unlisted, versions)


async def check(lobby: Lobby, clients: list[MemoryClient], watchers: dict[int, Watcher], unlisted: set[int],
                versions: list[int]) -> None:
    snapshot = await lobby.snapshot()
    listed = snapshot.rooms.to_json()
    assert not {room["id"] for room in listed} & unlisted
    open_codes = [room["code"] for room in listed]
    assert len(set(open_codes)) == len(open_codes)
    newest_first = sorted(listed, key=lambda room: room["id"], reverse=True)
    for client in clients:
        for name, payload in client.updates:
            if name == "roomschanged":
                shown = payload.get("rooms", []) + payload.get("upsert", [])
                assert not {room["id"] for room in shown} & unlisted
        if client.room_list is not None:
            assert not {room["id"] for room in client.room_list.to_json()} & unlisted
    for i, watcher in watchers.items():
        if not watcher.client.reading:
            continue
        watcher.catch_up()
        versions[i] = watcher.version
        expected = [room for room in newest_first if matches(watcher.spec, room)][: watcher.limit]
        assert watcher.view == {room["id"]: room for room in expected}, (watcher.spec, watcher.limit)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=5, max_size=40))
def test_watchers_see_exactly_the_newest_matching_listed_rooms(steps: list[tuple[str, int, Any]]) -> None:
    trio.run(run, steps)
