"""The room protocol on a SocketIOServer: namespaces ``/`` and ``/lobby``, one lobby.

This module is the only place where the actors meet Socket.IO: each socket becomes
a :class:`SocketClient` (the actors' ``Client``), each command event an ask to the
lobby, and each reply an ack (or, when the client asked for none, a ``rejected``
event on failure). The actors never see a socket; the Socket.IO layer never sees
an actor.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import AsyncIterator, Callable, Hashable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final, Protocol

import trio

from .actors import (
    DETACH_FLOODING,
    DIRECT_COMMANDS,
    REGISTRY,
    ActorStopped,
    CommandSpec,
    DirectReply,
    IdentityPolicy,
    Lobby,
    LobbyStatistics,
    RoomLimits,
    RoomList,
    RoomRoute,
    SharedEvent,
    direct_request,
    open_lobby,
    post_direct,
)
from .engineio import coalesced_writes
from .socketio import ConnectionRefused, EncodedEvent, Socket, SocketIOServer

if TYPE_CHECKING:  # prometheus-client is optional: only a server with metrics on imports it
    from .metrics import RoomMetrics

logger = logging.getLogger(__name__)

NAMESPACES: Final = ("/", "/lobby")
"""Both speak the room protocol and share one lobby (protocol.md)."""

UPDATEROOMS_KEY: Final = "updaterooms"
"""Outbox replace key: an undelivered room list is replaced by the newer one."""


def _room_list_json(rooms: RoomList) -> list[dict[str, Any]]:
    return rooms.encoded("json", RoomList.to_json)


class SocketClient:
    """One socket (one client in one namespace) as the lobby's ``Client``.

    Every method hands over to the socket's outbox and returns at once.
    """

    __slots__ = ("socket", "_sio", "_in_lobby", "_lobby_done", "_metrics", "route")

    def __init__(self, socket: Socket, sio: SocketIOServer, metrics: RoomMetrics | None = None) -> None:
        self.socket = socket
        self._sio = sio
        self._metrics = metrics
        #: A command of this socket is queued in, or being handled by, the lobby.
        self._in_lobby = False
        self._lobby_done: trio.Event | None = None
        #: Set by the lobby (in its task): where this socket's answers go directly.
        self.route: RoomRoute | None = None

    def route_room(self, route: RoomRoute | None) -> None:
        self.route = route

    async def wait_lobby_done(self) -> None:
        """Until the lobby has answered this socket's previous command: each
        socket has at most one command with the lobby, so one client cannot
        fill the lobby's mailbox. Clients that wait for their acks never wait here."""
        while self._in_lobby:
            if self._lobby_done is None:
                self._lobby_done = trio.Event()
            await self._lobby_done.wait()

    def _set_in_lobby(self, value: bool) -> None:
        self._in_lobby = value
        done = self._lobby_done
        if not value and done is not None:
            self._lobby_done = None
            done.set()

    @property
    def client_id(self) -> Hashable:
        return self.socket.sid

    def __repr__(self) -> str:
        return f"SocketClient({self.socket.sid!r}, {self.socket.namespace!r})"

    def send_event(self, event: str, payload: object) -> None:
        self.socket.emit(event, payload, coalesce=self._in_lobby)

    def send_room_list(self, rooms: RoomList) -> None:
        namespace = self.socket.namespace
        # Legacy mode (protocol.md): the 2017 client (socket.io-client 1.x, Engine.IO
        # v3) runs JSON.parse on the list, so it gets the list's JSON text.
        legacy = self.socket.legacy

        def encode(rooms: RoomList) -> EncodedEvent:
            data: object = _room_list_json(rooms)
            if legacy:
                data = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
            return self._sio.encode_event("updaterooms", data, namespace=namespace)

        # Encoded once per change per namespace, shared by every socket of it.
        # Coalesced (with the ack the lobby is about to send) only for a client
        # whose command the lobby is answering: deferring every watcher's write
        # would cost a fan-out more than it saves.
        encoded: EncodedEvent = rooms.encoded(("updaterooms", namespace, legacy), encode)
        if self._metrics is not None:
            self._metrics.room_list_sent(replaced_undelivered=self.socket.holds(UPDATEROOMS_KEY))
        self.socket.send_encoded(encoded, replace_key=UPDATEROOMS_KEY, coalesce=self._in_lobby)

    def send_latest(self, event: str, payload: object) -> None:
        # ``roomupdated``/``roomschanged``: the event name is the outbox replace key
        self.socket.emit(event, payload, replace_key=event, coalesce=self._in_lobby)

    def holds(self, event: str) -> bool:
        return self.socket.holds(event)

    def send_shared(self, event: SharedEvent) -> None:
        namespace = self.socket.namespace

        def encode(event: SharedEvent) -> EncodedEvent:
            return self._sio.encode_event(event.name, event.payload, namespace=namespace)

        # Encoded once per event per namespace (a room's progress: once per room,
        # not once per player). Coalesced, like a list, only for the client whose
        # command is being answered (the player whose answer caused this progress
        # gets it in one write with their ack); every other member at once.
        encoded: EncodedEvent = event.encoded(("event", namespace), encode)
        if self._metrics is not None and event.name == "raceprogress":
            replaced = event.replace_key is not None and self.socket.holds(event.replace_key)
            self._metrics.race_progress_sent(replaced_undelivered=replaced)
        self.socket.send_encoded(encoded, replace_key=event.replace_key, coalesce=self._in_lobby)

    def detach(self, reason: str) -> None:
        logger.debug(
            "socket %s on %s detached: %s", self.socket.sid, self.socket.namespace, reason,
            extra={"connection_id": self.socket.eio.sid, "client_id": self.socket.sid},
        )
        self.socket.disconnect()
        if reason == DETACH_FLOODING:
            if self._metrics is not None:
                self._metrics.flood_disconnected()
            # The DISCONNECT packet stops socket.io-client from reconnecting; closing
            # the Engine.IO session too makes a scripted flooder start from the
            # handshake (where the connection limits apply) instead of rejoining.
            self.socket.eio.close()


