"""A seated player's direct line to their room: ``answer`` without the lobby's hop.

The lobby forwards a race's answers to the room, so each one woke three tasks
(the connection's, the lobby's, the room's). Once the lobby has seen a player
answer in the room they sit in, it hands that player's connection a
:class:`RoomRoute` (the room's mailbox, whom the connection speaks for, and the
connection's rate-limit bucket); the connection then posts its answers straight
to the room (:class:`~.messages.DirectCommand`), and the room acks them itself,
as it did when the lobby forwarded them.

The route is a hint, never an authority: the room checks that the user still
sits there, speaking through that very connection, and that it is not closing;
otherwise (a kick, a takeover, a close racing with the answer) it answers
:class:`~.messages.Rerouted` and the command goes the lobby's way, which gives
exactly the errors (and their order) of docs/protocol.md. A closed room's
mailbox refuses the post at once, with the same outcome. The lobby drops a
connection's route whenever it knows the route went stale.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, runtime_checkable

import trio

from .client import Client
from .commands import CommandSpec, RoomRequest, command_spec
from .mailbox import ActorRef, ActorStopped
from .messages import CommandDone, DirectCommand, RoomMessage
from .records import UserId
from .validation import ProtocolError

logger = logging.getLogger(__name__)

DIRECT_COMMANDS: Final = frozenset({"answer"})
"""Commands a seated player's connection may post straight to its room: the
race's hot path. Only commands that cannot change the room list qualify (the
lobby must see those to keep its directory)."""


class CommandBucket:
    """A connection's command rate limit (token bucket, ``RoomLimits.command_rate``).

    Owned by the connection, whose commands are handled one at a time: the
    lobby takes from it for commands it handles, the connection's task for the
    ones it posts to a room directly. Each ``take`` is synchronous (no
    checkpoint), so one thread of trio never sees it half-updated, and both
    paths share one budget.
    """

    __slots__ = ("_rate", "_burst", "tokens", "_refilled_at")

    def __init__(self, rate: float | None, burst: int, now: float) -> None:
        self._rate = rate
        self._burst = float(burst)
        self.tokens = float(burst)
        self._refilled_at = now

    def take(self, now: float) -> bool:
        """Take one command's token; False (nothing taken) when the bucket is empty."""
        rate = self._rate
        if rate is None:
            return True
        self.tokens = min(self._burst, self.tokens + (now - self._refilled_at) * rate)
        self._refilled_at = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


@dataclass(frozen=True)
class RoomRoute:
    """Where a seated player's :data:`DIRECT_COMMANDS` go: room ``room_id``'s mailbox.

    ``ref`` is the lobby's own handle to the room (not a clone), so a route
    never keeps a closed room's mailbox open: once the lobby closes it, a post
    fails at once and the command takes the lobby's way."""

    room_id: int
    user_id: UserId
    ref: ActorRef[RoomMessage] = field(repr=False)
    bucket: CommandBucket = field(repr=False)


@runtime_checkable
class RoutedClient(Protocol):
    """A client that can post its answers to its room directly (the server's
    sockets; not the in-memory client, nor a cluster's relayed player, whose
    commands keep going through the lobby)."""

    def route_room(self, route: RoomRoute | None) -> None:
        """Use ``route`` for :data:`DIRECT_COMMANDS` from now on (None: the lobby's way)."""


class DirectReply:
    """The reply slot of a :class:`~.messages.DirectCommand`: the room's ack goes
    to ``on_reply``; a refusal to handle it (``Rerouted``), or a room that
    stopped, calls ``reroute`` instead. Runs in the room's task (or the
    sender's, when the post fails at once): neither callback may block."""

    __slots__ = ("_on_reply", "_reroute")

    def __init__(self, on_reply: Callable[[dict[str, Any]], None], reroute: Callable[[], None]) -> None:
        self._on_reply = on_reply
        self._reroute = reroute

    def set(self, value: Any) -> None:
        if isinstance(value, CommandDone):
            self._call(self._on_reply, value.ack)
        else:
            self._call(self._reroute)

    def fail(self, error: ActorStopped) -> None:
        self._call(self._reroute)

    @staticmethod
    def _call(callback: Callable[..., None], *args: Any) -> None:
        try:
            callback(*args)
        except Exception:  # the caller's bug must not stop the room, whose task this is
            logger.exception("direct reply callback %r raised; ignored", callback)


async def post_direct(route: RoomRoute, client: Client, request: RoomRequest, reply: DirectReply) -> None:
    """Post ``request`` of ``client`` to ``route``'s room; the room answers through
    ``reply``. Waits only while the room's mailbox is full (back-pressure on this
    one connection); a closed room calls ``reply``'s reroute at once."""
    message = DirectCommand(route.user_id, client, request)
    if not route.ref.post_nowait(message, reply):
        await route.ref.post(message, reply)


def direct_request(
    route: RoomRoute, name: str, payload: object
) -> tuple[CommandSpec[Any], object, RoomRequest | None]:
    """Parse a command of a connection with ``route``: its spec, its request (or
    the ProtocolError refusing it), and the request again when it may go to the
    room directly, its token taken (else None). What the lobby would refuse
    before the room sees it (an invalid payload, another room's id, an empty
    bucket) must go the lobby's way, so those errors keep protocol.md's order."""
    spec = command_spec(name)
    request = spec.request(payload)
    if (
        name not in DIRECT_COMMANDS
        or isinstance(request, ProtocolError)
        or getattr(request, "id", None) != route.room_id
        or not route.bucket.take(trio.current_time())
    ):
        return spec, request, None
    direct: RoomRequest = request
    return spec, request, direct
