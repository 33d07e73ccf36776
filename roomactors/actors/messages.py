"""Every message an actor accepts, as frozen dataclasses.

Typed messages make each actor's ``match`` exhaustive to read, and being frozen
they can be shared between tasks without copies. Raw command payloads may hold
deck answers, so they are kept out of reprs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .client import Client
from .records import User, UserId

# --- to the lobby ----------------------------------------------------------


@dataclass(frozen=True)
class Connect:
    """A client joined `/` or `/lobby`: it watches the room list from now on."""

    client: Client


@dataclass(frozen=True)
class Disconnect:
    """A client left; counts as ``leave_lobby`` (a host's room closes: host_disconnected)."""

    client: Client


@dataclass(frozen=True)
class Command:
    """One room-protocol command; the reply is the ack dict of protocol.md."""

    client: Client
    name: str
    payload: object = field(repr=False)


@dataclass(frozen=True)
class Shutdown:
    """Close every room with reason ``shutdown``, then stop the lobby."""


@dataclass(frozen=True)
class RoomCrashed:
    """From a room's supervisor: the room's task raised and is gone."""

    room_id: int


@dataclass(frozen=True)
class Inspect:
    """Ask the lobby for a :class:`~roomactors.actors.api.LobbySnapshot`."""


@dataclass(frozen=True)
class Tick:
    """From the lobby's alarm: a deferred room list is due (see ``RoomLimits.large_list_interval``)."""


LobbyMessage = Connect | Disconnect | Command | Shutdown | RoomCrashed | Inspect | Tick

# --- to a room (only the lobby sends these) ---------------------------------


@dataclass(frozen=True)
class Describe:
    """Reply with the room's current RoomSummary."""


@dataclass(frozen=True)
class JoinRoom:
    """Seat ``user`` as a player; reply RoomSummary, or ProtocolError(room_full)."""

    user: User


@dataclass(frozen=True)
class LeaveRoom:
    """A player leaves; reply RoomSummary, or ProtocolError(not_in_room)."""

    user_id: UserId


@dataclass(frozen=True)
class UpdateUser:
    """A seated user's profile changed (repeated join_lobby); reply RoomSummary."""

    user: User


RoomMessage = Describe | JoinRoom | LeaveRoom | UpdateUser
