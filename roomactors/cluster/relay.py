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
A relayed client joins B's lobby *vouched* (its identity was checked by A and
the user registry, users.py): it takes the user's seat there over, if any, and
needs no token or credential.

A seat on another node ends when the player leaves the room, is kicked, the room
closes, the player disconnects or leaves the lobby, or B dies: then the player
gets ``roomclosed`` with reason ``node_lost`` (from A's liveness check). When the
player's connection *drops* (no goodbye), A says so, and B holds the seat for the
reconnect grace as for a local player; so it does for the players of a node that
died.

Users across nodes (docs/cluster.md): every ``join_lobby`` (and an anonymous
``create_room {host}``) first asks the user registry where the user lives. Held
on another node and vouched for (the token's digest matches, or the identity is
signed), the user moves here: the node holding their room seat takes it over by a
vouched ``join_lobby`` from a new relayed connection (its reply names the room,
``racestate`` follows during a race), this node's lobby takes the user (vouched),
and the old home lets its socket go (``replaced``) the same way: a vouched join
there, then the relayed client leaves.

Messages are JSON objects with ``t``: ``cmd`` (A→B: ``conn``, ``from``,
``user``, ``req``, ``name``, ``payload``, ``deadline`` in epoch seconds),
``close`` (A→B: ``conn``, ``dropped`` when the player's connection dropped),
``reply`` (B→A: ``conn``, ``req``, ``reply``), ``event`` (B→A: ``conn``,
``event``, ``payload``, ``key``: the outbox replace key or null), ``shared``
(B→A: ``conns``, ``event``, ``key``, ``payload``: one event that a room sent
to several of A's players, such as ``raceprogress``, ``racestart``,
``roomupdated`` or ``roomclosed``; its payload is encoded once on B, its
Socket.IO frame once per namespace on A) and ``detach`` (B→A: ``conn``,
``reason``). They go into this node's :class:`~.inbox.Outbox` at once, which
keeps them in order per destination node (inbox.py).

Cost: a relayed command costs no task of its own; its deadline waits in one heap
(:meth:`Relay._expire_commands`, one task for all of them, as the lobby's
reconnect grace does), and a reply that comes in time leaves a stale entry that
is skipped when it comes due. On B, each guest has a task for what must be
awaited in order (its join, ``join_room`` and the registry write after it); an
ordinary command of a guest whose task is idle goes to the lobby straight from
the inbox reader (``Lobby.submit_nowait``), its reply published from the
lobby's task (the lobby's mailbox keeps the order).
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import math
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import trio

from ..actors import REGISTRY, ActorStopped, IdentityPolicy, Lobby
from ..actors.client import DETACH_REPLACED, Client, RoomList, SharedEvent
from ..actors.commands import JoinLobbyRequest
from ..actors.validation import ProtocolError
from ..socketio import EncodedEvent, Socket, encode_event
from .inbox import Outbox
from .users import Claim, UserRegistry

__all__ = ("NODE_UNAVAILABLE", "RELAY_TIMEOUT", "Relay", "RelayedClient", "inbox_channel")

logger = logging.getLogger("roomactors.cluster")

RELAY_TIMEOUT = 5.0
"""Seconds a command for a room on another node may take before ``node_unavailable``."""

NODE_UNAVAILABLE = "node_unavailable"
"""The error code of a command whose room's node did not answer within the deadline."""

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


@dataclass(slots=True)
class _Pending:
    key: SocketKey | None  # None: no socket of this node (a release)
    command: str
    on_reply: Reply
    node: str


_IN_ORDER_TASK = frozenset({"join_lobby", "join_room"})
"""A guest's commands that its task runs (they await more than the lobby's answer)."""


def _payload_json(event: SharedEvent) -> str:
    return json.dumps(event.payload, separators=(",", ":"))


class RelayedClient:
    """A player of another node, as this node's lobby sees them (a lobby ``Client``)."""

    __slots__ = ("conn", "origin", "_relay", "commands", "dropped", "idle")

    def __init__(self, conn: str, origin: str, relay: Relay) -> None:
        self.conn = conn
        self.origin = origin
        self._relay = relay
        self.commands: trio.MemorySendChannel[dict[str, Any]] | None = None
        self.dropped = False
        """Set when the player's connection dropped (no goodbye): their seat here
        is held for the reconnect grace, as for a local player."""
        self.idle = False
        """True while the guest's task, its join done, waits with nothing queued:
        its next ordinary command may go to the lobby straight from the inbox."""

    @property
    def client_id(self) -> Hashable:
        return ("relayed", self.conn)

    def send_event(self, event: str, payload: object) -> None:
        if event != "replaced":  # the player's own node says it, when it lets the socket go
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
        self._relay.shared_to_origin(self, event, key)

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
        *,
        users: UserRegistry | None = None,
        client_of: Callable[[str, str], Client | None] | None = None,
        identity: IdentityPolicy = IdentityPolicy(),
        room_of_user: Callable[[Any, str], int | None] | None = None,
    ) -> None:
        self.node_id = node_id
        self.prefix = prefix
        self.inbox = inbox_channel(prefix, node_id)
        self.timeout = timeout
        self._lobby = lobby
        self._socket_of = socket_of
        self._owner_of = owner_of
        self._room_of_code = room_of_code
        self._registry = users
        self._client_of = client_of
        self._identity = identity
        self._room_of_user = room_of_user
        self.outbox = Outbox()
        """What this node relays to others, waiting for Redis (the node's publisher
        writes it to their inbox streams)."""
        self._nursery: trio.Nursery | None = None
        self._inboxes: dict[str, str] = {}
        # --- this node's sockets seated elsewhere
        self._users: dict[SocketKey, dict[str, Any]] = {}
        self._seats: dict[SocketKey, _Seat] = {}
        self._by_conn: dict[str, SocketKey] = {}
        self._pending: dict[int, _Pending] = {}
        self._deadlines: list[tuple[float, int]] = []  # (trio time, request): a heap
        self._deadlines_changed = trio.Event()
        self._requests = itertools.count(1)
        self._conns = itertools.count(1)
        # --- other nodes' players seated here
        self._guests: dict[str, RelayedClient] = {}
        # --- statistics (tests read them)
        self.shared_received: dict[str, int] = {}
        """Shared-event messages received, by event name."""
        self.shared_delivered: dict[str, int] = {}
        """Sockets that received a shared event, by event name."""

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._expire_commands)
            task_status.started()
            await trio.sleep_forever()

    def _inbox(self, node: str) -> str:
        stream = self._inboxes.get(node)
        if stream is None:
            stream = self._inboxes[node] = inbox_channel(self.prefix, node)
        return stream

    def _publish(
        self, node: str, message: dict[str, Any], *, key: str | None = None, deadline: float | None = None
    ) -> bool:
        """Queue ``message`` for ``node`` (``key``: a newest-wins event's; ``deadline``:
        a command's). False when it could not be encoded or the outbox is full."""
        try:
            text = json.dumps(message, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            logger.error("relay: a %s message could not be encoded: %s", message.get("t"), exc)
            return False
        conn = message.get("conn") if key is not None else None
        return self.outbox.put(self._inbox(node), text, conn=conn, key=key, deadline=deadline)

    def _new_conn(self, what: str) -> str:
        return f"{self.node_id}|{what}|{next(self._conns)}"

    # --- the CommandRouter of this node's room app (the player's side) --------------

    def takes(self, socket: Socket, command: str, payload: dict[str, Any]) -> bool:
        key = (socket.namespace, socket.sid)
        if self._registry is not None and self._client_of is not None:
            # users across nodes (docs/cluster.md): the registry is asked first
            if command == "join_lobby" or (command == "create_room" and key not in self._users
                                           and payload.get("host") is not None):
                return True
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
        if command in ("join_lobby", "create_room") and self._registry is not None and self._nursery is not None:
            if command == "join_lobby" or key not in self._users:
                self._nursery.start_soon(self._claim_and_join, socket, command, payload, on_reply)
                return
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
        self._send(seat.node, seat.conn, self._users.get(key), command, payload, key, on_reply)

    def _send(
        self, node: str, conn: str, user: dict[str, Any] | None, command: str, payload: dict[str, Any],
        key: SocketKey | None, on_reply: Reply,
    ) -> None:
        """One command to ``node``'s inbox; ``on_reply`` gets its answer, or
        ``node_unavailable`` after the deadline."""
        request = next(self._requests)
        deadline = time.time() + self.timeout
        message = {
            "t": "cmd", "conn": conn, "from": self.node_id, "user": user, "req": request,
            "name": command, "payload": payload, "deadline": deadline,
        }
        pending = self._pending[request] = _Pending(key, command, on_reply, node)
        if self._nursery is None or not self._publish(node, message, deadline=deadline):
            self._pending.pop(request, None)
            self._fail(key, pending, "the relay to the room's node is not running")
            return
        due = trio.current_time() + self.timeout
        heapq.heappush(self._deadlines, (due, request))
        if self._deadlines[0][1] == request:  # the soonest now: the expiry task must know
            self._deadlines_changed.set()

    async def _ask(
        self, node: str, conn: str, user: dict[str, Any], command: str, payload: dict[str, Any],
        key: SocketKey | None,
    ) -> dict[str, Any]:
        done = trio.Event()
        answer: list[dict[str, Any]] = []

        def on_reply(reply: dict[str, Any]) -> None:
            answer.append(reply)
            done.set()

        self._send(node, conn, user, command, payload, key, on_reply)
        await done.wait()
        return answer[0]

    async def _expire_commands(self) -> None:
        """Answers ``node_unavailable`` to each command whose deadline passed
        unanswered: one task for all the commands in flight, woken at the soonest
        deadline (or when a sooner one is pushed). Answered commands' entries are
        skipped when they come due."""
        heap = self._deadlines
        while True:
            now = trio.current_time()
            while heap and heap[0][0] <= now:
                _, request = heapq.heappop(heap)
                pending = self._pending.pop(request, None)
                if pending is not None:
                    self._fail(pending.key, pending, f"node {pending.node} did not answer within {self.timeout:g} s")
            self._deadlines_changed = trio.Event()
            with trio.move_on_at(heap[0][0] if heap else math.inf):
                await self._deadlines_changed.wait()

    def _fail(self, key: SocketKey | None, pending: _Pending, why: str) -> None:
        seat = self._seats.get(key) if key is not None else None
        if key is not None and seat is not None and not seat.joined and pending.command == "join_room":
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
                self._learn(key, command, reply)
            on_reply(reply)

        return observed

    def _learn(self, key: SocketKey, command: str, reply: dict[str, Any]) -> None:
        """Who a socket speaks for, from the lobby's successful acks."""
        if command == "join_lobby" and isinstance(reply.get("user"), dict):
            self._users[key] = reply["user"]
        elif command == "create_room" and key not in self._users:
            host = reply.get("room", {}).get("host")
            if isinstance(host, dict):
                self._users[key] = {k: host.get(k) for k in ("id", "username", "auth_level")}
        elif command == "leave_lobby":
            self._users.pop(key, None)

    # --- users across nodes: join_lobby (and create_room {host}) -----------------------

    def _identity_of(self, command: str, payload: dict[str, Any]) -> tuple[dict[str, Any], str | None] | None:
        """The user a join claims (as a relayed claim) and its token; None when the
        payload is the lobby's to refuse (invalid, unauthenticated...)."""
        if command == "create_room":
            if self._identity.signed:
                return None  # signed: an anonymous create_room is unauthenticated
            host = payload.get("host")
            request: object = REGISTRY["join_lobby"].request(host if isinstance(host, dict) else None)
        else:
            request = REGISTRY["join_lobby"].request(payload)
        if not isinstance(request, JoinLobbyRequest):
            return None  # invalid_payload: refused by the lobby, in protocol.md's order
        if self._identity.signed:
            if request.credential is None:
                return None
            try:
                user = self._identity.verify(request.credential)
            except ProtocolError:
                return None
            return {"id": user.id, "username": user.username, "auth_level": user.auth_level}, None
        if request.credential is not None or request.claim is None:
            return None
        claim = request.claim
        found: dict[str, Any] = {"id": claim.id}
        if claim.has_username:
            found["username"] = claim.username
        if claim.has_auth_level:
            found["auth_level"] = claim.auth_level
        return found, claim.token

    async def _claim_and_join(self, socket: Socket, command: str, payload: dict[str, Any], on_reply: Reply) -> None:
        """A join on this node: ask the registry where the user lives, then join
        here (taking the seat over from another node when the registry vouched).
        ``on_reply`` is called exactly once, whatever fails."""
        replied = False

        def reply_once(reply: dict[str, Any]) -> None:
            nonlocal replied
            if not replied:
                replied = True
                on_reply(reply)

        try:
            await self._join_user(socket, command, payload, reply_once)
        except Exception:  # one join's failure must not stop this node
            logger.exception("relay: %s of socket %s failed", command, socket.sid)
            reply_once(_error("internal", f"{command} failed on this server; try again"))

    async def _join_user(self, socket: Socket, command: str, payload: dict[str, Any], on_reply: Reply) -> None:
        assert self._registry is not None and self._client_of is not None
        key = (socket.namespace, socket.sid)
        client = self._client_of(*key)
        if client is None:
            on_reply(_error("not_in_lobby", "this connection has gone"))
            return
        found = self._identity_of(command, payload)
        current = self._users.get(key)
        claim: Claim | None = None
        if found is not None and (current is None or current.get("id") == found[0]["id"]):
            claim = await self._registry.claim(
                found[0]["id"], found[1], signed=self._identity.signed, move=command == "join_lobby"
            )
        if claim is None:  # nothing to check, or Redis did not answer: this node alone decides
            reply = await self._local(client, command, payload, None)
            if reply.get("ok"):
                self._learn(key, command, reply)
                if found is not None:
                    self._registry.set(found[0]["id"], self._seat_node(key), reply.get("token"), self._users.get(key))
            on_reply(reply)
            return
        user, _ = found  # type: ignore[misc]
        user_id = user["id"]
        if claim.user is not None and claim.user.get("id") == user_id:
            # what the user's home knew of them; what this join sends replaces it
            user = {**{k: claim.user.get(k) for k in ("username", "auth_level")}, **user}
        seated_elsewhere = claim.seat not in ("", self.node_id) and claim.seat_alive
        if command == "create_room" and claim.vouched and (claim.kind == "moved" or seated_elsewhere):
            await self._create_held(key, client, payload, claim, user, found[1], on_reply)  # type: ignore[index]
            return
        if claim.kind == "taken" or (command == "create_room" and (claim.kind == "moved" or seated_elsewhere)):
            given = "a token that is not this seat's" if found[1] is not None else "no token"  # type: ignore[index]
            on_reply(_error(
                "identity_taken",
                f"user {user_id!r} is signed in on another server node (or coming back to their seat there) "
                f"and this {command} carries {given}; to take the seat over, send join_lobby with the token "
                "from that user's last join_lobby ack (a reload or a second tab keeps it), or use another id",
            ))
            return
        attach = claim.seat if seated_elsewhere else None
        if key in self._seats or (claim.kind == "local" and not claim.vouched):
            attach = None  # seated elsewhere already, or the lobby here checks the token first
        if attach is not None:
            await self._attach(key, attach, user)  # the seat node takes the seat over first
        vouched = claim.kind == "moved"
        reply = await self._local(client, command, payload, user if vouched else None)
        if not reply.get("ok"):
            seat = self._seats.get(key)
            if seat is not None and attach is not None:
                self._end(key, tell_owner=True, dropped=True)  # the seat there stays held for the grace
            if claim.kind in ("free", "moved"):
                self._registry.user_gone(user_id)
            on_reply(reply)
            return
        self._learn(key, command, reply)
        seat = self._seats.get(key)
        if command == "join_lobby" and seat is not None and seat.joined:
            reply = {**reply, "room": seat.room_id}
        self._registry.set(user_id, self._seat_node(key), reply.get("token"), self._users.get(key))
        if claim.kind == "moved":
            old = claim.home
            if old not in ("", self.node_id, attach) and claim.home_alive:
                # before the ack, as one server does it: from the ack on, the old
                # connection speaks for nobody (it got ``replaced``)
                await self._release(old, user)
        on_reply(reply)

    async def _create_held(
        self, key: SocketKey, client: Client, payload: dict[str, Any], claim: Claim, user: dict[str, Any],
        token: str | None, on_reply: Reply,
    ) -> None:
        """``create_room {host}`` with the seat's token for a user held on another node
        (race.md: ``host`` may carry ``token``), as one server answers it: the user
        sits in a room (on any node): ``already_in_room``, and nothing changes; else
        the user moves here (the old home lets them go, its socket gets
        ``replaced``) and the room is created, its ack carrying the new token."""
        user_id = user["id"]
        seat_node = claim.seat if claim.seat not in ("", claim.home) and claim.seat_alive else None
        looked_up: str | None = seat_node
        if seat_node is None and claim.home not in ("", self.node_id) and claim.home_alive:
            looked_up = claim.home  # the user may sit in a room of their home
        room = self._room_of_user(user_id, looked_up) if looked_up and self._room_of_user else None
        if seat_node is not None or room is not None:
            where = f"room {room}" if room is not None else "a room"
            on_reply(_error(
                "already_in_room",
                f"you sit in {where}; leave it before creating a room (to act from this connection, "
                "send join_lobby with your token first: it takes your seat over here)",
            ))
            return
        joined = await self._local(client, "join_lobby", {}, user)
        if not joined.get("ok"):
            on_reply(joined)
            return
        created = await self._lobby.command(client, "create_room", payload)
        if created.get("ok") and claim.kind == "moved" and self._registry is not None:
            moved = await self._registry.claim(user_id, token, signed=False, move=True)
            if moved is not None and moved.kind == "taken":  # the other node issued a new token meanwhile
                created = _error("identity_taken", f"user {user_id!r} signed in again on another server node "
                                 "as this create_room arrived; send join_lobby with the newest token")
        if not created.get("ok"):
            await self._lobby.command(client, "leave_lobby", {"id": user_id})  # nothing changes, as on one server
            on_reply(created)
            return
        self._learn(key, "create_room", created)
        reply = {**created, "token": joined.get("token")}
        if self._registry is not None:
            self._registry.set(user_id, self.node_id, reply["token"], self._users.get(key))
        if claim.home not in ("", self.node_id) and claim.home_alive:
            await self._release(claim.home, user)  # before the ack, as for join_lobby
        on_reply(reply)

    def _seat_node(self, key: SocketKey) -> str:
        seat = self._seats.get(key)
        return seat.node if seat is not None and seat.joined else self.node_id

    async def _local(
        self, client: Client, command: str, payload: dict[str, Any], vouched: dict[str, Any] | None
    ) -> dict[str, Any]:
        """The command in this node's lobby (a vouched join_lobby: taken over without a token)."""
        if vouched is not None:
            request = REGISTRY["join_lobby"].request({k: v for k, v in vouched.items() if v is not None})
            if isinstance(request, JoinLobbyRequest):
                return await self._lobby.join_vouched(client, request)
        return await self._lobby.command(client, command, payload)

    async def _attach(self, key: SocketKey, node: str, user: dict[str, Any]) -> None:
        """The user's room seat is on ``node``: a vouched join_lobby there (from a new
        relayed connection) takes it over (``racestate`` follows during a race)."""
        conn = self._new_conn("seat")
        seat = self._seats[key] = _Seat(node, 0, conn)
        self._by_conn[conn] = key
        reply = await self._ask(node, conn, user, "join_lobby", {}, key)
        if self._seats.get(key) is not seat:
            return  # the socket went meanwhile
        room = reply.get("room")
        if reply.get("ok") and isinstance(room, int) and not isinstance(room, bool):
            seat.room_id = room
            seat.joined = True
        else:
            self._end(key, tell_owner=True)  # no seat there (any more): the guest leaves

    async def _release(self, node: str, user: dict[str, Any]) -> None:
        """The user's old home lets them go: a vouched join there takes them over
        (their socket there gets ``replaced``), then the relayed client leaves."""
        conn = self._new_conn("release")
        await self._ask(node, conn, user, "join_lobby", {}, None)
        self._publish(node, {"t": "close", "conn": conn})

    def disconnected(self, socket: Socket) -> None:
        key = (socket.namespace, socket.sid)
        self._users.pop(key, None)
        dropped = socket.dropped and not socket.legacy
        self._end(key, tell_owner=True, dropped=dropped)

    def _end(self, key: SocketKey, *, tell_owner: bool, dropped: bool = False) -> None:
        seat = self._seats.pop(key, None)
        if seat is None:
            return
        self._by_conn.pop(seat.conn, None)
        if tell_owner:
            message: dict[str, Any] = {"t": "close", "conn": seat.conn}
            if dropped:
                message["dropped"] = True
            self._publish(seat.node, message)
        user = self._users.get(key)
        if not dropped and seat.joined and user is not None and self._registry is not None:
            self._registry.seat(user["id"], self.node_id)

    def nodes_alive(self, nodes: frozenset[str]) -> None:
        """From the liveness check: seats on dead nodes end (``node_lost``); players
        of dead nodes seated here count as dropped (held for the reconnect grace:
        they may come back on another node)."""
        for key, seat in list(self._seats.items()):
            if seat.node not in nodes:
                self._end(key, tell_owner=False)
                socket = self._socket_of(*key)
                if socket is not None and seat.joined:
                    socket.emit("roomclosed", {"id": seat.room_id, "reason": "node_lost"})
                logger.info("room %d on node %s is lost (the node died)", seat.room_id, seat.node)
        for conn, guest in list(self._guests.items()):
            if guest.origin not in nodes:
                self._close_guest(conn, dropped=True)

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
        elif kind == "shared":
            self._on_shared(message)
        elif kind == "event":
            self._on_event(message)
        elif kind == "detach":
            key = self._by_conn.get(message.get("conn"))
            if key is not None:
                # replaced: the user took their seat over on another node, which tells
                # this node (its old home) to let the socket go; the seat stays theirs
                self._end(key, tell_owner=False, dropped=message.get("reason") == DETACH_REPLACED)
        elif kind == "cmd":
            self._on_command(message)
        elif kind == "close":
            self._close_guest(message.get("conn"), dropped=message.get("dropped") is True)

    def _on_reply(self, message: dict[str, Any]) -> None:
        pending = self._pending.pop(message.get("req"), None)  # type: ignore[arg-type]
        if pending is None:
            return  # answered with node_unavailable already
        reply = message.get("reply")
        if not isinstance(reply, dict):
            reply = _error("internal", "the room's node sent a malformed answer")
        seat = self._seats.get(pending.key) if pending.key is not None else None
        if seat is not None and pending.key is not None:
            if pending.command == "join_room":
                if reply.get("ok"):
                    seat.joined = True
                    user = self._users.get(pending.key)
                    if self._registry is not None and user is not None:
                        self._registry.seat(user["id"], seat.node)
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

    def _on_shared(self, message: dict[str, Any]) -> None:
        """One event for several of this node's players: its frame is encoded once
        per namespace, as a room's own members get it."""
        event, conns, replace_key = message.get("event"), message.get("conns"), message.get("key")
        if not isinstance(event, str) or not isinstance(conns, list):
            return
        self.shared_received[event] = self.shared_received.get(event, 0) + 1
        key = replace_key if isinstance(replace_key, str) else None
        payload = message.get("payload")
        encoded: dict[str, EncodedEvent] = {}
        for conn in conns:
            socket_key = self._by_conn.get(conn) if isinstance(conn, str) else None
            if socket_key is None:
                continue
            socket = self._socket_of(*socket_key)
            if socket is not None:
                frame = encoded.get(socket.namespace)
                if frame is None:
                    try:
                        frame = encoded[socket.namespace] = encode_event(event, payload, namespace=socket.namespace)
                    except ValueError:
                        logger.warning("relay: skipped a shared event with a reserved name %r", event)
                        return
                socket.send_encoded(frame, replace_key=key)
                self.shared_delivered[event] = self.shared_delivered.get(event, 0) + 1
            if event in ("roomclosed", "kicked"):
                self._end(socket_key, tell_owner=True)  # back in the lobby: of this node

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
        elif guest.idle and message.get("name") not in _IN_ORDER_TASK and self._submit_now(guest, message):
            return
        assert guest.commands is not None
        guest.idle = False  # what comes next waits behind this one
        try:
            guest.commands.send_nowait(message)
        except (trio.WouldBlock, trio.ClosedResourceError):
            logger.warning("relay: too many commands queued for %s; one dropped", conn)

    def _submit_now(self, guest: RelayedClient, message: dict[str, Any]) -> bool:
        """An ordinary command of a guest whose task is idle goes to the lobby from
        here, its reply published from the lobby's task: two task switches fewer
        than through the guest's task, and in the same order (the lobby's mailbox
        is first in, first out). False when the lobby's mailbox is full."""
        request = message.get("req")
        if time.time() > float(message.get("deadline", 0)):
            return True  # its node answered node_unavailable already: changes nothing

        def on_reply(reply: dict[str, Any]) -> None:
            self._publish(guest.origin, {"t": "reply", "conn": guest.conn, "req": request, "reply": reply})

        try:
            return self._lobby.submit_nowait(guest, str(message.get("name")), message.get("payload"), on_reply)
        except ValueError:
            on_reply(_error("invalid_payload", "unknown command"))
            return True

    async def _serve_guest(self, guest: RelayedClient, commands: trio.MemoryReceiveChannel[dict[str, Any]]) -> None:
        """One guest's commands, in order; it joins this lobby with its first.

        The guest's identity was checked by its own node (and the cluster's user
        registry), so it joins vouched: it takes the user's seat here over, if any
        (a player coming back through another node), and needs no credential."""
        joined = False
        try:
            await self._lobby.connect(guest)
        except ActorStopped:
            return  # shutting down
        try:
            async with commands:
                while True:
                    if commands.statistics().current_buffer_used == 0:
                        guest.idle = joined  # the next ordinary command may skip this task
                    try:
                        message = await commands.receive()
                    except trio.EndOfChannel:
                        break
                    guest.idle = False
                    if time.time() > float(message.get("deadline", 0)):
                        continue  # its node answered node_unavailable already: changes nothing
                    name = str(message.get("name"))
                    if not joined or name == "join_lobby":
                        reply = await self._join_guest(guest, message.get("user"))
                        joined = joined or bool(reply.get("ok"))
                        if name == "join_lobby":
                            reply.pop("token", None)  # this node's token means nothing there
                    if joined and name != "join_lobby":
                        try:
                            reply = await self._lobby.command(guest, name, message.get("payload"))
                        except ValueError:
                            reply = _error("invalid_payload", "unknown command")
                        if name == "join_room" and reply.get("ok") and self._registry is not None:
                            user = message.get("user")
                            if isinstance(user, dict) and user.get("id") is not None:
                                await self._registry.seated_here(user["id"], guest.origin)
                    self._publish(guest.origin, {"t": "reply", "conn": guest.conn, "req": message.get("req"),
                                                 "reply": reply})
        except Exception:  # one guest's failure must not stop this node
            logger.exception("relay: serving %s failed; it leaves", guest.conn)
            self._guests.pop(guest.conn, None)
        finally:
            guest.idle = False
            with trio.CancelScope(shield=True):
                await self._lobby.disconnect(guest, dropped=guest.dropped)

    async def _join_guest(self, guest: RelayedClient, user: object) -> dict[str, Any]:
        raw = user if isinstance(user, dict) else {}
        claim = {k: raw.get(k) for k in ("id", "username", "auth_level") if raw.get(k) is not None}
        request = REGISTRY["join_lobby"].request(claim)
        if not isinstance(request, JoinLobbyRequest):
            return _error("invalid_payload", "the player's node sent a malformed user")
        return dict(await self._lobby.join_vouched(guest, request))

    def _close_guest(self, conn: object, *, dropped: bool = False) -> None:
        guest = self._guests.pop(conn, None) if isinstance(conn, str) else None
        if guest is not None and guest.commands is not None:
            guest.dropped = dropped
            guest.commands.close()  # its task disconnects it from the lobby

    def to_origin(self, guest: RelayedClient, event: str, payload: object, key: str | None) -> None:
        if self._guests.get(guest.conn) is guest:
            self._publish(guest.origin, {"t": "event", "conn": guest.conn, "event": event, "payload": payload,
                                         "key": key}, key=key)

    def shared_to_origin(self, guest: RelayedClient, event: SharedEvent, key: str | None) -> None:
        """A shared event for ``guest``: joins the message that carries the same
        event to the guest's node, if it is that node's newest (the room hands the
        event to its members one after the other), its payload encoded once."""
        if self._guests.get(guest.conn) is not guest:
            return
        try:
            payload = event.encoded(("relay-json",), _payload_json)
        except (TypeError, ValueError) as exc:
            logger.error("relay: a %s event could not be encoded: %s", event.name, exc)
            return
        self.outbox.put_shared(self._inbox(guest.origin), event, event.name, key, guest.conn, payload)

    def detached(self, guest: RelayedClient, reason: str) -> None:
        if self._guests.get(guest.conn) is guest:
            self._publish(guest.origin, {"t": "detach", "conn": guest.conn, "reason": reason})
            self._close_guest(guest.conn)
