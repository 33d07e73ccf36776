"""Rooms on other nodes: a player's commands go to the room's node, its events come back.

A player connected to node A joins a room held by node B. Node A (the
:class:`Relay`, a ``CommandRouter`` of the room app) sends the player's commands
for that room to B's inbox (stream) ``{prefix}inbox:{B}`` with a deadline, and
answers the player when B replies, or with ``node_unavailable`` when the deadline
passes first (the command is then dropped by B if it arrives late, so a failed
command changes nothing). Node B (the same class) speaks for the player to its own
lobby through a :class:`RelayedClient`, an ordinary lobby ``Client`` whose events
(``racestart``, ``raceprogress``, ``raceover``, ``roomclosed``, ``kicked``,
``roomupdated``...) are published to A's inbox and delivered there to the
player's socket. B's lobby and room actors do not know the player is elsewhere.

A seat on another node ends when the player leaves the room, is kicked, the room
closes, the player disconnects or leaves the lobby, or B dies: then the player
gets ``roomclosed`` with reason ``node_lost`` (from A's liveness check). A dead A
makes B disconnect A's relayed players (as if they had disconnected).

Messages are JSON objects with ``t``: ``cmd`` (A→B: ``conn``, ``from``, ``ns``,
``user``, ``req``, ``name``, ``payload``, ``deadline`` in epoch seconds),
``close`` (A→B: ``conn``), ``reply`` (B→A: ``conn``, ``req``, ``reply``),
``event`` (B→A: ``conn``, ``event``, ``payload``, ``key``: the outbox replace
key or null) and ``detach`` (B→A: ``conn``).
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import trio

from ..actors import REGISTRY, ActorStopped, Lobby
from ..actors.client import RoomList, SharedEvent
from ..socketio import Socket

__all__ = ("NODE_UNAVAILABLE", "RELAY_TIMEOUT", "Relay", "RelayedClient", "inbox_channel")

logger = logging.getLogger("roomactors.cluster")

RELAY_TIMEOUT = 5.0
"""Seconds a command for a room on another node may take before ``node_unavailable``."""

NODE_UNAVAILABLE = "node_unavailable"
"""The error code of a command whose room's node did not answer within the deadline."""

OUTBOX_SIZE = 10_000
"""Messages waiting for Redis; beyond it new ones are dropped (their commands time out)."""

Reply = Callable[[dict[str, Any]], None]
SocketKey = tuple[str, str]


def inbox_channel(prefix: str, node_id: str) -> str:
    return f"{prefix}inbox:{node_id}"


def _error(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message}}


@dataclass
class _Seat:
    """This node's socket seated in a room of another node."""

    node: str
    room_id: int
    conn: str
    joined: bool = False  # False while the first join_room is on its way


@dataclass
class _Pending:
    key: SocketKey
    command: str
    on_reply: Reply
    done: trio.Event


class RelayedClient:
    """A player of another node, as this node's lobby sees them (a lobby ``Client``)."""

    __slots__ = ("conn", "origin", "_relay", "commands")

    def __init__(self, conn: str, origin: str, relay: Relay) -> None:
        self.conn = conn
        self.origin = origin
        self._relay = relay
        self.commands: trio.MemorySendChannel[dict[str, Any]] | None = None

    @property
    def client_id(self) -> Hashable:
        return ("relayed", self.conn)

    def send_event(self, event: str, payload: object) -> None:
        self._relay.to_origin(self, event, payload, None)

    def send_room_list(self, rooms: RoomList) -> None:
        pass  # the player's own node sends them its lists

    def send_latest(self, event: str, payload: object) -> None:
        if event != "roomschanged":  # the feed, too, is the own node's
            self._relay.to_origin(self, event, payload, event)

    def holds(self, event: str) -> bool:
        return False

    def send_shared(self, event: SharedEvent) -> None:
        key = event.replace_key if isinstance(event.replace_key, str) else (event.name if event.replace_key else None)
        self._relay.to_origin(self, event.name, event.payload, key)

    def detach(self, reason: str) -> None:
        self._relay.detached(self, reason)

    def __repr__(self) -> str:
        return f"RelayedClient({self.conn!r})"


