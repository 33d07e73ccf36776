"""The room directory, sans-IO, against a brute-force oracle.

Random rooms and changes, random watchers (filters, limits), connections that
deliver their frames late or never; at every sync point each watcher's view,
replayed from its ack and the frames it received, equals the oracle's newest
``limit`` listed rooms that match its filter. Versions strictly increase and
deltas have no gaps; unlisted rooms never show in a list or a feed; full lists
are the newest rooms that fit their size bound.
"""

from __future__ import annotations

import json
import math
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roomactors.actors.directory import (
    ROOM_STATES,
    FeedFrame,
    RoomDirectory,
    RoomFilter,
    room_has_seats,
)
from roomactors.actors.records import DeckInfo, JsonDict, RoomSummary, User


@dataclass(frozen=True)
class RaceSummary(RoomSummary):
    """A summary as race.md has it (``state``, ``locked``), for the filters."""

    state: str = "waiting"
    locked: bool = False
    late_join: bool = False

    def to_json(self) -> JsonDict:
        return {**super().to_json(), "state": self.state, "locked": self.locked}


HOSTS: tuple[Any, ...] = (1, "1", "ana", 7)
NAMES = ("Fractions", "fractions 2", "Maps", "MAPS quiz", "Verbs")


def summary(room_id: int, host: Any, name: str, players: int, max_players: int, state: str, locked: bool,
            late_join: bool = False) -> RaceSummary:
    return RaceSummary(
        id=room_id, name=name, host=User(host, f"u{host}"), deck=DeckInfo("d", 1),
        players=tuple(User(f"p{i}") for i in range(players)), max_players=max_players,
        state=state, locked=locked, late_join=late_join,
    )


room_fields = st.fixed_dictionaries({
    "host": st.sampled_from(HOSTS),
    "name": st.sampled_from(NAMES),
    "players": st.integers(0, 3),
    "max_players": st.integers(0, 3),
    "state": st.sampled_from(ROOM_STATES),
    "locked": st.booleans(),
    "late_join": st.booleans(),
})
filters = st.builds(
    RoomFilter,
    states=st.none() | st.frozensets(st.sampled_from(ROOM_STATES), max_size=3),
    has_seats=st.none() | st.booleans(),
    name=st.none() | st.sampled_from(("fract", "maps", "x", "")),
    host=st.none() | st.sampled_from(HOSTS),
)
KEYS = 4
key = st.integers(0, KEYS - 1)
step = st.one_of(
    st.tuples(st.just("create"), room_fields, st.booleans()),
    st.tuples(st.just("update"), st.integers(0, 50), room_fields),
    st.tuples(st.just("close"), st.integers(0, 50), st.none()),
    st.tuples(st.just("watch"), key, st.tuples(filters, st.integers(1, 4))),
    st.tuples(st.just("unwatch"), key, st.none()),
    st.tuples(st.just("flush"), st.none(), st.none()),
    st.tuples(st.just("deliver"), key, st.none()),
    st.tuples(st.just("sync"), st.none(), st.none()),
    st.tuples(st.just("publish"), st.none(), st.none()),
)


class FeedClient:
    """One connection's side of the feed: an outbox slot (newest wins) and the replayed view."""

    def __init__(self) -> None:
        self.slot: FeedFrame | None = None
        self.view: dict[int, JsonDict] | None = None
        self.version = 0
        self.seen: list[int] = []

    def ack(self, version: int, rooms: list[JsonDict]) -> None:
        self.deliver()  # a frame already queued leaves before the ack
        assert version > self.version
        self.version = version
        self.view = {room["id"]: room for room in rooms}

    def deliver(self) -> None:
        frame, self.slot = self.slot, None
        if frame is None:
            return
        body = frame.to_json()
        json.dumps(body)  # JSON-ready
        if body["snapshot"]:
            assert body["version"] > self.version, "a snapshot goes forward"
            self.view = {room["id"]: room for room in body["rooms"]}
        else:
            assert body["version"] == self.version + 1, f"gap: {self.version} -> {body['version']}"
            assert self.view is not None
            assert not {room["id"] for room in body["upsert"]} & set(body["remove"])
            for room_id in body["remove"]:
                self.view.pop(room_id, None)
            for room in body["upsert"]:
                self.view[room["id"]] = room
        self.version = body["version"]


class Oracle:
    def __init__(self) -> None:
        self.rooms: dict[int, tuple[RaceSummary, str, bool]] = {}

    def expected(self, room_filter: RoomFilter, limit: int) -> dict[int, JsonDict]:
        chosen = [
            room_id for room_id, (s, _, listed) in sorted(self.rooms.items(), reverse=True)
            if listed and _brute_match(room_filter, s)
        ][:limit]
        return {room_id: self.json(room_id) for room_id in chosen}

    def json(self, room_id: int) -> JsonDict:
        s, code, _ = self.rooms[room_id]
        return {**s.to_json(), "code": code}

    def listed_json(self) -> list[JsonDict]:
        return [self.json(room_id) for room_id, (_, _, listed) in sorted(self.rooms.items()) if listed]


