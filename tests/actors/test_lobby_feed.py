"""The lobby at scale through the embedding API: room codes, unlisted rooms,
``roomupdated``, ``watch_rooms``/``roomschanged`` and the bounds on full lists."""

from __future__ import annotations

import itertools
from typing import Any

import trio
import trio.testing
from actors.helpers import make_deck

from roomactors.actors import Lobby, MemoryClient, RoomLimits, open_lobby
from roomactors.actors.codes import CODE_ALPHABET

Ack = dict[str, Any]


def code_of(ack: Ack) -> str:
    assert ack["ok"] is True, ack
    return str(ack["room"]["code"])


def error_code(ack: Ack) -> str:
    assert ack["ok"] is False, ack
    return str(ack["error"]["code"])


async def joined(lobby: Lobby, name: str) -> MemoryClient:
    client = MemoryClient(name)
    await lobby.connect(client)
    assert (await lobby.join_lobby(client, name))["ok"]
    return client


async def create(lobby: Lobby, host: MemoryClient, name: str = "Room", **extra: Any) -> Ack:
    ack = await lobby.command(host, "create_room", {"name": name, "deck": make_deck(), **extra})
    assert ack["ok"] is True, ack
    return ack


async def settle(lobby: Lobby) -> None:
    """Until the lobby has published what it handled (a snapshot is answered after a batch)."""
    await lobby.snapshot()


class FeedView:
    """A feed client's side: the ack, then every roomschanged replayed in order."""

    def __init__(self, client: MemoryClient) -> None:
        self.client = client
        self.version = 0
        self.rooms: dict[int, Any] = {}
        self.seen = 0
        self.snapshots = 0

    def ack(self, ack: Ack) -> None:
        assert ack["ok"] is True, ack
        assert ack["version"] > self.version
        self.version = ack["version"]
        self.rooms = {room["id"]: room for room in ack["rooms"]}
        self.seen = len(self.client.updates_named("roomschanged"))

    def catch_up(self) -> None:
        frames = self.client.updates_named("roomschanged")
        for frame in frames[self.seen:]:
            if frame["snapshot"]:
                assert frame["version"] > self.version
                self.rooms = {room["id"]: room for room in frame["rooms"]}
                self.snapshots += 1
            else:
                assert frame["version"] == self.version + 1
                for room_id in frame["remove"]:
                    self.rooms.pop(room_id, None)
                for room in frame["upsert"]:
                    self.rooms[room["id"]] = room
            self.version = frame["version"]
        self.seen = len(frames)

    def ids(self) -> list[int]:
        self.catch_up()
        return sorted(self.rooms, reverse=True)


async def test_codes_in_the_ack_and_the_list_and_join_by_code(lobby: Lobby) -> None:
    host, player = await joined(lobby, "host"), await joined(lobby, "player")
    ack = await create(lobby, host)
    code = code_of(ack)
    assert len(code) == 6 and set(code) <= set(CODE_ALPHABET)
    assert (await player.next_room_list()).to_json()[0]["code"] == code
    assert error_code(await lobby.command(player, "join_room", {"code": "ZZZZZZ" if code != "ZZZZZZ" else "YYYYYY"})) \
        == "room_not_found"
    assert error_code(await lobby.command(player, "join_room", {"code": "nope"})) == "room_not_found"
    assert error_code(await lobby.command(player, "join_room", {"code": None})) == "invalid_payload"
    assert error_code(await lobby.command(player, "join_room", {"id": 1, "code": code})) == "invalid_payload"
    joined_ack = await lobby.command(player, "join_room", {"code": code.lower()})
    assert joined_ack["ok"] and joined_ack["room"]["id"] == ack["room"]["id"]
    assert joined_ack["room"]["code"] == code
    assert [p["id"] for p in joined_ack["room"]["players"]] == ["player"]


async def test_codes_differ_between_rooms(lobby: Lobby) -> None:
    codes = set()
    for i in range(30):
        codes.add(code_of(await create(lobby, await joined(lobby, f"h{i}"))))
    assert len(codes) == 30


