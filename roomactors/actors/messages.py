"""Every message an actor accepts, as frozen dataclasses.

Typed messages make each actor's ``match`` exhaustive to read, and being frozen
they can be shared between tasks without copies. Raw command payloads may hold
deck answers, so they are kept out of reprs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from .client import Client
from .commands import CommandSpec, RoomRequest
from .directory import Listing
from .records import RoomSummary, User, UserId
from .validation import ProtocolError

# --- to the lobby ----------------------------------------------------------


@dataclass(frozen=True)
class Connect:
    """A client joined `/` or `/lobby`: it watches the room list from now on."""

    client: Client


@dataclass(frozen=True)
class Disconnect:
    """A client left. After a goodbye (``dropped`` False) it counts as
    ``leave_lobby`` (a host's room closes: host_disconnected); a dropped client's
    user keeps their place for ``RoomLimits.reconnect_grace`` (race.md)."""

    client: Client
    dropped: bool = False


@dataclass(frozen=True)
class Command:
    """One room-protocol command, parsed by its :class:`CommandSpec` in the
    sender's task; the reply is the ack dict of protocol.md. ``request`` is the
    typed request, or the ``invalid_payload`` error the lobby answers with
    (after the rate limit)."""

    client: Client
    spec: CommandSpec[Any]
    request: object = field(repr=False)
    prepaid: bool = False
    """The connection's rate-limit token was taken already (a direct command
    that its room handed back, see :mod:`.routes`): not taken again."""

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class RoomChanged:
    """From a room: its summary changed by itself (a timer, the last answer);
    the lobby asks it for the new summary (``Describe``) and lists it."""

    room_id: int


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


class RoomDirectoryView(Protocol):
    """Where a cluster node's lobby meets the other nodes' rooms (docs/cluster.md).

    The lobby stays the single writer of its own rooms: after each batch it
    ``report``s their listings (unlisted ones too: joined by code from anywhere); on ``RemoteRoomsChanged`` it takes the other
    nodes' rooms that changed (``take_remote``: room id, summary or None for
    gone, code) into its lists and feeds; a new room's code is drawn again while
    ``code_taken`` says a room of another node holds it. All run in the lobby's
    task and must not block.
    """

    def report(self, listings: tuple[Listing, ...]) -> None: ...

    def take_remote(self) -> list[tuple[int, RoomSummary | None, str]]: ...

    def code_taken(self, code: str) -> bool: ...


class UserRegistryView(Protocol):
    """Where a cluster node's lobby tells the cluster's user registry that a user
    left this lobby (docs/cluster.md, "Users across nodes"); called in the
    lobby's task, must not block."""

    def user_gone(self, user_id: UserId) -> None: ...


@dataclass(frozen=True)
class AttachDirectory:
    """From now on, report this lobby's rooms to ``directory`` and show its merged list."""

    directory: RoomDirectoryView
    users: UserRegistryView | None = None


@dataclass(frozen=True)
class RemoteRoomsChanged:
    """Rooms of other nodes changed: the lobby publishes a new list (batched as usual)."""


@dataclass(frozen=True)
class Tick:
    """From the lobby's alarm: a deferred room list is due (see ``RoomLimits.large_list_interval``)."""


LobbyMessage = (
    Connect | Disconnect | Command | Shutdown | RoomCrashed | Inspect | RoomChanged | Tick
    | AttachDirectory | RemoteRoomsChanged
)

# --- to a room (only the lobby sends these) ---------------------------------


@dataclass(frozen=True)
class Describe:
    """Reply with the room's current RoomSummary."""


@dataclass(frozen=True)
class JoinRoom:
    """Seat ``user`` (speaking through ``client``) as a player; reply
    RoomSummary, or ProtocolError (banned, room_locked, race_in_progress, room_full)."""

    user: User
    client: Client | None = None


@dataclass(frozen=True)
class LeaveRoom:
    """A player leaves; reply RoomSummary, or ProtocolError(not_in_room)."""

    user_id: UserId


@dataclass(frozen=True)
class UpdateUser:
    """A seated user's profile changed (repeated join_lobby); reply RoomSummary."""

    user: User


@dataclass(frozen=True)
class Reseat:
    """A seated user now speaks through ``client`` (a takeover; None: their
    connection is gone but the seat is kept). During a race the new client gets
    ``racestate``. Reply RoomSummary."""

    user_id: UserId
    client: Client | None


@dataclass(frozen=True)
class CloseRoom:
    """The lobby is closing the room for ``reason``: a running race ends first
    (``raceover`` with that reason, to the host too). Reply None."""

    reason: str


@dataclass(frozen=True)
class RoomCommand:
    """A race command of ``user_id``, already checked by the lobby up to
    ``room_not_found``; reply :class:`CommandDone`."""

    user_id: UserId
    request: RoomRequest


@dataclass(frozen=True)
class DirectCommand:
    """A race command a seated player's connection posted straight to the room
    (:mod:`.routes`), past the lobby. The room handles it like a
    :class:`RoomCommand` if ``user_id`` sits there speaking through ``client``
    and the room is not closing; otherwise it answers :class:`Rerouted` (the
    lobby then handles the command, with its errors in their order)."""

    user_id: UserId
    client: Client
    request: RoomRequest


@dataclass(frozen=True)
class Rerouted:
    """A room's answer to a :class:`DirectCommand` it must not handle itself."""


@dataclass(frozen=True)
class CommandDone:
    """A room's answer to a RoomCommand: the client's ack dict, the room's
    summary after it (None for commands that cannot change it, such as
    ``answer``: not built on the hot path), and a player the command removed
    (``kick_player``)."""

    ack: dict[str, Any] = field(repr=False)
    summary: RoomSummary | None
    removed: UserId | None = None


RoomMessage = Describe | JoinRoom | LeaveRoom | UpdateUser | Reseat | CloseRoom | RoomCommand | DirectCommand
RoomReply = RoomSummary | ProtocolError | CommandDone | Rerouted | None