def _brute_match(f: RoomFilter, s: RaceSummary) -> bool:
    """protocol.md's filter rules, written out again as plainly as possible."""
    if f.host is not None and not (type(f.host) is type(s.host.id) and f.host == s.host.id):
        return False
    if f.states is not None and s.state not in f.states:
        return False
    if f.has_seats is not None:
        seats = not s.locked and len(s.players) < s.max_players and (
            s.state in ("waiting", "finished") or s.late_join)
        if seats != f.has_seats:
            return False
    return f.name is None or f.name.casefold() in s.name.casefold()


def _json_len(value: object) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


@settings(max_examples=300, deadline=None)
@given(st.lists(step, max_size=60), st.integers(300, 3000), st.integers(0, 4))
def test_feed_and_lists_equal_the_oracle(steps: list[tuple[str, Any, Any]], max_list_bytes: int,
                                         min_snapshot_delta: int) -> None:
    directory = RoomDirectory(max_list_bytes=max_list_bytes, large_list_bytes=10**9,
                              min_snapshot_delta=min_snapshot_delta)
    oracle = Oracle()
    clients: dict[Hashable, FeedClient] = {k: FeedClient() for k in range(KEYS)}
    watching: dict[Hashable, tuple[RoomFilter, int]] = {}
    next_id = 1
    unlisted_ids: set[int] = set()

    def flush() -> None:
        for k, frame in directory.take_frames(lambda k: clients[k].slot is not None):
            assert k in watching
            clients[k].slot = frame

    def check_no_unlisted() -> None:
        for client in clients.values():
            assert not set(client.view or ()) & unlisted_ids
        assert not {room.id for room in directory.room_list.rooms} & unlisted_ids

    for kind, a, b in steps:
        if kind == "create":
            s = summary(next_id, **a)
            code = f"C{next_id:05d}"
            directory.put(s, code=code, listed=b)
            oracle.rooms[next_id] = (s, code, b)
            if not b:
                unlisted_ids.add(next_id)
            next_id += 1
        elif kind in ("update", "close") and oracle.rooms:
            room_id = sorted(oracle.rooms)[a % len(oracle.rooms)]
            _, code, listed = oracle.rooms[room_id]
            if kind == "update":
                s = summary(room_id, **b)
                directory.put(s, code=code, listed=listed)
                oracle.rooms[room_id] = (s, code, listed)
            else:
                directory.drop(room_id)
                del oracle.rooms[room_id]
        elif kind == "watch":
            room_filter, limit = b
            version, rooms = directory.watch(a, room_filter, limit)
            assert [room["id"] for room in rooms] == sorted((room["id"] for room in rooms), reverse=True)
            clients[a].ack(version, rooms)
            assert clients[a].view == oracle.expected(room_filter, limit)
            watching[a] = b
        elif kind == "unwatch":
            assert directory.unwatch(a) == (a in watching)
            watching.pop(a, None)
            clients[a].deliver()
            clients[a].view = None
        elif kind == "flush":
            flush()
        elif kind == "deliver":
            clients[a].deliver()
        elif kind == "sync":
            flush()
            for k, client in clients.items():
                client.deliver()
                if k in watching:
                    assert client.view == oracle.expected(*watching[k])
        elif kind == "publish":
            room_list = directory.publish_list(0.0)
            full = oracle.listed_json()
            shown = room_list.to_json()
            assert _json_len(shown) <= max_list_bytes
            assert shown == full[len(full) - len(shown):], "the newest rooms, in creation order"
            if len(shown) < len(full):
                assert _json_len(full[len(full) - len(shown) - 1:]) > max_list_bytes, "as many as fit"
            assert room_list.total == len(full)
        check_no_unlisted()

    flush()
    for k, client in clients.items():
        client.deliver()
        if k in watching:
            assert client.view == oracle.expected(*watching[k])
    check_no_unlisted()


def _directory_with(rooms: int, hosts: int) -> RoomDirectory:
    directory = RoomDirectory(min_snapshot_delta=0)
    for room_id in range(1, rooms + 1):
        directory.put(summary(room_id, room_id % hosts, f"room {room_id}", 0, 5, "waiting", False),
                      code=f"{room_id:06d}", listed=True)
    return directory


def test_a_change_costs_the_watchers_it_concerns_not_the_rooms(monkeypatch: pytest.MonkeyPatch) -> None:
    directory = _directory_with(rooms=3000, hosts=300)
    for host in range(300):
        directory.watch(("host", host), RoomFilter(host=host), 10)
    for k in range(50):
        directory.watch(("racing", k), RoomFilter(states=frozenset({"racing"})), 100)
    directory.take_frames(lambda k: False)
    calls = 0
    original = RoomFilter.matches

    def counting(self: RoomFilter, s: RoomSummary) -> bool:
        nonlocal calls
        calls += 1
        return original(self, s)

    monkeypatch.setattr(RoomFilter, "matches", counting)
    directory.put(summary(3000, 0, "room 3000", 1, 5, "waiting", False), code="003000", listed=True)
    assert calls <= 2  # the host-0 group, once for the new summary (the racing group is not visited)
    assert [k for k, _ in directory.take_frames(lambda k: False)] == [("host", 0)]
    calls = 0
    directory.put(summary(2999, 299, "room 2999", 1, 5, "racing", False), code="002999", listed=True)
    assert calls <= 3
    frames = dict(directory.take_frames(lambda k: False))
    assert set(frames) == {("host", 299), *(("racing", k) for k in range(50))}


