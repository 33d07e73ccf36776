"""The lobby's side of room lists, the room feed, codes and ``roomupdated``.

The lobby actor owns one :class:`LobbyFeed` and calls it at a few points: a
client connects or goes, a room is created, changes or closes, a batch of
messages ends (:meth:`LobbyFeed.publish`). It keeps which clients get full
lists and which watch the feed, so that publishing costs the full-list clients
one shared list and the feed clients only the frames their filters need
(:mod:`.directory`). Like every part of an actor's state, only the lobby's task
touches it; it never awaits a client.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from .client import Client, RoomList, SharedEvent
from .codes import CodeBook
from .directory import Listing, RoomDirectory, RoomFilter
from .limits import RoomLimits
from .records import JsonDict, RoomSummary

logger = logging.getLogger(__name__)

ROOMSCHANGED = "roomschanged"
ROOMUPDATED = "roomupdated"


class LobbyFeed:
    """Full-list clients, feed watchers, room codes and the directory behind them."""

    def __init__(self, limits: RoomLimits) -> None:
        self.directory = RoomDirectory(
            max_list_bytes=limits.max_list_bytes,
            large_list_bytes=limits.large_list_bytes,
            large_list_interval=limits.large_list_interval,
        )
        self.codes = CodeBook()
        self._list_clients: dict[Hashable, Client] = {}
        self._watchers: dict[Hashable, Client] = {}
        self._changed_rooms: dict[int, None] = {}
        self._last_now = 0.0

    # --- clients ----------------------------------------------------------------

    def connect(self, client: Client) -> None:
        if not self._list_clients:
            self._current_list()  # catch up before lists go out again
        self._list_clients[client.client_id] = client

    def disconnect(self, client: Client) -> None:
        """The client is gone (or replaced): no more lists or frames for it."""
        if self._list_clients.get(client.client_id) is client:
            del self._list_clients[client.client_id]
        if self._watchers.get(client.client_id) is client:
            del self._watchers[client.client_id]
            self.directory.forget(client.client_id)

    @property
    def room_list(self) -> RoomList:
        """The last published ``updaterooms`` list (made now if nobody was sent it)."""
        return self._current_list()

    def _current_list(self) -> RoomList:
        # With no full-list client, publish() makes no list (an O(rooms) job for
        # nobody); whoever needs one first makes it.
        if not self._list_clients and self.directory.list_due() is not None:
            self.directory.publish_list(self._last_now)
        return self.directory.room_list

    def send_list(self, client: Client) -> None:
        """The current list, to a client that gets full lists (a watcher gets none)."""
        if client.client_id in self._list_clients:
            _hand(client, "send_room_list", self._current_list())

    def watch(self, client: Client, room_filter: RoomFilter, limit: int) -> dict[str, Any]:
        """Start or restart the client's feed; the ack ``{ok, version, rooms}``."""
        self._list_clients.pop(client.client_id, None)
        self._watchers[client.client_id] = client
        version, rooms = self.directory.watch(client.client_id, room_filter, limit)
        return {"ok": True, "version": version, "rooms": rooms}

    def unwatch(self, client: Client) -> dict[str, Any]:
        """Back to full lists, starting with the current one at once."""
        if self._watchers.pop(client.client_id, None) is not None:
            self.directory.unwatch(client.client_id)
        if client.client_id not in self._list_clients:
            room_list = self._current_list()
            self._list_clients[client.client_id] = client
            _hand(client, "send_room_list", room_list)
        return {"ok": True}

    # --- rooms ------------------------------------------------------------------

    def create(self, summary: RoomSummary, *, listed: bool) -> Listing:
        """A new room: its code, and its listing (whose ``json`` is the ack's room)."""
        code = self.codes.issue(summary.id)
        self._changed_rooms[summary.id] = None
        return self.directory.put(summary, code=code, listed=listed)

    def update(self, summary: RoomSummary) -> None:
        """The room's summary changed (players, users, race state)."""
        listing = self.directory.listing(summary.id)
        if listing is None:
            return
        self.directory.put(summary, code=listing.code, listed=listing.listed)
        self._changed_rooms[summary.id] = None

    def close(self, room_id: int) -> None:
        self.directory.drop(room_id)
        self.codes.release(room_id)
        self._changed_rooms.pop(room_id, None)

    def room_by_code(self, text: str) -> int | None:
        return self.codes.room_of(text)

    def listed(self, room_id: int) -> bool:
        listing = self.directory.listing(room_id)
        return listing is not None and listing.listed

    def room_json(self, room_id: int) -> JsonDict | None:
        """The room as members see it (with its code), or None for an unknown id."""
        listing = self.directory.listing(room_id)
        return None if listing is None else listing.json

    def mark_changed(self, room_id: int) -> None:
        """Send the room's members ``roomupdated`` at the next publication even
        if the summary did not change (a member came back on a new connection)."""
        if self.directory.listing(room_id) is not None:
            self._changed_rooms[room_id] = None

    # --- publication --------------------------------------------------------------

    def publish(self, now: float, members_of: Callable[[RoomSummary], Iterable[Client]]) -> float | None:
        """What changed since the last call goes out; returns when the deferred
        full list is due (the caller wakes the lobby then), or None.

        Order: ``roomupdated`` to the members of the rooms that changed, the
        feed frames, then the list.
        """
        changed, self._changed_rooms = self._changed_rooms, {}
        for room_id in changed:
            listing = self.directory.listing(room_id)
            if listing is None:
                continue
            # one event per room, encoded once per namespace for all its members;
            # newest wins per member, as for a list
            event = SharedEvent(ROOMUPDATED, {"room": listing.json}, replace_key=ROOMUPDATED)
            for client in members_of(listing.summary):
                _hand(client, "send_shared", event)
        watchers = self._watchers
        for key, frame in self.directory.take_frames(lambda key: _holds(watchers[key])):
            _hand(watchers[key], "send_latest", ROOMSCHANGED, frame.to_json())
        self._last_now = now
        due = self.directory.list_due()
        if due is None or not self._list_clients:
            return None
        if due > now:
            return due
        room_list = self.directory.publish_list(now)
        for client in list(self._list_clients.values()):
            _hand(client, "send_room_list", room_list)
        return None


def _holds(client: Client) -> bool:
    try:
        return client.holds(ROOMSCHANGED)
    except Exception:
        logger.exception("client %r raised in holds; taken as not holding", client.client_id)
        return False


def _hand(client: Client, method: str, *args: object) -> None:
    """Call a client method; one client that raises must not stop the lobby."""
    try:
        getattr(client, method)(*args)
    except Exception:
        logger.exception("client %r raised in %s; ignored", client.client_id, method)