async def test_unlisted_rooms_are_in_no_list_and_joined_only_by_code(lobby: Lobby) -> None:
    host, player, other, watcher = [await joined(lobby, n) for n in ("host", "player", "other", "watcher")]
    watch = await lobby.command(watcher, "watch_rooms", {})
    assert watch == {"ok": True, "version": 1, "rooms": []}
    lists_before = watcher.room_lists_received
    ack = await create(lobby, host, listed=False)
    room_id, code = ack["room"]["id"], code_of(ack)
    assert error_code(await lobby.command(player, "join_room", {"id": room_id})) == "room_not_found"
    assert error_code(await lobby.command(other, "leave_room", {"id": room_id})) == "room_not_found"
    joined_ack = await lobby.command(player, "join_room", {"code": code})
    assert joined_ack["ok"], joined_ack
    assert (await lobby.command(player, "join_room", {"id": room_id}))["ok"]  # a member: nothing changes
    await settle(lobby)
    for client in (host, player, other):
        assert client.room_list is not None and client.room_list.to_json() == []
    assert watcher.updates_named("roomschanged") == [] and watcher.room_lists_received == lists_before
    # the members see their room through roomupdated, code included
    assert host.updates_named("roomupdated")[-1]["room"]["code"] == code
    assert [p["id"] for p in host.updates_named("roomupdated")[-1]["room"]["players"]] == ["player"]
    assert player.updates_named("roomupdated")[-1]["room"]["id"] == room_id
    assert other.updates_named("roomupdated") == []


async def test_a_private_deck_makes_an_unlisted_room_unless_listed_says_otherwise(lobby: Lobby) -> None:
    a, b, c = [await joined(lobby, n) for n in ("a", "b", "c")]
    await lobby.command(a, "create_room", {"name": "x", "deck": make_deck(private=True)})
    await lobby.command(b, "create_room", {"name": "y", "deck": make_deck(private=True), "listed": True})
    await settle(lobby)
    assert [room["name"] for room in c.room_list.to_json()] == ["y"]  # type: ignore[union-attr]
    assert error_code(await lobby.command(c, "create_room", {"name": "z", "deck": make_deck(), "listed": 1})) \
        == "invalid_payload"


async def test_roomupdated_to_members_and_not_to_who_left(lobby: Lobby) -> None:
    host, player = await joined(lobby, "host"), await joined(lobby, "player")
    room_id = (await create(lobby, host))["room"]["id"]
    await settle(lobby)
    assert len(host.updates_named("roomupdated")) == 1
    await lobby.join_room(player, room_id)
    await settle(lobby)
    assert len(player.updates_named("roomupdated")) == 1
    assert len(host.updates_named("roomupdated")) == 2
    await lobby.leave_room(player, room_id)
    await settle(lobby)
    assert len(player.updates_named("roomupdated")) == 1
    assert host.updates_named("roomupdated")[-1]["room"]["players"] == []


async def test_watch_rooms_filters_and_stops_full_lists(lobby: Lobby) -> None:
    watcher = MemoryClient("watcher")
    await lobby.connect(watcher)  # anonymous: watching needs no user
    hosts = [await joined(lobby, f"h{i}") for i in range(4)]
    for i, host in enumerate(hosts[:3]):
        await create(lobby, host, name=f"Fractions {i}" if i % 2 == 0 else "Maps")
    await settle(lobby)
    lists_before = watcher.room_lists_received
    view = FeedView(watcher)
    view.ack(await lobby.watch_rooms(watcher, {"name": "FRACT"}, limit=1))
    assert [room["name"] for room in view.rooms.values()] == ["Fractions 2"]
    await create(lobby, hosts[3], name="Maps too")  # does not match: nothing
    await settle(lobby)
    assert watcher.updates_named("roomschanged") == []
    await lobby.leave_room(hosts[2], 3)  # the newest match closes: the next one comes back within the limit
    await settle(lobby)
    assert view.ids() == [1]
    assert watcher.updates_named("roomschanged")[-1] == {
        "version": 2, "upsert": [view.rooms[1]], "remove": [3], "snapshot": False}
    assert watcher.room_lists_received == lists_before  # no updaterooms while watching
    assert await lobby.unwatch_rooms(watcher) == {"ok": True}
    assert watcher.room_lists_received == lists_before + 1
    assert [room["id"] for room in watcher.room_list.to_json()] == [1, 2, 4]  # type: ignore[union-attr]


