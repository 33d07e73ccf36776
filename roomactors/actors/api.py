"""``open_lobby()``: the lobby and its rooms, embedded in any trio program, no sockets.

The server's connection layer uses exactly this handle, so an embedder (or a
test) drives the same code path as a Socket.IO client does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import trio

from .client import Client
from .limits import LobbySnapshot, LobbyStatistics, RoomLimits
from .lobby import COMMANDS, LobbyActor, run_lobby
from .mailbox import ActorRef, ActorStopped
from .messages import Command, Connect, Disconnect, Inspect, LobbyMessage, Shutdown
from .records import UserId


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

    async def disconnect(self, client: Client) -> None:
        """The client is gone: counts as ``leave_lobby``. A no-op once the lobby stopped."""
        try:
            await self._ref.ask(Disconnect(client))
        except ActorStopped:
            pass

    async def command(self, client: Client, name: str, payload: object) -> dict[str, Any]:
        """Run one room-protocol command for ``client``; returns the ack dict.

        ``name`` must be one of ``COMMANDS`` (anything else is a ValueError: the
        caller's bug, not the peer's). Once the lobby has stopped, the answer is
        an ``internal`` error rather than an exception, like any other refusal.
        """
        if name not in COMMANDS:
            raise ValueError(f"unknown command {name!r}; the commands are {', '.join(COMMANDS)}")
        try:
            reply: dict[str, Any] = await self._ref.ask(Command(client, name, payload))
        except ActorStopped:
            return {"ok": False, "error": {"code": "internal", "message": "the lobby has shut down"}}
        return reply

    # Typed conveniences: the same commands with keyword arguments.

    async def join_lobby(
        self, client: Client, user_id: UserId, username: str | None = None, auth_level: str | None = None
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"id": user_id}
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


@asynccontextmanager
async def open_lobby(limits: RoomLimits = RoomLimits()) -> AsyncIterator[Lobby]:
    """Run a lobby for the duration of the block; on a normal exit it shuts down
    gracefully (rooms closed with ``shutdown``), on an error it is cancelled."""
    async with trio.open_nursery() as nursery:
        ref, actor = await nursery.start(run_lobby, limits)
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
