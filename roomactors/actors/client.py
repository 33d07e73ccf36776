"""What an actor may do to a connected client, and the room list it hands over.

Actors never await a client: a slow or dead connection must not stall the lobby.
So a :class:`Client` only offers hand-over methods, and the room list is an
immutable :class:`RoomList` snapshot that the connection layer keeps "newest wins".
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

from .records import JsonDict, RoomSummary

T = TypeVar("T")

DETACH_REPLACED = "replaced"
"""``Client.detach`` reason: the user joined from another connection."""
DETACH_FLOODING = "flooding"
"""``Client.detach`` reason: too many ``rate_limited`` commands (``RoomLimits.flood_limit``)."""


@dataclass(frozen=True, eq=False)
class RoomList:
    """One version of the room directory, as every client is shown it.

    Built once per change by the lobby and shared by every client. ``encoded``
    memoises whatever encoding a connection layer needs (one per namespace, say),
    so a change costs one encode per key, not one per client.
    """

    version: int
    rooms: tuple[RoomSummary, ...]
    items: tuple[JsonDict, ...] | None = field(default=None, repr=False)
    """Each room's JSON (made once per change of the room, ``code`` included);
    None: made from ``rooms``."""
    total: int | None = None
    """How many rooms are listed; more than ``len(rooms)`` when the list was cut
    to its size bound (the newest rooms that fit); None: ``len(rooms)``."""
    _memo: dict[Hashable, Any] = field(default_factory=dict, repr=False)

    def to_json(self) -> list[JsonDict]:
        """The ``updaterooms`` argument: a JSON-ready list, rooms in creation order.

        The room objects may be shared with other lists: don't modify them."""
        if self.items is not None:
            return list(self.items)
        return [room.to_json() for room in self.rooms]

    def encoded(self, key: Hashable, encode: Callable[[RoomList], T]) -> T:
        """``encode(self)``, computed once per ``key`` and cached on this snapshot."""
        try:
            return self._memo[key]  # type: ignore[no-any-return]
        except KeyError:
            value = self._memo[key] = encode(self)
            return value

    def __len__(self) -> int:
        return len(self.rooms)


@dataclass(frozen=True, eq=False)
class SharedEvent:
    """One event that a room sends to many clients with the same payload.

    Like :class:`RoomList`: built once, encoded once per key (namespace) and
    shared. With a ``replace_key`` it is newest-wins per client: an undelivered
    older event with the same key is dropped (``raceprogress`` uses this).
    """

    name: str
    payload: Any = field(repr=False)
    replace_key: Hashable | None = None
    _memo: dict[Hashable, Any] = field(default_factory=dict, repr=False)

    def encoded(self, key: Hashable, encode: Callable[[SharedEvent], T]) -> T:
        """``encode(self)``, computed once per ``key`` and cached on this event."""
        try:
            return self._memo[key]  # type: ignore[no-any-return]
        except KeyError:
            value = self._memo[key] = encode(self)
            return value


@runtime_checkable
class Client(Protocol):
    """What an actor may do to a connected client: hand over, never await.

    Implementations must not block and should not raise; the lobby logs and
    ignores a client method that raises, so one broken client cannot stop it.
    """

    @property
    def client_id(self) -> Hashable: ...

    def send_event(self, event: str, payload: object) -> None:
        """Send one event with one JSON argument (``roomclosed``, ``rejected``,
        ``replaced``, ``raceover``, ``racestate``, ``kicked``)."""

    def send_room_list(self, rooms: RoomList) -> None:
        """Show ``rooms`` as ``updaterooms``; an undelivered older list may be dropped."""

    def send_latest(self, event: str, payload: object) -> None:
        """Send ``roomschanged`` (a watcher's own feed frame): an undelivered earlier
        event of the same name is dropped in favour of this one (newest wins)."""

    def holds(self, event: str) -> bool:
        """Whether the last ``send_latest`` of ``event`` is still undelivered (so
        that the feed can merge what it carried into the next one)."""

    def send_shared(self, event: SharedEvent) -> None:
        """Send ``event`` (shared by many clients, encoded once: ``racestart``,
        ``raceprogress``, ``roomupdated``, ``roomclosed``); with a ``replace_key``,
        an undelivered older event of that key may be dropped."""

    def detach(self, reason: str) -> None:
        """Leave the namespace: ``"replaced"`` (the user was taken over by another
        connection) or ``"flooding"`` (:data:`DETACH_FLOODING`: the client kept
        sending commands past its rate limit; a network binding should close
        the whole connection, so that it cannot simply rejoin at once)."""
