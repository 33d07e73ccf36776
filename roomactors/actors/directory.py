"""The room directory: every open room as lists and feeds show it, sans-IO.

The lobby actor owns one :class:`RoomDirectory` and tells it each change
(:meth:`~RoomDirectory.put`, :meth:`~RoomDirectory.drop`); the directory keeps
what both kinds of lobby clients need and nothing else:

* **Full lists** (``updaterooms``, for clients that know nothing else): one
  :class:`~roomactors.actors.client.RoomList` per publication, built from each
  room's JSON made once per change of that room, and shared (and encoded once)
  by every such client. Two bounds keep their cost in check (``docs/limits.md``):
  a list of more than ``max_list_bytes`` bytes of JSON is cut to the newest
  rooms that fit, and once a list is larger than ``large_list_bytes`` the next
  one is published no sooner than ``large_list_interval`` seconds after it
  (:meth:`~RoomDirectory.list_due` says when; the caller keeps the clock).
* **The feed** (``watch_rooms``): watchers with the same filter share a group
  holding the sorted ids of the listed rooms that match it. Groups are indexed
  by the most selective field of their filter (``host``, else ``state``, else
  ``has_seats``; filters on ``name`` alone, or none, are scanned), so a room's
  change visits only the groups it could match, before or after, and within a
  group only the watchers whose view it enters or leaves: its cost is
  proportional to the watchers it concerns, not to the rooms. Each watcher
  keeps its changes not yet handed out (room ids: newest wins, as the room's
  JSON is looked up when the frame is made) and the content of the frame last
  handed out; when that frame is still undelivered (``holds(key)``, asked of
  the connection's outbox) the next frame merges both and replaces it under
  the same version, so the client never sees a gap. A delta bigger than the
  watcher's ``limit`` (and than ``min_snapshot_delta``) is sent as a snapshot instead (``snapshot: true``): a
  client that fell that far behind starts over from the newest rooms.

Rooms are ordered by id, which the lobby assigns in creation order: "newest"
means the highest id. Room ``state``/``locked``/``late_join`` are read from the
summary where it has them (race.md); a summary without them is a waiting,
unlocked room.
"""

from __future__ import annotations

import json
import math
from bisect import bisect_left, insort
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from .client import RoomList
from .records import JsonDict, RoomSummary, UserId

ROOM_STATES: Final = ("waiting", "countdown", "racing", "finished")
"""A room's phases (race.md), the values of a feed filter's ``state``."""
RACING_STATES: Final = frozenset({"countdown", "racing"})

DEFAULT_FEED_LIMIT: Final = 100
MAX_FEED_LIMIT: Final = 1000

DEFAULT_MAX_LIST_BYTES: Final = 1_000_000
"""No ``updaterooms`` list is longer than this many bytes of JSON: past it a
client gets the newest rooms that fit (python-socketio over WebSocket stops at
4 MB; 1 MB is also what the reference servers accept from a client)."""
DEFAULT_LARGE_LIST_BYTES: Final = 64 * 1024
DEFAULT_LARGE_LIST_INTERVAL: Final = 0.25
DEFAULT_MIN_SNAPSHOT_DELTA: Final = 32
"""A watcher whose pending delta holds more rooms than its ``limit`` and than
this gets a snapshot instead (small limits would otherwise resnapshot at once)."""


def room_state(summary: RoomSummary) -> str:
    return str(getattr(summary, "state", "waiting"))


def room_locked(summary: RoomSummary) -> bool:
    return bool(getattr(summary, "locked", False))


def room_has_seats(summary: RoomSummary) -> bool:
    """A user could join right now: not locked, a free seat, and not in a
    race unless the race lets latecomers in (protocol.md's ``has_seats``)."""
    if room_locked(summary) or len(summary.players) >= summary.max_players:
        return False
    return room_state(summary) not in RACING_STATES or bool(getattr(summary, "late_join", False))


def _json_size(value: object) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