def test_a_client_that_stops_reading_gets_one_merged_frame_then_a_snapshot() -> None:
    directory = _directory_with(rooms=20, hosts=1)
    version, rooms = directory.watch("w", RoomFilter(), 5)
    assert version == 1 and [room["id"] for room in rooms] == [20, 19, 18, 17, 16]
    directory.put(summary(20, 0, "renamed", 0, 5, "waiting", False), code="000020", listed=True)
    [(_, first)] = directory.take_frames(lambda k: False)
    assert (first.version, [r["name"] for r in first.upsert], first.snapshot) == (2, ["renamed"], False)
    # the client does not read: the next change merges into the same version
    directory.put(summary(19, 0, "renamed too", 0, 5, "waiting", False), code="000019", listed=True)
    [(_, merged)] = directory.take_frames(lambda k: True)
    assert merged.version == 2 and {r["id"] for r in merged.upsert} == {19, 20}
    # it falls further behind than its limit: a snapshot, still replacing the undelivered frame
    for room_id in range(21, 26):
        directory.put(summary(room_id, 0, f"new {room_id}", 0, 5, "waiting", False), code=f"{room_id:06d}",
                      listed=True)
    [(_, snap)] = directory.take_frames(lambda k: True)
    assert snap.snapshot and snap.version == 2
    assert [r["id"] for r in snap.to_json()["rooms"]] == [25, 24, 23, 22, 21]
    # read at last; the next change is the next version
    directory.drop(25)
    [(_, after)] = directory.take_frames(lambda k: False)
    assert after.to_json() == {"version": 3, "upsert": [directory.listing(20).json], "remove": [25],  # type: ignore[union-attr]
                               "snapshot": False}


def test_rewatch_continues_the_version_and_unwatch_stops_frames() -> None:
    directory = _directory_with(rooms=3, hosts=1)
    assert directory.watch("w", RoomFilter(), 2)[0] == 1
    directory.drop(3)
    [(_, frame)] = directory.take_frames(lambda k: False)
    assert frame.version == 2
    version, rooms = directory.watch("w", RoomFilter(name="room 1"), 2)
    assert version == 3 and [room["id"] for room in rooms] == [1]
    assert directory.unwatch("w") and not directory.unwatch("w")
    directory.drop(1)
    assert directory.take_frames(lambda k: False) == []
    assert directory.watchers == 0


def test_unlisted_rooms_and_their_changes_stay_out_of_lists_and_feeds() -> None:
    directory = RoomDirectory()
    directory.watch("w", RoomFilter(), 10)
    directory.put(summary(1, 1, "secret", 0, 5, "waiting", False), code="AAAAAA", listed=False)
    directory.put(summary(1, 1, "secret", 1, 5, "waiting", False), code="AAAAAA", listed=False)
    assert directory.take_frames(lambda k: False) == []
    assert directory.list_due() is None
    directory.drop(1)
    assert directory.take_frames(lambda k: False) == [] and directory.list_due() is None
    assert directory.publish_list(0.0).to_json() == []


def test_large_lists_are_published_at_most_every_interval() -> None:
    directory = RoomDirectory(large_list_bytes=1000, large_list_interval=0.25)
    assert directory.list_due() is None
    directory.put(summary(1, 1, "a", 0, 5, "waiting", False), code="AAAAAA", listed=True)
    assert directory.list_due() == -math.inf  # small: at once
    directory.publish_list(10.0)
    for room_id in range(2, 20):
        directory.put(summary(room_id, 1, "a" * 50, 0, 5, "waiting", False), code=f"{room_id:06d}", listed=True)
    assert directory.list_due() == 10.25  # large now: a quarter second after the last
    directory.publish_list(10.25)
    directory.drop(2)
    assert directory.list_due() == 10.5


def test_has_seats_follows_the_race_rules() -> None:
    assert room_has_seats(summary(1, 1, "a", 0, 1, "waiting", False))
    assert not room_has_seats(summary(1, 1, "a", 1, 1, "waiting", False))
    assert not room_has_seats(summary(1, 1, "a", 0, 1, "waiting", True))
    assert not room_has_seats(summary(1, 1, "a", 0, 1, "racing", False))
    assert room_has_seats(summary(1, 1, "a", 0, 1, "racing", False, late_join=True))
    assert room_has_seats(summary(1, 1, "a", 0, 1, "finished", False))
