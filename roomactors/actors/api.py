"""``open_lobby()``: the lobby and its rooms, embedded in any trio program, no sockets.

The server's connection layer uses exactly this handle, so an embedder (or a
test) drives the same code path as a Socket.IO client does.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractContextManager, asynccontextmanager
from dataclasses import replace
from functools import partial
from typing import Any

import trio

from .client import Client
from .commands import CommandSpec, JoinLobbyRequest, command_spec
from .identity import IdentityPolicy
from .limits import LobbySnapshot, LobbyStatistics, RoomLimits
from .lobby import LobbyActor, run_lobby
from .mailbox import ActorRef, ActorStopped
from .messages import (
    AttachDirectory,
    Command,
    Connect,
    Disconnect,
    Inspect,
    LobbyMessage,
    RemoteRoomsChanged,
    RoomDirectoryView,
    Shutdown,
    UserRegistryView,
)
from .records import UserId
from .routes import DirectReply, RoomRoute, direct_request, post_direct

logger = logging.getLogger(__name__)


class Lobby:
    """A handle to a running lobby. Obtain it from :func:`open_lobby`."""

    def __init__(self, ref: ActorRef[LobbyMessage], actor: LobbyActor) -> None:
        self._ref = ref
        self._actor = actor

    @property
    def ref(self) -> ActorRef[LobbyMessage]:
        """The lobby's mailbox, for code that wants to send messages itself."""
        return self._ref

    async def connect(self, client: Client) -> None:
        """Register a connected client: it receives every ``updaterooms`` from now on."""
        await self._ref.ask(Connect(client))

    async def disconnect(self, client: Client, *, dropped: bool = False) -> None:
        """The client is gone: after a goodbye it counts as ``leave_lobby``;
        ``dropped`` (no goodbye: the network went) keeps its user's place for the
        reconnect grace. A no-op once the lobby stopped."""
        try:
            await self._ref.ask(Disconnect(client, dropped))
        except ActorStopped:
            pass

    async def command(self, client: Client, name: str, payload: object) -> dict[str, Any]:
        """Run one room-protocol command for ``client``; returns the ack dict.

        ``name`` must be one of ``COMMANDS`` (the registry of :mod:`.commands`;
        anything else is a ValueError: the
        caller's bug, not the peer's). Once the lobby has stopped, the answer is
        an ``internal`` error rather than an exception, like any other refusal.
        """
        spec = command_spec(name)
        try:
            reply: dict[str, Any] = await self._ref.ask(Command(client, spec, spec.request(payload)))
        except ActorStopped:
            return _lobby_stopped()
        return reply

    async def command_routed(
        self, client: Client, route: RoomRoute, name: str, payload: object
    ) -> dict[str, Any]:
        """:meth:`command` for a client the lobby gave a direct line to its room
        (:mod:`.routes`): an answer goes to the room past the lobby when it may,
        and the lobby's way when not, or when the room hands it back. The reply
        is what :meth:`command` gives; the socket binding does the same without
        waiting (``roomactors.app``)."""
        spec, request, direct = direct_request(route, name, payload)
        if direct is not None:
            slot = _DirectSlot()
            await post_direct(route, client, direct, DirectReply(slot.set, slot.hand_back))
            reply = await slot.wait()
            if reply is not None:
                return reply
        try:
            answer: dict[str, Any] = await self._ref.ask(Command(client, spec, request, prepaid=direct is not None))
        except ActorStopped:
            return _lobby_stopped()
        return answer

    async def join_vouched(self, client: Client, request: JoinLobbyRequest) -> dict[str, Any]:
        """``join_lobby`` for an identity that trusted code checked already (a cluster
        node, docs/cluster.md): the claim is taken as it stands and a held seat is
        taken over without its token. Never for what a client sent unchecked."""
        spec = command_spec("join_lobby")
        try:
            reply: dict[str, Any] = await self._ref.ask(Command(client, spec, replace(request, vouched=True)))
        except ActorStopped:
            return _lobby_stopped()
        return reply

    async def submit(
        self, client: Client, name: str, payload: object, on_reply: Callable[[dict[str, Any]], None]
    ) -> None:
        """Queue one command and return; ``on_reply`` gets its ack dict later.

        The same command as :meth:`command`, for a caller that must not wait for
        the lobby: ``on_reply`` is called exactly once, in the lobby's task,
        after the changes of the lobby's current batch went out (``internal``
        error once the lobby has stopped). It must not block or raise; the
        server's connection layer uses it to send the ack from there, with
        the lobby's other writes to that client. This waits only while the
        lobby's mailbox is full.
        """
        spec = command_spec(name)  # parsed here, in the caller's task: the lobby gets a typed request
        await self._ref.post(Command(client, spec, spec.request(payload)), _AckReply(on_reply))

    async def submit_request(
        self,
        client: Client,
        spec: CommandSpec[Any],
        request: object,
        on_reply: Callable[[dict[str, Any]], None],
        *,
        prepaid: bool = False,
    ) -> None:
        """:meth:`submit` for a request already parsed (``spec.request(payload)``).

        ``prepaid``: the connection's rate-limit token was taken already, by a
        direct command its room handed back (:mod:`.routes`)."""
        await self._ref.post(Command(client, spec, request, prepaid), _AckReply(on_reply))

    def submit_nowait(
        self, client: Client, name: str, payload: object, on_reply: Callable[[dict[str, Any]], None]
    ) -> bool:
        """:meth:`submit` without waiting and without a checkpoint: False (nothing
        queued) when the lobby's mailbox is full. For code that hands many commands
        over from one task of its own (a cluster node's inbox reader relays other
        nodes' players' commands this way), so that each costs no task switch."""
        spec = command_spec(name)
        return self._ref.post_nowait(Command(client, spec, spec.request(payload)), _AckReply(on_reply))

    # Typed conveniences: the same commands with keyword arguments.

    async def join_lobby(
        self, client: Client, user_id: UserId, username: str | None = None, auth_level: str | None = None,
        *, token: str | None = None,
    ) -> dict[str, Any]:
        """``token``: the seat's token, to take over or come back to a held id."""
        payload: dict[str, Any] = {"id": user_id}
        if token is not None:
            payload["token"] = token
        if username is not None:
            payload["username"] = username
        if auth_level is not None:
            payload["auth_level"] = auth_level
        return await self.command(client, "join_lobby", payload)

    async def leave_lobby(self, client: Client, user_id: UserId) -> dict[str, Any]:
        return await self.command(client, "leave_lobby", {"id": user_id})

    async def create_room(
        self, client: Client, name: str, deck: Mapping[str, Any], host: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"name": name, "deck": dict(deck)}
        if host is not None:
            payload["host"] = dict(host)
        return await self.command(client, "create_room", payload)

    async def join_room(self, client: Client, room_id: int) -> dict[str, Any]:
        return await self.command(client, "join_room", {"id": room_id})

    async def leave_room(self, client: Client, room_id: int) -> dict[str, Any]:
        return await self.command(client, "leave_room", {"id": room_id})

    async def watch_rooms(
        self, client: Client, room_filter: Mapping[str, Any] | None = None, limit: int | None = None
    ) -> dict[str, Any]:
        """Switch ``client`` to the room feed (``room_filter`` is the command's
        ``filter``): the ack ``{ok, version, rooms}``, then ``roomschanged``."""
        payload: dict[str, Any] = {}
        if room_filter is not None:
            payload["filter"] = dict(room_filter)
        if limit is not None:
            payload["limit"] = limit
        return await self.command(client, "watch_rooms", payload)

    async def unwatch_rooms(self, client: Client) -> dict[str, Any]:
        """Back to full ``updaterooms`` lists, starting with one at once."""
        return await self.command(client, "unwatch_rooms", {})

    async def start_race(self, client: Client, room_id: int, **options: Any) -> dict[str, Any]:
        """``start_race`` with race.md's options as keywords (countdown, time_limit, shuffle, late_join)."""
        return await self.command(client, "start_race", {"id": room_id, **options})

    async def answer(self, client: Client, room_id: int, race_id: int, card: int, answer: object) -> dict[str, Any]:
        return await self.command(client, "answer", {"id": room_id, "race_id": race_id, "card": card, "answer": answer})

    async def end_race(self, client: Client, room_id: int) -> dict[str, Any]:
        return await self.command(client, "end_race", {"id": room_id})

    async def race_results(self, client: Client, room_id: int, race_id: int | None = None) -> dict[str, Any]:
        return await self.command(client, "race_results", {"id": room_id, "race_id": race_id})

    async def kick_player(self, client: Client, room_id: int, user_id: UserId) -> dict[str, Any]:
        return await self.command(client, "kick_player", {"id": room_id, "user": user_id})

    async def lock_room(self, client: Client, room_id: int, locked: bool) -> dict[str, Any]:
        return await self.command(client, "lock_room", {"id": room_id, "locked": locked})

    async def time_sync(self, client: Client, t0: float) -> dict[str, Any]:
        return await self.command(client, "time_sync", {"t0": t0})

    async def attach_directory(self, directory: RoomDirectoryView, users: UserRegistryView | None = None) -> None:
        """Make this lobby a cluster node's: it reports its rooms to ``directory`` and
        shows the merged list; call ``remote_rooms_changed`` when other nodes' rooms change.
        ``users`` is told of every user who leaves this lobby."""
        await self._ref.ask(AttachDirectory(directory, users))

    async def remote_rooms_changed(self) -> None:
        """Other nodes' rooms changed: the lobby publishes a new list."""
        await self._ref.tell(RemoteRoomsChanged())

    def statistics(self) -> LobbyStatistics:
        return self._actor.statistics()

    async def snapshot(self) -> LobbySnapshot:
        """Who is where, taken by the lobby between two messages (so consistent)."""
        snapshot: LobbySnapshot = await self._ref.ask(Inspect())
        return snapshot

    async def shutdown(self) -> None:
        """Close every room (reason ``shutdown``, host and players told) and stop the
        lobby. Idempotent; commands afterwards get an ``internal`` error."""
        try:
            await self._ref.ask(Shutdown())
        except ActorStopped:
            pass