@dataclass(frozen=True)
class RoomFilter:
    """What a watcher wants to see; None fields match everything.

    ``name`` is kept case-folded; ``states`` an empty set matches nothing.
    """

    states: frozenset[str] | None = None
    has_seats: bool | None = None
    name: str | None = None
    host: UserId | None = None

    def matches(self, summary: RoomSummary) -> bool:
        if self.host is not None and not _same_id(summary.host.id, self.host):
            return False
        if self.states is not None and room_state(summary) not in self.states:
            return False
        if self.has_seats is not None and room_has_seats(summary) != self.has_seats:
            return False
        return self.name is None or self.name in summary.name.casefold()


def _same_id(a: UserId, b: UserId) -> bool:
    """User ids match exactly: ``1`` is not ``"1"`` (and never a bool)."""
    return type(a) is type(b) and a == b


def _id_key(user_id: UserId) -> tuple[type, UserId]:
    return (type(user_id), user_id)


@dataclass(eq=False)
class Listing:
    """One open room as the directory keeps it.

    ``json`` (the room's summary plus its ``code``) and its ``size`` are made
    once per change of the room and shared by every list and feed frame.
    ``stamp`` is the directory's change counter at the room's last change.
    """

    summary: RoomSummary
    code: str
    listed: bool
    stamp: int
    json: JsonDict
    size: int

    @property
    def id(self) -> int:
        return self.summary.id


@dataclass(frozen=True)
class FeedFrame:
    """One ``roomschanged`` event for one watcher."""

    version: int
    upsert: tuple[JsonDict, ...] = ()
    remove: tuple[int, ...] = ()
    snapshot: bool = False

    def to_json(self) -> JsonDict:
        if self.snapshot:
            return {"version": self.version, "rooms": list(self.upsert), "snapshot": True}
        return {"version": self.version, "upsert": list(self.upsert), "remove": list(self.remove), "snapshot": False}


class _Watcher:
    __slots__ = (
        "group",
        "key",
        "limit",
        "open",
        "remove",
        "sent_remove",
        "sent_snapshot",
        "sent_upsert",
        "upsert",
        "version",
    )

    def __init__(self, key: Hashable, group: _Group, limit: int, version: int) -> None:
        self.key = key
        self.group = group
        self.limit = limit
        self.version = version
        #: Changes not handed out yet (room ids; upsert is ordered for stable frames).
        self.upsert: dict[int, None] = {}
        self.remove: set[int] = set()
        #: A frame was handed out that may still wait in the connection's outbox.
        self.open = False
        self.sent_upsert: dict[int, None] = {}
        self.sent_remove: set[int] = set()
        self.sent_snapshot = False


class _Group:
    """The watchers of one filter and the sorted ids of the listed rooms it matches."""

    __slots__ = ("by_limit", "filter", "ids", "members")

    def __init__(self, room_filter: RoomFilter, ids: list[int]) -> None:
        self.filter = room_filter
        self.ids = ids
        self.members = set(ids)
        self.by_limit: dict[int, list[_Watcher]] = {}

    def newest(self, limit: int) -> list[int]:
        """The ``limit`` newest matching room ids, newest first."""
        return self.ids[: -limit - 1 : -1] if limit else []

    def rank(self, room_id: int) -> int:
        """0 for the newest matching room, 1 for the next, ... (``room_id`` must be a member)."""
        return len(self.ids) - 1 - bisect_left(self.ids, room_id)

    def at_rank(self, rank: int) -> int | None:
        return self.ids[len(self.ids) - 1 - rank] if 0 <= rank < len(self.ids) else None