class CommandRouter(Protocol):
    """A cluster node's hook into command handling (roomactors.cluster.relay).

    ``takes`` says (at once) whether a command goes to another node instead of
    the lobby; ``submit`` sends it there and calls ``on_reply`` exactly once (the
    answer, or an error after its deadline); ``observe`` wraps the ``on_reply`` of
    a command the lobby handles (to learn who a socket speaks for)."""

    def takes(self, socket: Socket, command: str, payload: dict[str, Any]) -> bool: ...

    def submit(
        self, socket: Socket, command: str, payload: dict[str, Any], on_reply: Callable[[dict[str, Any]], None]
    ) -> None: ...

    def observe(
        self, socket: Socket, command: str, on_reply: Callable[[dict[str, Any]], None]
    ) -> Callable[[dict[str, Any]], None]: ...

    def disconnected(self, socket: Socket) -> None: ...


_Reply = Callable[[dict[str, Any]], None]
_Rerouted = tuple[SocketClient, CommandSpec[Any], object, _Reply]


class RoomApp:
    """The handlers of both namespaces, bound to one running lobby.

    Run :meth:`serve_reroutes` beside it (``open_room_app`` does): the direct
    commands that a room hands back go to the lobby from there."""

    def __init__(self, sio: SocketIOServer, lobby: Lobby, metrics: RoomMetrics | None = None) -> None:
        self.sio = sio
        self.lobby = lobby
        #: Counts commands, joins, room lists and floods when the server has metrics on.
        self.metrics = metrics
        self._clients: dict[tuple[str, str], SocketClient] = {}
        self.router: CommandRouter | None = None
        """Set by a cluster node: routes commands for rooms on other nodes."""
        # Unbounded, yet bounded by the sockets: each has at most one command out.
        self._reroute_send, self._reroute_receive = trio.open_memory_channel[_Rerouted](math.inf)
        for namespace in NAMESPACES:
            sio.on("connect", namespace)(self._on_connect)
            sio.on("disconnect", namespace)(self._on_disconnect)
            for command in REGISTRY:
                # inline: a command only queues for the lobby (the lobby or a room
                # answers), so the reading task may run it without a switch to the
                # dispatcher; the registry parses its payload here, in this task
                sio.on(command, namespace, inline=True)(self._handler_for(command))

    async def _on_connect(self, socket: Socket, auth: Any) -> None:
        client = SocketClient(socket, self.sio, self.metrics)
        try:
            await self.lobby.connect(client)
        except ActorStopped:
            raise ConnectionRefused("the server is shutting down") from None
        self._clients[(socket.namespace, socket.sid)] = client
        if self.metrics is not None:
            self.metrics.namespace_joined(socket.namespace)

    async def _on_disconnect(self, socket: Socket, reason: str) -> None:
        client = self._clients.pop((socket.namespace, socket.sid), None)
        if self.router is not None:
            self.router.disconnected(socket)
        if client is not None:
            # A drop (no goodbye) keeps the user's seat for the reconnect grace;
            # a legacy (Engine.IO v3) client cannot resume, so its drop is a goodbye.
            dropped = socket.dropped and not socket.legacy
            await self.lobby.disconnect(client, dropped=dropped)

    def _handler_for(self, command: str) -> Any:
        async def handle(socket: Socket, *args: Any) -> None:
            await self.run_command(socket, command, args)

        handle.__name__ = f"on_{command}"
        return handle

    async def run_command(self, socket: Socket, command: str, args: tuple[Any, ...]) -> None:
        """One command event, handed to the lobby without waiting for its answer.

        The lobby answers from its own task (``Lobby.submit``): the ack, or, when
        the client asked for none, a ``rejected`` event on failure (protocol.md:
        one reply, never both). The ack then leaves in the same write as the
        room list the command caused, and this connection's task is not woken
        to send it.
        """
        client = self._clients.get((socket.namespace, socket.sid))
        if client is None:
            return  # the socket is gone; nobody to answer
        await client.wait_lobby_done()  # in order, one at a time per socket
        ack = socket.take_ack()
        metrics = self.metrics
        # The answer's ack latency, from here (the command decoded) to its ack queued.
        arrived = trio.current_time() if metrics is not None and command == "answer" else None

        def on_reply(reply: dict[str, Any]) -> None:
            client._set_in_lobby(False)
            if metrics is not None:
                metrics.command_answered(command, "ok" if reply["ok"] else str(reply["error"]["code"]))
                if arrived is not None:
                    metrics.answer_acked(trio.current_time() - arrived)
            if ack is not None:
                ack(reply)
            elif not reply["ok"]:
                socket.emit("rejected", {"event": command, **reply["error"]}, coalesce=True)

        if len(args) != 1 or not isinstance(args[0], dict):
            on_reply({
                "ok": False,
                "error": {
                    "code": "invalid_payload",
                    "message": f"{command} takes exactly one JSON object, got {len(args)} arguments",
                },
            })
            return
        client._set_in_lobby(True)
        router = self.router
        if router is not None and router.takes(socket, command, args[0]):
            # a command for a room on another node (docs/cluster.md): the router
            # answers through on_reply, within its deadline
            router.submit(socket, command, args[0], on_reply)
            return
        reply_to: Callable[[dict[str, Any]], None] = on_reply
        if router is not None:
            reply_to = router.observe(socket, command, on_reply)
        try:
            route = client.route
            if route is not None and command in DIRECT_COMMANDS:
                await self._direct(client, route, command, args[0], reply_to)
            else:
                await self.lobby.submit(client, command, args[0], reply_to)
        except BaseException:
            client._set_in_lobby(False)  # not queued (cancelled while the mailbox was full)
            raise

    async def _direct(
        self, client: SocketClient, route: RoomRoute, command: str, payload: object, on_reply: _Reply
    ) -> None:
        """A seated player's answer, posted to their room past the lobby
        (actors/routes.py), or the lobby's way when it must (``direct_request``)."""
        spec, request, direct = direct_request(route, command, payload)
        if direct is None:
            await self.lobby.submit_request(client, spec, request, on_reply)
            return

        def reroute() -> None:
            # in the room's task (or this one): never wait; serve_reroutes posts it
            self._reroute_send.send_nowait((client, spec, request, on_reply))

        await post_direct(route, client, direct, DirectReply(on_reply, reroute))

    async def serve_reroutes(self) -> None:
        """Hand the lobby the direct commands their room gave back (a stale route:
        the player was kicked, replaced, or the room is closing), token already
        paid. Runs until cancelled; what is left then is answered, not dropped."""
        try:
            async for client, spec, request, on_reply in self._reroute_receive:
                await self.lobby.submit_request(client, spec, request, on_reply, prepaid=True)
        finally:
            while True:
                try:
                    _, _, _, on_reply = self._reroute_receive.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
                on_reply({"ok": False, "error": {"code": "internal", "message": "the server is shutting down"}})

    def statistics(self) -> LobbyStatistics:
        return self.lobby.statistics()

    def sockets_by_namespace(self) -> dict[str, int]:
        """Sockets connected now, per namespace (for metrics)."""
        counts = dict.fromkeys(NAMESPACES, 0)
        for namespace, _ in self._clients:
            counts[namespace] = counts.get(namespace, 0) + 1
        return counts
    def socket(self, namespace: str, sid: str) -> Socket | None:
        """The connected socket ``sid`` of ``namespace``, if it is on this server."""
        client = self._clients.get((namespace, sid))
        return client.socket if client is not None else None

    def client(self, namespace: str, sid: str) -> SocketClient | None:
        """The lobby's client of socket ``sid`` of ``namespace`` (for a cluster node)."""
        return self._clients.get((namespace, sid))

    def sockets(self, namespace: str) -> list[Socket]:
        """Every connected socket of ``namespace`` on this server (a copy)."""
        return [client.socket for (ns, _), client in self._clients.items() if ns == namespace]

    async def shutdown(self) -> None:
        """Close every room with reason ``shutdown`` (hosts and players told) and
        stop the lobby; call it while still serving, so the clients hear it."""
        await self.lobby.shutdown()


@asynccontextmanager
async def open_room_app(
    sio: SocketIOServer,
    limits: RoomLimits = RoomLimits(),
    *,
    metrics: RoomMetrics | None = None,
    identity: IdentityPolicy = IdentityPolicy(),
) -> AsyncIterator[RoomApp]:
    """Install the room protocol on ``sio`` and run its lobby for the block.

    ``identity``: open identity with seat tokens (the default) or signed
    credentials (race.md, "Identity"); ``limits.reconnect_grace`` how long a
    dropped client's seat is kept.

    Serve ``sio`` inside the block. Leaving it shuts the lobby down: every room is
    closed with reason ``shutdown`` (hosts and players told) before the caller
    stops serving; disconnects that arrive afterwards are ignored.
    """
    async with trio.open_nursery() as nursery:
        async with open_lobby(limits, batch_scope=coalesced_writes, identity=identity) as lobby:
            app = RoomApp(sio, lobby, metrics)
            nursery.start_soon(app.serve_reroutes)
            yield app
        nursery.cancel_scope.cancel()  # after the lobby's shutdown, which may still reroute