async def test_watch_rooms_refuses_bad_filters(lobby: Lobby) -> None:
    client = MemoryClient("c")
    await lobby.connect(client)
    for payload in ({"limit": 0}, {"limit": 1001}, {"filter": {"state": "Racing"}}, {"filter": []}):
        assert error_code(await lobby.command(client, "watch_rooms", payload)) == "invalid_payload"
    ack = await lobby.command(client, "watch_rooms", {"filter": {"state": [], "later": 1}})
    assert ack == {"ok": True, "version": 1, "rooms": []}


async def test_a_client_that_stops_reading_gets_a_snapshot_when_it_resumes(lobby: Lobby) -> None:
    watcher = MemoryClient("watcher")
    await lobby.connect(watcher)
    view = FeedView(watcher)
    view.ack(await lobby.command(watcher, "watch_rooms", {"limit": 3}))
    hosts = [await joined(lobby, f"h{i}") for i in range(40)]  # more changes than the limit and than 32
    await create(lobby, hosts[0])
    await settle(lobby)
    assert view.ids() == [1]
    watcher.pause()
    for host in hosts[1:]:
        await create(lobby, host)
        await settle(lobby)
    watcher.resume()
    frames = watcher.updates_named("roomschanged")
    assert frames[-1]["snapshot"] is True and len(frames) == 2  # one frame waited, merged, then a snapshot
    assert view.ids() == [40, 39, 38] and view.snapshots == 1
    await lobby.leave_room(hosts[39], 40)
    await settle(lobby)
    assert view.ids() == [39, 38, 37]


async def test_a_paused_client_gets_one_merged_frame_without_a_gap(lobby: Lobby) -> None:
    watcher = MemoryClient("watcher")
    await lobby.connect(watcher)
    view = FeedView(watcher)
    view.ack(await lobby.command(watcher, "watch_rooms", {"limit": 10}))
    hosts = [await joined(lobby, f"h{i}") for i in range(3)]
    watcher.pause()
    for host in hosts:
        await create(lobby, host)
        await settle(lobby)
    watcher.resume()
    frames = watcher.updates_named("roomschanged")
    assert [(f["version"], [r["id"] for r in f["upsert"]]) for f in frames] == [(2, [1, 2, 3])]
    assert view.ids() == [3, 2, 1]


async def test_full_lists_are_cut_to_their_size_bound() -> None:
    async with open_lobby(RoomLimits(command_rate=None, max_list_bytes=900)) as lobby:
        watcher = await joined(lobby, "w")
        for i in range(6):
            await create(lobby, await joined(lobby, f"h{i}"))
        await settle(lobby)
        room_list = watcher.room_list
        assert room_list is not None and room_list.total == 6
        ids = [room["id"] for room in room_list.to_json()]
        assert 0 < len(ids) < 6 and ids == list(range(7 - len(ids), 7))  # the newest, oldest first


async def test_large_lists_are_coalesced_and_the_last_one_still_arrives(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limits = RoomLimits(command_rate=None, large_list_bytes=0, large_list_interval=0.25)
    async with open_lobby(limits) as lobby:
        watcher = await joined(lobby, "w")
        hosts = [await joined(lobby, f"h{i}") for i in range(5)]
        await settle(lobby)
        start_version = watcher.room_list.version  # type: ignore[union-attr]
        times = []
        for host in hosts:
            await create(lobby, host)
            await settle(lobby)
        while watcher.room_list is None or len(watcher.room_list) < 5:
            await watcher.next_room_list()
            times.append(trio.current_time())
        assert watcher.room_list.version - start_version < 5  # type: ignore[union-attr]
        assert all(b - a >= 0.25 for a, b in itertools.pairwise(times))


async def test_replaced_and_disconnected_watchers_are_forgotten(lobby: Lobby) -> None:
    watcher = MemoryClient("w")
    await lobby.connect(watcher)
    await lobby.command(watcher, "watch_rooms", {})
    await lobby.disconnect(watcher)
    replaced = MemoryClient("r")
    await lobby.connect(replaced)
    token = (await lobby.join_lobby(replaced, "r"))["token"]
    await lobby.command(replaced, "watch_rooms", {})
    await lobby.connect(second := MemoryClient("r2"))
    ack = await lobby.command(second, "join_lobby", {"id": "r", "token": token})  # a takeover (race.md, "Identity")
    assert ack["ok"], ack
    host = await joined(lobby, "h")
    await create(lobby, host)
    await settle(lobby)
    assert watcher.updates_named("roomschanged") == []
    assert replaced.detached is not None and replaced.updates_named("roomschanged") == []