def _lobby_stopped() -> dict[str, Any]:
    return {"ok": False, "error": {"code": "internal", "message": "the lobby has shut down"}}


class _DirectSlot:
    """Where :meth:`Lobby.command_routed` waits: the room's ack, or None when
    the room handed the command back."""

    def __init__(self) -> None:
        self._done = trio.Event()
        self._reply: dict[str, Any] | None = None

    def set(self, reply: dict[str, Any]) -> None:
        self._reply = reply
        self._done.set()

    def hand_back(self) -> None:
        self._done.set()

    async def wait(self) -> dict[str, Any] | None:
        await self._done.wait()
        return self._reply


class _AckReply:
    """A command's reply slot that hands the ack dict to a callback (see ``submit``)."""

    __slots__ = ("_on_reply",)

    def __init__(self, on_reply: Callable[[dict[str, Any]], None]) -> None:
        self._on_reply = on_reply

    def set(self, value: Any) -> None:
        self._call(value)

    def fail(self, error: ActorStopped) -> None:
        self._call(_lobby_stopped())

    def _call(self, reply: dict[str, Any]) -> None:
        try:
            self._on_reply(reply)
        except Exception:  # the caller's bug must not stop the lobby, whose task this is
            logger.exception("on_reply callback %r raised; ignored", self._on_reply)


@asynccontextmanager
async def open_lobby(
    limits: RoomLimits = RoomLimits(),
    *,
    batch_scope: Callable[[], AbstractContextManager[object]] | None = None,
    identity: IdentityPolicy = IdentityPolicy(),
) -> AsyncIterator[Lobby]:
    """Run a lobby for the duration of the block; on a normal exit it shuts down
    gracefully (rooms closed with ``shutdown``), on an error it is cancelled.

    ``batch_scope`` is entered around each batch of messages the lobby handles
    (see ``Mailbox.serve``); the server passes
    :func:`roomactors.engineio.coalesced_writes` so that what one batch sends
    a client (room list, acks) leaves in one write. ``identity`` says who may
    speak for a user id (open with seat tokens, or signed; see :mod:`.identity`).
    """
    async with trio.open_nursery() as nursery:
        ref, actor = await nursery.start(partial(run_lobby, limits, batch_scope=batch_scope, identity=identity))
        lobby = Lobby(ref, actor)
        try:
            yield lobby
        except BaseException:
            nursery.cancel_scope.cancel()
            raise
        else:
            await lobby.shutdown()
        finally:
            ref.close()