class RoomDirectory:
    """Every open room, the full list and the feed; see the module docstring."""

    def __init__(
        self,
        *,
        max_list_bytes: int = DEFAULT_MAX_LIST_BYTES,
        large_list_bytes: int = DEFAULT_LARGE_LIST_BYTES,
        large_list_interval: float = DEFAULT_LARGE_LIST_INTERVAL,
        min_snapshot_delta: int = DEFAULT_MIN_SNAPSHOT_DELTA,
    ) -> None:
        self.max_list_bytes = max_list_bytes
        self.min_snapshot_delta = min_snapshot_delta
        self.large_list_bytes = large_list_bytes
        self.large_list_interval = large_list_interval
        self._rooms: dict[int, Listing] = {}
        self._listed_ids: list[int] = []  # sorted
        self._listed_bytes = 0  # sum of the listed rooms' sizes
        self._rooms_by_host: dict[tuple[type, UserId], set[int]] = {}  # listed rooms only
        self._rooms_by_state: dict[str, set[int]] = {}
        self._stamp = 0
        # full lists
        self.room_list = RoomList(0, ())
        self._list_dirty = False
        self._list_published_at = -math.inf
        self._last_list_bytes = 2
        # the feed
        self._watchers: dict[Hashable, _Watcher] = {}
        self._groups: dict[RoomFilter, _Group] = {}
        self._groups_by_host: dict[tuple[type, UserId], set[_Group]] = {}
        self._groups_by_state: dict[str, set[_Group]] = {}
        self._groups_by_seats: dict[bool, set[_Group]] = {}
        self._groups_scanned: set[_Group] = set()
        self._changed: dict[_Watcher, None] = {}
        #: The last version of connections that stopped watching: a new feed
        #: continues from it (see ``forget``).
        self._ended_versions: dict[Hashable, int] = {}

    # --- rooms -----------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._rooms)

    @property
    def stamp(self) -> int:
        """Counts every change; a room's ``Listing.stamp`` is its value at the room's last change."""
        return self._stamp

    def listing(self, room_id: int) -> Listing | None:
        return self._rooms.get(room_id)

    def listings(self) -> Iterable[Listing]:
        """Every open room, listed or not, in creation order."""
        return self._rooms.values()

    def put(self, summary: RoomSummary, *, code: str, listed: bool) -> Listing:
        """A room was created, or its summary changed."""
        self._stamp += 1
        room_json = summary.to_json()
        room_json["code"] = code
        new = Listing(summary, code, listed, self._stamp, room_json, _json_size(room_json))
        old = self._rooms.get(summary.id)
        if old is not None and old.code != code:
            raise ValueError(f"room {summary.id} changed its code from {old.code} to {code}")
        self._rooms[summary.id] = new
        if old is not None and old.listed:
            self._unindex(old)
        if listed:
            self._index(new)
        if listed or (old is not None and old.listed):
            self._list_dirty = True
            self._feed_change(summary.id, old.summary if old is not None and old.listed else None,
                              summary if listed else None)
        return new

    def drop(self, room_id: int) -> Listing | None:
        """A room closed; returns what it was (None for an unknown id)."""
        old = self._rooms.pop(room_id, None)
        if old is None:
            return None
        self._stamp += 1
        if old.listed:
            self._unindex(old)
            self._list_dirty = True
            self._feed_change(room_id, old.summary, None)
        return old

    def _index(self, listing: Listing) -> None:
        insort(self._listed_ids, listing.id)
        self._listed_bytes += listing.size
        self._rooms_by_host.setdefault(_id_key(listing.summary.host.id), set()).add(listing.id)
        self._rooms_by_state.setdefault(room_state(listing.summary), set()).add(listing.id)

    def _unindex(self, listing: Listing) -> None:
        del self._listed_ids[bisect_left(self._listed_ids, listing.id)]
        self._listed_bytes -= listing.size
        _discard(self._rooms_by_host, _id_key(listing.summary.host.id), listing.id)
        _discard(self._rooms_by_state, room_state(listing.summary), listing.id)

    # --- full lists ------------------------------------------------------------

    def list_due(self) -> float | None:
        """When the next ``updaterooms`` list may go out: None when nothing changed
        since the last one; ``-inf`` (at once) while lists are small; otherwise
        ``large_list_interval`` seconds after the last one."""
        if not self._list_dirty:
            return None
        if max(self._last_list_bytes, self._listed_bytes) > self.large_list_bytes:
            return self._list_published_at + self.large_list_interval
        return -math.inf

    def publish_list(self, now: float) -> RoomList:
        """Make the next list (listed rooms in creation order, cut to ``max_list_bytes``)."""
        budget = self.max_list_bytes - 2  # the brackets
        if self._listed_bytes + len(self._listed_ids) <= budget:
            chosen = [self._rooms[room_id] for room_id in self._listed_ids]
            size = self._listed_bytes + max(0, len(chosen) - 1)
        else:
            chosen, size = [], -1
            for room_id in reversed(self._listed_ids):
                listing = self._rooms[room_id]
                if size + 1 + listing.size > budget:
                    break
                chosen.append(listing)
                size += 1 + listing.size
            chosen.reverse()
            size = max(size, 0)
        self.room_list = RoomList(
            self.room_list.version + 1,
            tuple(listing.summary for listing in chosen),
            tuple(listing.json for listing in chosen),
            total=len(self._listed_ids),
        )
        self._list_dirty = False
        self._list_published_at = now
        self._last_list_bytes = size + 2
        return self.room_list

    # --- the feed --------------------------------------------------------------

    def watching(self, key: Hashable) -> bool:
        return key in self._watchers

    @property
    def watchers(self) -> int:
        return len(self._watchers)

    def watch(self, key: Hashable, room_filter: RoomFilter, limit: int) -> tuple[int, list[JsonDict]]:
        """Start (or restart) ``key``'s feed: its version and snapshot, newest first.

        A restart (or a new feed after ``unwatch``) continues the connection's
        version count, so the frames that follow can never be taken for an old
        feed's.
        """
        if not 1 <= limit <= MAX_FEED_LIMIT:
            raise ValueError(f"limit must be 1..{MAX_FEED_LIMIT}, got {limit}")
        self.unwatch(key)
        version = self._ended_versions.pop(key, 0) + 1
        group = self._group(room_filter)
        watcher = _Watcher(key, group, limit, version)
        group.by_limit.setdefault(limit, []).append(watcher)
        self._watchers[key] = watcher
        return version, [self._rooms[room_id].json for room_id in group.newest(limit)]

    def unwatch(self, key: Hashable) -> bool:
        """End ``key``'s feed; False when it had none."""
        watcher = self._watchers.pop(key, None)
        if watcher is None:
            return False
        self._changed.pop(watcher, None)
        self._ended_versions[key] = watcher.version
        group = watcher.group
        peers = group.by_limit[watcher.limit]
        peers.remove(watcher)
        if not peers:
            del group.by_limit[watcher.limit]
            if not group.by_limit:
                self._drop_group(group)
        return True

    def forget(self, key: Hashable) -> None:
        """The connection is gone: drop its feed and its version count."""
        self.unwatch(key)
        self._ended_versions.pop(key, None)

    def take_frames(self, holds: Callable[[Hashable], bool]) -> list[tuple[Hashable, FeedFrame]]:
        """The frames to hand out now, one per watcher that has changes.

        ``holds(key)``: whether that connection still holds the frame handed
        out last (undelivered); the new frame then replaces it, merged.
        """
        frames: list[tuple[Hashable, FeedFrame]] = []
        changed, self._changed = self._changed, {}
        for watcher in changed:
            frames.append((watcher.key, self._frame(watcher, holds(watcher.key))))
        return frames

    def _frame(self, w: _Watcher, held: bool) -> FeedFrame:
        if w.open and held:
            upsert, remove, snapshot = w.sent_upsert, w.sent_remove, w.sent_snapshot
            for room_id in w.remove:
                upsert.pop(room_id, None)
                remove.add(room_id)
            for room_id in w.upsert:
                remove.discard(room_id)
                upsert[room_id] = None
        else:
            w.version += 1
            upsert, remove, snapshot = w.upsert, w.remove, False
        w.upsert, w.remove = {}, set()
        w.open = True
        if snapshot or len(upsert) + len(remove) > max(w.limit, self.min_snapshot_delta):
            w.sent_upsert, w.sent_remove, w.sent_snapshot = {}, set(), True
            rooms = tuple(self._rooms[room_id].json for room_id in w.group.newest(w.limit))
            return FeedFrame(w.version, rooms, snapshot=True)
        w.sent_upsert, w.sent_remove, w.sent_snapshot = upsert, remove, False
        return FeedFrame(
            w.version, tuple(self._rooms[room_id].json for room_id in upsert), tuple(sorted(remove))
        )

    def _group(self, room_filter: RoomFilter) -> _Group:
        group = self._groups.get(room_filter)
        if group is not None:
            return group
        group = self._groups[room_filter] = _Group(room_filter, self._matching_ids(room_filter))
        if room_filter.host is not None:
            self._groups_by_host.setdefault(_id_key(room_filter.host), set()).add(group)
        elif room_filter.states is not None:
            for state in room_filter.states:
                self._groups_by_state.setdefault(state, set()).add(group)
        elif room_filter.has_seats is not None:
            self._groups_by_seats.setdefault(room_filter.has_seats, set()).add(group)
        else:
            self._groups_scanned.add(group)
        return group

    def _drop_group(self, group: _Group) -> None:
        room_filter = group.filter
        del self._groups[room_filter]
        if room_filter.host is not None:
            _discard(self._groups_by_host, _id_key(room_filter.host), group)
        elif room_filter.states is not None:
            for state in room_filter.states:
                _discard(self._groups_by_state, state, group)
        elif room_filter.has_seats is not None:
            _discard(self._groups_by_seats, room_filter.has_seats, group)
        else:
            self._groups_scanned.discard(group)

    def _matching_ids(self, room_filter: RoomFilter) -> list[int]:
        """The sorted ids of the listed rooms that match, through the smallest index."""
        candidates: Iterable[int] = self._listed_ids
        if room_filter.host is not None:
            candidates = sorted(self._rooms_by_host.get(_id_key(room_filter.host), ()))
        elif room_filter.states is not None:
            candidates = sorted(
                room_id for state in room_filter.states for room_id in self._rooms_by_state.get(state, ())
            )
        return [room_id for room_id in candidates if room_filter.matches(self._rooms[room_id].summary)]

    def _candidate_groups(self, summaries: tuple[RoomSummary, ...]) -> set[_Group]:
        groups = set(self._groups_scanned)
        for summary in summaries:
            groups.update(self._groups_by_host.get(_id_key(summary.host.id), ()))
            groups.update(self._groups_by_state.get(room_state(summary), ()))
            groups.update(self._groups_by_seats.get(room_has_seats(summary), ()))
        return groups

    def _feed_change(self, room_id: int, old: RoomSummary | None, new: RoomSummary | None) -> None:
        """Tell the watchers whose view a listed room's change touches (None: not listed)."""
        if not self._watchers:
            return
        present = tuple(summary for summary in (old, new) if summary is not None)
        for group in self._candidate_groups(present):
            was = room_id in group.members
            now = new is not None and group.filter.matches(new)
            if not was and not now:
                continue
            if was and now:
                rank = group.rank(room_id)
                for limit, watchers in group.by_limit.items():
                    if rank < limit:
                        self._note(watchers, upsert=room_id)
                continue
            if now:  # enters the group
                insort(group.ids, room_id)
                group.members.add(room_id)
                rank = group.rank(room_id)
                for limit, watchers in group.by_limit.items():
                    if rank < limit:
                        self._note(watchers, upsert=room_id, remove=group.at_rank(limit))
            else:  # leaves the group
                rank = group.rank(room_id)
                del group.ids[bisect_left(group.ids, room_id)]
                group.members.discard(room_id)
                for limit, watchers in group.by_limit.items():
                    if rank < limit:
                        self._note(watchers, remove=room_id, upsert=group.at_rank(limit - 1))

    def _note(self, watchers: list[_Watcher], *, upsert: int | None = None, remove: int | None = None) -> None:
        changed = self._changed
        for watcher in watchers:
            if remove is not None:
                watcher.upsert.pop(remove, None)
                watcher.remove.add(remove)
            if upsert is not None:
                watcher.remove.discard(upsert)
                watcher.upsert[upsert] = None
            changed[watcher] = None


def _discard(index: dict[Any, set[Any]], key: Any, value: Any) -> None:
    members = index.get(key)
    if members is not None:
        members.discard(value)
        if not members:
            del index[key]