class Relay:
    """Both sides of cross-node rooms for one node; see the module docstring."""

    def __init__(
        self,
        node_id: str,
        prefix: str,
        lobby: Lobby,
        socket_of: Callable[[str, str], Socket | None],
        owner_of: Callable[[int], str | None],
        room_of_code: Callable[[str], tuple[int, str] | None],
        timeout: float = RELAY_TIMEOUT,
    ) -> None:
        self.node_id = node_id
        self.prefix = prefix
        self.inbox = inbox_channel(prefix, node_id)
        self.timeout = timeout
        self._lobby = lobby
        self._socket_of = socket_of
        self._owner_of = owner_of
        self._room_of_code = room_of_code
        self._outbox_send, self.outbox = trio.open_memory_channel[tuple[str, str]](OUTBOX_SIZE)
        self._nursery: trio.Nursery | None = None
        # --- this node's sockets seated elsewhere
        self._users: dict[SocketKey, dict[str, Any]] = {}
        self._seats: dict[SocketKey, _Seat] = {}
        self._by_conn: dict[str, SocketKey] = {}
        self._pending: dict[int, _Pending] = {}
        self._requests = itertools.count(1)
        # --- other nodes' players seated here
        self._guests: dict[str, RelayedClient] = {}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    def _publish(self, node: str, message: dict[str, Any]) -> bool:
        try:
            text = json.dumps(message, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            logger.error("relay: a %s message could not be encoded: %s", message.get("t"), exc)
            return False
        try:
            self._outbox_send.send_nowait((inbox_channel(self.prefix, node), text))
        except trio.WouldBlock:
            logger.warning("relay: %d messages wait for Redis; dropping one", OUTBOX_SIZE)
            return False
        return True

    # --- the CommandRouter of this node's room app (the player's side) --------------

    def takes(self, socket: Socket, command: str, payload: dict[str, Any]) -> bool:
        key = (socket.namespace, socket.sid)
        seat = self._seats.get(key)
        if seat is not None:
            if command == "leave_lobby":
                self._end(key, tell_owner=True)  # then the lobby here handles it
                return False
            return command in ("join_room", "leave_room", "create_room") or REGISTRY[command].handled_by == "room"
        if command != "join_room" or key not in self._users:
            return False
        return self._target(payload) is not None

    def _target(self, payload: dict[str, Any]) -> tuple[int, str] | None:
        """The room of another node that a join_room names (by id, or by code), or None."""
        room_id, code = payload.get("id"), payload.get("code")
        if code is None and isinstance(room_id, int) and not isinstance(room_id, bool):
            owner = self._owner_of(room_id)
            return None if owner is None else (room_id, owner)
        if room_id is None and isinstance(code, str) and 1 <= len(code) <= 16:
            # None when no other node's room holds it, or when a room here with the
            # same code has the lower id (a clash; the directory resolves it alike everywhere)
            return self._room_of_code(code)
        return None  # invalid payloads are the lobby's to refuse

    def submit(self, socket: Socket, command: str, payload: dict[str, Any], on_reply: Reply) -> None:
        key = (socket.namespace, socket.sid)
        seat = self._seats.get(key)
        if seat is None:  # a join_room for a room of another node (takes() said so)
            target = self._target(payload)
            if target is None:
                on_reply(_error("room_not_found", "that room does not exist (it may have closed)"))
                return
            conn = f"{self.node_id}|{socket.namespace}|{socket.sid}"
            seat = self._seats[key] = _Seat(target[1], target[0], conn)
            self._by_conn[conn] = key
        elif command == "create_room":
            on_reply(_error("already_in_room", f"you sit in room {seat.room_id}; leave it before creating a room"))
            return
        elif not seat.joined:
            on_reply(_error("already_in_room", f"you are joining room {seat.room_id}; wait for its answer"))
            return
        request = next(self._requests)
        message = {
            "t": "cmd", "conn": seat.conn, "from": self.node_id, "ns": socket.namespace,
            "user": self._users.get(key), "req": request, "name": command, "payload": payload,
            "deadline": time.time() + self.timeout,
        }
        pending = self._pending[request] = _Pending(key, command, on_reply, trio.Event())
        if self._nursery is None or not self._publish(seat.node, message):
            self._pending.pop(request, None)
            self._fail(key, pending, "the relay to the room's node is not running")
            return
        self._nursery.start_soon(self._deadline, request, pending, seat.node)

    async def _deadline(self, request: int, pending: _Pending, node: str) -> None:
        with trio.move_on_after(self.timeout):
            await pending.done.wait()
            return
        if self._pending.pop(request, None) is pending:
            self._fail(pending.key, pending, f"node {node} did not answer within {self.timeout:g} s")

    def _fail(self, key: SocketKey, pending: _Pending, why: str) -> None:
        seat = self._seats.get(key)
        if seat is not None and not seat.joined and pending.command == "join_room":
            self._end(key, tell_owner=True)
        pending.on_reply(_error(
            NODE_UNAVAILABLE,
            f"{why}: the room's server is unavailable; try again, or pick another room",
        ))

    def observe(self, socket: Socket, command: str, on_reply: Reply) -> Reply:
        if command not in ("join_lobby", "create_room", "leave_lobby"):
            return on_reply
        key = (socket.namespace, socket.sid)

        def observed(reply: dict[str, Any]) -> None:
            if reply.get("ok"):
                if command == "join_lobby" and isinstance(reply.get("user"), dict):
                    self._users[key] = reply["user"]
                elif command == "create_room" and key not in self._users:
                    host = reply.get("room", {}).get("host")
                    if isinstance(host, dict):
                        self._users[key] = {k: host.get(k) for k in ("id", "username", "auth_level")}
                elif command == "leave_lobby":
                    self._users.pop(key, None)
            on_reply(reply)

        return observed

    def disconnected(self, socket: Socket) -> None:
        key = (socket.namespace, socket.sid)
        self._users.pop(key, None)
        self._end(key, tell_owner=True)

    def _end(self, key: SocketKey, *, tell_owner: bool) -> None:
        seat = self._seats.pop(key, None)
        if seat is None:
            return
        self._by_conn.pop(seat.conn, None)
        if tell_owner:
            self._publish(seat.node, {"t": "close", "conn": seat.conn})

    def nodes_alive(self, nodes: frozenset[str]) -> None:
        """From the liveness check: seats on dead nodes end (``node_lost``); players
        of dead nodes seated here leave (as on a disconnect)."""
        for key, seat in list(self._seats.items()):
            if seat.node not in nodes:
                self._end(key, tell_owner=False)
                socket = self._socket_of(*key)
                if socket is not None and seat.joined:
                    socket.emit("roomclosed", {"id": seat.room_id, "reason": "node_lost"})
                logger.info("room %d on node %s is lost (the node died)", seat.room_id, seat.node)
        for conn, guest in list(self._guests.items()):
            if guest.origin not in nodes:
                self._close_guest(conn)

    # --- the inbox ------------------------------------------------------------------

    def handle_inbox(self, raw: bytes | str) -> None:
        try:
            message = json.loads(raw)
            kind = message["t"]
        except (ValueError, KeyError, TypeError):
            logger.warning("relay: skipped a malformed message on %s", self.inbox)
            return
        if kind == "reply":
            self._on_reply(message)
        elif kind == "event":
            self._on_event(message)
        elif kind == "detach":
            key = self._by_conn.get(message.get("conn"))
            if key is not None:
                self._end(key, tell_owner=False)
        elif kind == "cmd":
            self._on_command(message)
        elif kind == "close":
            self._close_guest(message.get("conn"))

    def _on_reply(self, message: dict[str, Any]) -> None:
        pending = self._pending.pop(message.get("req"), None)  # type: ignore[arg-type]
        if pending is None:
            return  # answered with node_unavailable already
        pending.done.set()
        reply = message.get("reply")
        if not isinstance(reply, dict):
            reply = _error("internal", "the room's node sent a malformed answer")
        seat = self._seats.get(pending.key)
        if seat is not None:
            if pending.command == "join_room":
                if reply.get("ok"):
                    seat.joined = True
                elif not seat.joined:
                    self._end(pending.key, tell_owner=True)
            elif pending.command == "leave_room" and reply.get("ok"):
                self._end(pending.key, tell_owner=True)
        pending.on_reply(reply)

    def _on_event(self, message: dict[str, Any]) -> None:
        key = self._by_conn.get(message.get("conn"))  # type: ignore[arg-type]
        if key is None:
            return
        socket = self._socket_of(*key)
        event = message.get("event")
        if socket is None or not isinstance(event, str):
            return
        replace_key = message.get("key")
        socket.emit(event, message.get("payload"), replace_key=replace_key if isinstance(replace_key, str) else None)
        if event in ("roomclosed", "kicked"):
            self._end(key, tell_owner=True)  # back in the lobby: of this node

    # --- the room's side: other nodes' players seated here -------------------------

    def _on_command(self, message: dict[str, Any]) -> None:
        conn, origin = message.get("conn"), message.get("from")
        if not isinstance(conn, str) or not isinstance(origin, str) or self._nursery is None:
            return
        guest = self._guests.get(conn)
        if guest is None:
            guest = self._guests[conn] = RelayedClient(conn, origin, self)
            send, receive = trio.open_memory_channel[dict[str, Any]](64)
            guest.commands = send
            self._nursery.start_soon(self._serve_guest, guest, receive)
        assert guest.commands is not None
        try:
            guest.commands.send_nowait(message)
        except (trio.WouldBlock, trio.ClosedResourceError):
            logger.warning("relay: too many commands queued for %s; one dropped", conn)

    async def _serve_guest(self, guest: RelayedClient, commands: trio.MemoryReceiveChannel[dict[str, Any]]) -> None:
        """One guest's commands, in order; it joins this lobby with its first."""
        joined = False
        try:
            await self._lobby.connect(guest)
        except ActorStopped:
            return  # shutting down
        try:
            async with commands:
                async for message in commands:
                    if time.time() > float(message.get("deadline", 0)):
                        continue  # its node answered node_unavailable already: changes nothing
                    if not joined:
                        user = message.get("user") or {}
                        claim = {k: user.get(k) for k in ("id", "username", "auth_level") if user.get(k) is not None}
                        reply = await self._lobby.command(guest, "join_lobby", claim)
                        joined = bool(reply.get("ok"))
                    if joined:
                        try:
                            reply = await self._lobby.command(guest, str(message.get("name")), message.get("payload"))
                        except ValueError:
                            reply = _error("invalid_payload", "unknown command")
                    self._publish(guest.origin, {"t": "reply", "conn": guest.conn, "req": message.get("req"),
                                                 "reply": reply})
        except Exception:  # one guest's failure must not stop this node
            logger.exception("relay: serving %s failed; it leaves", guest.conn)
            self._guests.pop(guest.conn, None)
        finally:
            with trio.CancelScope(shield=True):
                await self._lobby.disconnect(guest)

    def _close_guest(self, conn: object) -> None:
        guest = self._guests.pop(conn, None) if isinstance(conn, str) else None
        if guest is not None and guest.commands is not None:
            guest.commands.close()  # its task disconnects it from the lobby

    def to_origin(self, guest: RelayedClient, event: str, payload: object, key: str | None) -> None:
        if self._guests.get(guest.conn) is guest:
            self._publish(guest.origin, {"t": "event", "conn": guest.conn, "event": event, "payload": payload,
                                         "key": key})

    def detached(self, guest: RelayedClient, reason: str) -> None:
        if self._guests.get(guest.conn) is guest:
            self._publish(guest.origin, {"t": "detach", "conn": guest.conn, "reason": reason})
            self._close_guest(guest.conn)
