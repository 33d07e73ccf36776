"""The lobby's configuration and the frozen records it reports."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field

from .client import RoomList
from .records import UserId


@dataclass(frozen=True)
class RoomLimits:
    """Limits of one lobby. Defaults are protocol.md's."""

    max_rooms: int = 10_000
    """Rooms open at once; one more ``create_room`` gets ``too_many_rooms``."""
    max_players: int = 50
    """Players per room, besides the host; one more ``join_room`` gets ``room_full``."""
    command_rate: float | None = 20.0
    """Commands per second per connection, refilled continuously; None: no limit."""
    command_burst: int = 40
    """Commands a connection may send at once before ``rate_limited``."""
    flood_limit: int | None = 50
    """``rate_limited`` answers one connection may collect within ``flood_window``
    seconds; the next one expels it (its user leaves as on a disconnect, and the
    client is detached with reason ``flooding``). None: never expel."""
    flood_window: float = 10.0
    """Seconds over which ``flood_limit`` counts; the count restarts after each window."""
    lobby_mailbox_size: int = 1024
    """Messages queued for the lobby before senders wait (back-pressure)."""
    first_room_id: int = 1
    """The first room id this lobby assigns (then in order). A cluster node starts
    at a block of ids of its own, so ids stay unique across nodes (docs/cluster.md)."""
    room_mailbox_size: int = 64
    """Messages queued for a room: the lobby's asks, the ``answer`` commands it
    forwards without waiting, and the answers seated players' connections post
    directly (routes.py). A full room mailbox makes the lobby, or that one
    connection, wait; 64 holds a classroom's burst of answers."""
    max_list_bytes: int = 1_000_000
    """Bytes of JSON one ``updaterooms`` list may hold; past it, the newest rooms that fit."""
    large_list_bytes: int = 64 * 1024
    """A list larger than this is followed by the next no sooner than ``large_list_interval``."""
    large_list_interval: float = 0.25
    """Seconds between two lists once they are large (their changes are coalesced)."""
    reconnect_grace: float = 60.0
    """Seconds a dropped client's user keeps their place (lobby, room, host seat,
    race progress) with ``connected: false``; 0: a drop is a ``leave_lobby``."""

    def __post_init__(self) -> None:
        if self.max_rooms < 0 or self.max_players < 0:
            raise ValueError("max_rooms and max_players must not be negative")
        if self.command_rate is not None and self.command_rate <= 0:
            raise ValueError("command_rate must be positive, or None for no limit")
        if self.flood_limit is not None and self.flood_limit < 1:
            raise ValueError("flood_limit must be at least 1, or None to never expel a client")
        if not (math.isfinite(self.reconnect_grace) and self.reconnect_grace >= 0):
            raise ValueError("reconnect_grace must be a finite number of seconds, 0 or more")
        if not self.flood_window > 0:
            raise ValueError("flood_window must be a positive number of seconds")
        if self.max_list_bytes < 2 or self.large_list_bytes < 0 or self.large_list_interval < 0:
            raise ValueError("max_list_bytes must be at least 2; large_list_bytes and large_list_interval not negative")
        if self.command_burst < 1 or self.lobby_mailbox_size < 1 or self.room_mailbox_size < 1:
            raise ValueError("command_burst and mailbox sizes must be at least 1")


@dataclass(frozen=True)
class LobbyStatistics:
    clients: int
    """Connected clients of `/` and `/lobby`, watchers included."""
    users: int
    """Users bound to a connection (in the lobby or in a room)."""
    rooms: int


@dataclass(frozen=True)
class LobbySnapshot:
    """Who is where, at one instant: for embedders' dashboards and for tests."""

    places: Mapping[UserId, int | None]
    """user id -> the room they sit in, or None for the lobby; absent: nowhere."""
    connections: Mapping[Hashable, UserId | None]
    """client id -> the user it speaks for, or None (anonymous watcher)."""
    rooms: RoomList
    """The directory, as the last ``updaterooms`` showed it."""
    held: Mapping[UserId, float] = field(default_factory=dict)
    """user id -> the trio time their seat's grace ends, for users whose
    connection dropped (they are in ``places`` but in no ``connections``)."""
