"""The lobby actor: users, the room directory, and every connected client.

The lobby is the single place that knows who is where, so every command runs
here, one at a time, and the invariants (a user sits in at most one room, every
room has its host, every client's last list equals the directory) hold between
any two messages. Rooms are asked only for what they own (capacity, players).
A command is checked completely before anything changes: a failed command
changes nothing (protocol.md), except when a room crashes under it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Hashable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final, cast

import trio

from .client import DETACH_FLOODING, DETACH_REPLACED, Client, SharedEvent
from .clock import ServerClock
from .commands import (
    COMMANDS,
    CommandSpec,
    JoinLobbyRequest,
    JoinRoomRequest,
    LeaveLobbyRequest,
    LeaveRoomRequest,
    RoomRequest,
    TimeSyncRequest,
    UnwatchRoomsRequest,
    WatchRoomsRequest,
)
from .feed import LobbyFeed
from .identity import IdentityPolicy, new_seat_token, token_matches
from .limits import LobbySnapshot, LobbyStatistics, RoomLimits
from .mailbox import ActorRef, ActorStopped, Forward, Mailbox, open_mailbox
from .messages import (
    AttachDirectory,
    CloseRoom,
    Command,
    CommandDone,
    Connect,
    Describe,
    Disconnect,
    Inspect,
    JoinRoom,
    LeaveRoom,
    LobbyMessage,
    RemoteRoomsChanged,
    Reseat,
    RoomChanged,
    RoomCommand,
    RoomCrashed,
    RoomDirectoryView,
    RoomMessage,
    Shutdown,
    Tick,
    UpdateUser,
    UserRegistryView,
)
from .records import RoomSummary, User, UserId
from .room import run_room
from .routes import DIRECT_COMMANDS, CommandBucket, RoomRoute, RoutedClient
from .seats import GraceTimers
from .validation import CreateRoomRequest, ProtocolError, UserClaim

logger = logging.getLogger(__name__)

__all__ = ["COMMANDS", "LobbyActor", "run_lobby"]

OK: Final = {"ok": True}


@dataclass
class _Connection:
    """A connected client and whom it speaks for (None: anonymous, a watcher)."""

    client: Client
    bucket: CommandBucket
    """Its rate limit, shared with its direct line to a room (see routes.py)."""
    user_id: UserId | None = None
    #: ``rate_limited`` answers in the flood window that began at ``strikes_since``.
    strikes: int = 0
    strikes_since: float = 0.0


@dataclass
class _UserState:
    user: User
    client_id: Hashable | None
    """The connection speaking for the user; None while the seat is held."""
    room_id: int | None = None  # None: in the lobby
    token: str | None = field(default=None, repr=False)
    """The seat token of the last join (open identity); never logged."""
    held_until: float | None = None
    """While the connection is gone: the trio time the reconnect grace ends."""


@dataclass
class _RoomEntry:
    summary: RoomSummary
    ref: ActorRef[RoomMessage]


class LobbyActor:
    """The lobby's state and handler; only the lobby's task calls ``handle``."""

    def __init__(
        self,
        limits: RoomLimits,
        self_ref: ActorRef[LobbyMessage],
        room_nursery: trio.Nursery,
        mailbox: Mailbox[LobbyMessage],
        clock: ServerClock | None = None,
        batch_scope: Callable[[], AbstractContextManager[object]] | None = None,
        identity: IdentityPolicy = IdentityPolicy(),
    ) -> None:
        self._limits = limits
        self._identity = identity
        #: Deadlines of the seats held for dropped connections (race.md).
        self._held = GraceTimers()
        self._clock = clock if clock is not None else ServerClock.start()
        self._batch_scope = batch_scope
        self._self_ref = self_ref
        self._room_nursery = room_nursery
        self._mailbox = mailbox
        self._clients: dict[Hashable, _Connection] = {}
        self._users: dict[UserId, _UserState] = {}
        self._rooms: dict[int, _RoomEntry] = {}  # insertion order == creation order
        self._next_room_id = limits.first_room_id
        #: A cluster node's view of the other nodes' rooms (docs/cluster.md), or None.
        self._cluster: RoomDirectoryView | None = None
        #: A cluster node's user registry, told when a user leaves this lobby.
        self._user_registry: UserRegistryView | None = None
        self._reported_stamp = -1
        #: Lists, the feed, codes and roomupdated (see feed.py).
        self._feed = LobbyFeed(limits)
        #: When the deferred room list is due; the alarm task sends ``Tick`` then.
        self.alarm_at = math.inf
        self.alarm_changed: Callable[[], None] = lambda: None
        # The lobby's own commands (the registry says which are the lobby's).
        self._commands: dict[str, Callable[[_Connection, Any], Any]] = {
            "join_lobby": self._join_lobby,
            "leave_lobby": self._leave_lobby,
            "create_room": self._create_room,
            "join_room": self._join_room,
            "leave_room": self._leave_room,
            "time_sync": self._time_sync,
            "watch_rooms": self._watch_rooms,
            "unwatch_rooms": self._unwatch_rooms,
        }

    # --- read-only views (sizes only; safe to call from any task) ------------

    def statistics(self) -> LobbyStatistics:
        return LobbyStatistics(clients=len(self._clients), users=len(self._users), rooms=len(self._rooms))

    def _snapshot(self) -> LobbySnapshot:
        self.after_batch()  # mid-batch, the list must first catch up with the state
        return LobbySnapshot(
            places={uid: state.room_id for uid, state in self._users.items()},
            connections={cid: conn.user_id for cid, conn in self._clients.items()},
            held={uid: state.held_until for uid, state in self._users.items() if state.held_until is not None},
            rooms=self._feed.room_list,
        )

    # --- the message loop ---------------------------------------------------

    async def handle(self, message: LobbyMessage) -> Any:
        await self._end_graces(trio.current_time())  # exact: before anything that comes later
        match message:
            case Command(client, spec, request, prepaid):
                return await self._command(client, spec, request, prepaid)
            case RoomChanged(room_id):
                if room_id in self._rooms:
                    try:
                        await self._ask_room(room_id, Describe())
                    except ProtocolError:
                        pass  # it crashed meanwhile and is closed
            case Connect(client):
                self._connect(client)
            case Disconnect(client, dropped):
                await self._disconnect(client, dropped)
            case RoomCrashed(room_id):
                await self._close_room(room_id, "crashed")
            case Inspect():
                return self._snapshot()
            case Tick():
                pass  # after_batch publishes what is due
            case AttachDirectory(directory, users):
                self._cluster = directory
                self._user_registry = users
                self._feed.codes.taken_elsewhere = directory.code_taken  # codes unique across nodes
            case RemoteRoomsChanged():
                self._merge_remote_rooms()
            case Shutdown():
                for room_id in list(self._rooms):
                    await self._close_room(room_id, "shutdown")
                self._mailbox.stop()
            case _:
                raise TypeError(f"the lobby got an unknown message {type(message).__name__}")
        return None

    def after_batch(self) -> None:
        """What a batch of messages changed goes out as one list (see ``Mailbox.serve``):
        ``roomupdated`` to the members of changed rooms, feed frames, then the list
        (at once while small, or when due: ``RoomLimits.large_list_interval``); the
        alarm is set for that, or for the soonest end of a held seat's grace."""
        if self._cluster is not None and self._feed.directory.stamp != self._reported_stamp:
            self._reported_stamp = self._feed.directory.stamp  # the other nodes learn of our rooms
            listings = (self._feed.directory.listing(room_id) for room_id in self._rooms)
            self._cluster.report(tuple(x for x in listings if x is not None))
        due = self._feed.publish(trio.current_time(), self._members_of)
        # one alarm for both: the deferred list, and the soonest end of a grace
        alarm_at = min(math.inf if due is None else due, self._held.next_deadline())
        if alarm_at != self.alarm_at:
            self.alarm_at = alarm_at
            self.alarm_changed()

    def _merge_remote_rooms(self) -> None:
        """Other nodes' rooms join (or leave) our lists and feeds like our own
        listed rooms; they have no members here, and their ids are not ours."""
        assert self._cluster is not None
        directory = self._feed.directory
        for room_id, summary, code in self._cluster.take_remote():
            if room_id in self._rooms:
                continue  # never let a remote entry shadow a room of ours
            if summary is None:
                directory.drop(room_id)
            else:
                directory.put(summary, code=code, listed=True)

    def _members_of(self, summary: RoomSummary) -> Iterator[Client]:
        for seated in (summary.host, *summary.players):
            state = self._users.get(seated.id)
            if state is None or state.room_id != summary.id:
                continue
            conn = self._clients.get(state.client_id)
            if conn is not None:
                yield conn.client

    def close(self) -> None:
        """When the lobby stops: end every room (their mailboxes see EndOfChannel)."""
        for entry in self._rooms.values():
            entry.ref.close()
        self._rooms.clear()
        self._self_ref.close()

    # --- connections ----------------------------------------------------------

    def _connect(self, client: Client) -> None:
        if client.client_id in self._clients:
            logger.warning("client %r connected twice; keeping the first registration", client.client_id)
            return
        self._clients[client.client_id] = _Connection(
            client, CommandBucket(self._limits.command_rate, self._limits.command_burst, trio.current_time())
        )
        self._feed.connect(client)

    async def _disconnect(self, client: Client, dropped: bool = False) -> None:
        conn = self._clients.get(client.client_id)
        if conn is None or conn.client is not client:
            return  # never connected, or already replaced and detached
        if conn.user_id is not None:
            if dropped and self._limits.reconnect_grace > 0:
                await self._hold(conn)
            else:
                await self._remove_user(conn, host_reason="host_disconnected")
        del self._clients[client.client_id]
        self._feed.disconnect(client)

    # --- commands -------------------------------------------------------------

    async def _command(
        self, client: Client, spec: CommandSpec[Any], request: object, prepaid: bool = False
    ) -> dict[str, Any] | Forward:
        name = spec.name
        handler = self._commands.get(name)  # None for the rooms' commands
        if handler is None and spec.handled_by != "room":
            # a registry entry without a lobby handler: our bug; refuse, don't crash the lobby
            logger.error("unknown command %r from %r", name, client.client_id)
            return ProtocolError("internal", f"unknown command {name!r}").to_ack()
        conn = self._clients.get(client.client_id)
        try:
            if conn is None or conn.client is not client:
                raise ProtocolError(
                    "not_in_lobby", "this connection is not connected to the lobby (it was replaced or has left)"
                )
            if not prepaid and not self._take_token(conn):
                await self._refuse_rate_limited(conn)
            if isinstance(request, ProtocolError):
                raise request  # invalid_payload, found by the spec in the sender's task
            if not spec.anonymous and conn.user_id is None:
                raise ProtocolError(
                    "not_in_lobby", f"this connection has not joined the lobby: send join_lobby first, then {name}"
                )
            if handler is None:
                return await self._room_command(conn, spec, cast(RoomRequest, request))
            reply: dict[str, Any] = await handler(conn, request)
            return reply
        except ProtocolError as error:
            logger.debug("%s from %r refused: %s", name, client.client_id, error, extra={"client_id": client.client_id})
            return error.to_ack()

    def _take_token(self, conn: _Connection) -> bool:
        """Take one command's token from the connection's bucket; False when empty."""
        return conn.bucket.take(trio.current_time())

    async def _refuse_rate_limited(self, conn: _Connection) -> None:
        """Answer ``rate_limited``; a connection that keeps flooding is expelled.

        A client in a loop (a bug, or a student's script) would otherwise keep
        the lobby busy answering it forever: counting its refusals per window
        and dropping it bounds what one connection can cost.
        """
        rate = self._limits.command_rate
        limit = self._limits.flood_limit
        now = trio.current_time()
        if now - conn.strikes_since >= self._limits.flood_window:
            conn.strikes, conn.strikes_since = 0, now
        conn.strikes += 1
        if limit is not None and conn.strikes > limit:
            await self._expel(conn, DETACH_FLOODING)
            raise ProtocolError(
                "rate_limited",
                f"this connection kept sending more than {rate:g} commands per second; it is being closed",
            )
        raise ProtocolError(
            "rate_limited", f"too many commands from this connection; send at most {rate:g} per second"
        )

    async def _expel(self, conn: _Connection, reason: str) -> None:
        """Drop a connection as if it had disconnected, and tell it to go."""
        logger.info(
            "client %r expelled: %s", conn.client.client_id, reason,
            extra={"client_id": conn.client.client_id, "user_id": conn.user_id},
        )
        self._unroute(conn.client)
        if conn.user_id is not None:
            await self._remove_user(conn, host_reason="host_disconnected")
        if self._clients.get(conn.client.client_id) is conn:
            del self._clients[conn.client.client_id]
        self._feed.disconnect(conn.client)
        self._hand(conn.client, "detach", reason)

    async def _join_lobby(self, conn: _Connection, request: JoinLobbyRequest) -> dict[str, Any]:
        claim = self._claim_of(request)
        if conn.user_id is not None and conn.user_id != claim.id:
            raise ProtocolError(
                "identity_mismatch",
                f"this connection speaks for user {conn.user_id!r}; use another connection for user {claim.id!r}",
            )
        if not request.vouched:  # a cluster node checked a vouched identity itself
            self._check_held(conn, claim)
        newly_bound = conn.user_id is None
        state = await self._bind(conn, claim)
        self._feed.send_list(conn.client)  # a list that is due follows at the batch's end
        if newly_bound and state.room_id is not None:
            self._feed.mark_changed(state.room_id)  # a takeover or a return: this connection sees its room
        reply = {"ok": True, "user": state.user.to_json(), "room": state.room_id}
        if not self._identity.signed:
            reply["token"] = self._new_token(state)
        return reply

    def _claim_of(self, request: JoinLobbyRequest) -> UserClaim:
        """Who ``join_lobby`` names: the client's claim (open identity) or the
        verified credential's claims alone (signed identity); a vouched claim as it stands."""
        if request.vouched and request.claim is not None:
            return request.claim
        if request.credential is None and not self._identity.signed:
            assert request.claim is not None  # the parser requires id without a credential
            return request.claim
        if request.credential is None:
            raise ProtocolError(
                "unauthenticated",
                "this server takes signed identities: send join_lobby {credential} with the token "
                "your school's site gave you (sign in there again to get one)",
            )
        user = self._identity.verify(request.credential)
        return UserClaim(user.id, user.username, user.auth_level, has_username=True, has_auth_level=True)

    def _check_held(self, conn: _Connection, claim: UserClaim) -> None:
        """race.md, "Identity": a held id (connected elsewhere, or within its
        grace) is taken over only with its seat token, or by the same signed
        identity; else ``identity_taken``, and nothing changes."""
        state = self._users.get(claim.id)
        if state is None or state.client_id == conn.client.client_id or self._identity.signed:
            return
        if token_matches(claim.token, state.token):
            return
        where = "is coming back to their seat" if state.client_id is None else "is signed in on another connection"
        given = "a token that is not this seat's" if claim.token is not None else "no token"
        raise ProtocolError(
            "identity_taken",
            f"user {claim.id!r} {where} and this join_lobby carries {given}; to take the seat over, send the "
            "token from that user's last join_lobby ack (a reload or a second tab keeps it), or use another id",
        )

    def _new_token(self, state: _UserState) -> str:
        """A fresh seat token for ``state``; the previous one stops working."""
        state.token = new_seat_token()
        return state.token

    async def _leave_lobby(self, conn: _Connection, request: LeaveLobbyRequest) -> dict[str, Any]:
        user_id = request.id
        if conn.user_id is None:
            raise ProtocolError("not_in_lobby", "this connection has not joined the lobby (send join_lobby first)")
        if user_id != conn.user_id:
            raise ProtocolError(
                "forbidden", f"this connection speaks for user {conn.user_id!r}, not {user_id!r}"
            )
        await self._remove_user(conn, host_reason="host_left")
        return dict(OK)

    async def _create_room(self, conn: _Connection, request: CreateRoomRequest) -> dict[str, Any]:
        host = request.host
        if self._identity.signed:
            host = None  # race.md: with signed identity, create_room's host is ignored
            if conn.user_id is None:
                raise ProtocolError(
                    "unauthenticated",
                    "sign in first: send join_lobby {credential} with the token your school's site gave you",
                )
        if conn.user_id is None:
            if host is None:
                raise ProtocolError(
                    "not_in_lobby", "join the lobby first (join_lobby), or send create_room with a host"
                )
            user_id = host.id
            self._check_held(conn, host)
        else:
            if host is not None and host.id != conn.user_id:
                raise ProtocolError(
                    "identity_mismatch",
                    f"this connection speaks for user {conn.user_id!r}, but host names user {host.id!r}",
                )
            user_id = conn.user_id
        existing = self._users.get(user_id)
        if conn.user_id is None:
            assert host is not None
            creator = host.apply_to(existing.user if existing is not None else None)
        else:
            creator = self._users[user_id].user
        if not self._identity.may_create_rooms(creator):
            raise ProtocolError(
                "forbidden",
                "on this server only teachers and admins create rooms; ask your teacher for a room to join",
            )
        if existing is not None and existing.room_id is not None:
            raise ProtocolError(
                "already_in_room", f"you sit in room {existing.room_id}; leave it before creating a room"
            )
        if len(self._rooms) >= self._limits.max_rooms:
            raise ProtocolError(
                "too_many_rooms",
                f"the server holds its limit of {self._limits.max_rooms} rooms; join one or try again later",
            )
        # Every check passed: from here on the command takes effect.
        token: str | None = None
        if conn.user_id is None:
            assert host is not None
            state = await self._bind(conn, host)
            token = self._new_token(state)
        else:
            state = self._users[user_id]
        room_id = self._next_room_id
        self._next_room_id += 1
        ref: ActorRef[RoomMessage] = await self._room_nursery.start(
            partial(
                run_room,
                room_id,
                request.name,
                state.user,
                request.deck,
                self._limits.max_players,
                self._self_ref.clone(),
                self._limits.room_mailbox_size,
                host_client=conn.client,
                clock=self._clock,
                batch_scope=self._batch_scope,
            )
        )
        try:
            summary = await ref.ask(Describe())
        except ActorStopped:
            ref.close()
            raise ProtocolError("internal", f"room {room_id} failed as it was created; try again") from None
        self._rooms[room_id] = _RoomEntry(summary, ref)
        state.room_id = room_id
        listing = self._feed.create(summary, listed=request.listed)
        logger.info(
            "room %d %r created by user %r (%s)", room_id, request.name, state.user.id,
            "listed" if request.listed else "unlisted",
            extra={"room_id": room_id, "user_id": state.user.id},
        )
        reply = {"ok": True, "room": listing.json}
        if token is not None:
            reply["token"] = token  # it bound this connection, as join_lobby does
        return reply

    async def _join_room(self, conn: _Connection, request: JoinRoomRequest) -> dict[str, Any]:
        state = self._speaker(conn)
        if request.code is not None:
            found = self._feed.room_by_code(request.code)
            if found is None:
                raise ProtocolError("room_not_found", "no open room has that code; check the code and try again")
            room_id = found
            self._room(room_id, seated=room_id)  # whoever knows the code may see the room
        else:
            assert request.id is not None
            room_id = request.id
            self._room(room_id, seated=state.room_id)
        if state.room_id == room_id:
            return {"ok": True, "room": self._feed.room_json(room_id)}
        if state.room_id is not None:
            raise ProtocolError(
                "already_in_room", f"you sit in room {state.room_id}; leave it before joining room {room_id}"
            )
        await self._ask_room(room_id, JoinRoom(state.user, conn.client))
        state.room_id = room_id
        return {"ok": True, "room": self._feed.room_json(room_id)}

    async def _leave_room(self, conn: _Connection, request: LeaveRoomRequest) -> dict[str, Any]:
        room_id = request.id
        state = self._speaker(conn)
        entry = self._room(room_id, seated=state.room_id)
        if state.room_id != room_id:
            raise ProtocolError("not_in_room", f"you are not in room {room_id}")
        self._unroute(conn.client)
        if entry.summary.host.id == state.user.id:
            await self._close_room(room_id, "host_left")
        else:
            await self._ask_room(room_id, LeaveRoom(state.user.id))
            state.room_id = None
        return dict(OK)

    async def _time_sync(self, conn: _Connection, request: TimeSyncRequest) -> dict[str, Any]:
        return {"ok": True, "t0": request.t0, "server_ms": self._clock.ms()}

    async def _room_command(
        self, conn: _Connection, spec: CommandSpec[Any], request: RoomRequest
    ) -> dict[str, Any] | Forward:
        """A race command: checked here up to ``room_not_found``, then the room's.

        Commands that may change the list (``changes_room``) are asked, so the
        directory and the user's place follow at once; the others (``answer``,
        ``race_results``) are forwarded, and the room answers the client itself.
        """
        state = self._speaker(conn)
        room_id = request.id
        entry = self._room(room_id, seated=state.room_id)
        message = RoomCommand(state.user.id, request)
        if not spec.changes_room:
            if spec.name in DIRECT_COMMANDS and state.room_id == room_id and isinstance(conn.client, RoutedClient):
                # the player's next answers may go to the room directly (routes.py)
                route = RoomRoute(room_id, state.user.id, entry.ref, conn.bucket)
                self._hand(conn.client, "route_room", route)
            return Forward(entry.ref, message, _ack_of, partial(_room_failed, room_id))
        done = await self._ask_room(room_id, message)
        assert isinstance(done, CommandDone)
        if done.removed is not None:  # kicked: back to the lobby
            removed = self._users.get(done.removed)
            if removed is not None and removed.room_id == room_id:
                removed.room_id = None
                self._unroute_user(removed)
        return done.ack

    # --- helpers that check -----------------------------------------------------

    def _speaker(self, conn: _Connection) -> _UserState:
        if conn.user_id is None:
            raise ProtocolError("not_in_lobby", "this connection has not joined the lobby (send join_lobby first)")
        return self._users[conn.user_id]

    def _room(self, room_id: int, seated: int | None = None) -> _RoomEntry:
        """The room ``room_id``; an unlisted room exists only for its members
        (``seated``: the room the asking user sits in), so ids reveal nothing."""
        entry = self._rooms.get(room_id)
        if entry is None or (seated != room_id and not self._feed.listed(room_id)):
            raise ProtocolError("room_not_found", f"room {room_id} does not exist (it may have closed)")
        return entry

    async def _watch_rooms(self, conn: _Connection, request: WatchRoomsRequest) -> dict[str, Any]:
        return self._feed.watch(conn.client, request.filter, request.limit)

    async def _unwatch_rooms(self, conn: _Connection, request: UnwatchRoomsRequest) -> dict[str, Any]:
        return self._feed.unwatch(conn.client)

    # --- helpers that change things ------------------------------------------------

    async def _bind(self, conn: _Connection, claim: UserClaim) -> _UserState:
        """Make ``conn`` speak for the claimed user: new user, same user again, or takeover."""
        state = self._users.get(claim.id)
        user = claim.apply_to(state.user if state is not None else None)
        if state is None:
            state = self._users[claim.id] = _UserState(user, conn.client.client_id)
            conn.user_id = claim.id
            return state
        if state.client_id != conn.client.client_id:
            if state.client_id is None:
                logger.info("user %r came back to their seat (client %r)", state.user.id, conn.client.client_id)
            state.held_until = None  # its entry in the grace timers is skipped when due
            self._take_over(state, conn)
            if state.room_id is not None:
                await self._ask_room(state.room_id, Reseat(state.user.id, conn.client))
        if user != state.user:
            state.user = user
            if state.room_id is not None:
                await self._ask_room(state.room_id, UpdateUser(user))
        return state

    def _take_over(self, state: _UserState, conn: _Connection) -> None:
        old = self._clients.pop(state.client_id, None)
        state.client_id = conn.client.client_id
        conn.user_id = state.user.id
        if old is not None:
            old.user_id = None
            self._unroute(old.client)
            self._feed.disconnect(old.client)  # no more lists or frames for it
            reason = f"user {state.user.id!r} joined from another connection"
            self._hand(old.client, "send_event", "replaced", {"reason": reason})
            self._hand(old.client, "detach", DETACH_REPLACED)
            logger.info(
                "user %r taken over by client %r", state.user.id, conn.client.client_id,
                extra={"user_id": state.user.id, "client_id": conn.client.client_id},
            )

    async def _remove_user(self, conn: _Connection, host_reason: str) -> None:
        """The user leaves the lobby (and their room); the connection becomes anonymous."""
        assert conn.user_id is not None
        user_id, conn.user_id = conn.user_id, None
        await self._remove_state(user_id, host_reason)

    async def _remove_state(self, user_id: UserId, host_reason: str) -> None:
        """The user leaves their room (a host's closes for ``host_reason``) and the lobby."""
        state = self._users[user_id]
        self._unroute_user(state)
        if state.room_id is not None:
            entry = self._rooms[state.room_id]
            if entry.summary.host.id == state.user.id:
                await self._close_room(state.room_id, host_reason)
            else:
                try:
                    await self._ask_room(state.room_id, LeaveRoom(state.user.id))
                except ProtocolError:
                    pass  # the room crashed under us and is closed: the user is out of it anyway
        del self._users[user_id]
        if self._user_registry is not None:
            self._user_registry.user_gone(user_id)

    async def _hold(self, conn: _Connection) -> None:
        """The connection dropped: its user keeps their place for the reconnect
        grace, shown ``connected: false``; the connection becomes anonymous."""
        assert conn.user_id is not None
        state = self._users[conn.user_id]
        self._unroute(conn.client)
        conn.user_id = None
        grace = self._limits.reconnect_grace
        state.client_id = None
        state.held_until = trio.current_time() + grace
        self._held.hold(state.user.id, state.held_until)
        logger.info("user %r dropped; their seat is held for %g s", state.user.id, grace)
        if state.room_id is not None:
            try:
                await self._ask_room(state.room_id, Reseat(state.user.id, None))
            except ProtocolError:
                pass  # the room crashed under us and is closed: the user is in the lobby

    async def _end_graces(self, now: float) -> None:
        """Seats whose grace is over are given up: a player leaves their room
        (their results stay, ``left: true``), a host's room closes (``host_disconnected``)."""
        if self._held.next_deadline() > now:
            return
        for user_id, deadline in self._held.pop_due(now):
            if not self._still_held(user_id, deadline):
                continue  # came back, left, or dropped again later: a stale entry
            logger.info("user %r did not come back within the grace; their seat is given up", user_id)
            await self._remove_state(user_id, "host_disconnected")

    def _still_held(self, user_id: UserId, deadline: float) -> bool:
        state = self._users.get(user_id)
        return state is not None and state.client_id is None and state.held_until == deadline

    async def _ask_room(self, room_id: int, message: RoomMessage) -> Any:
        """Ask a room; record its new summary. A crash closes it (reason ``crashed``).

        The reply is the room's RoomSummary, or its CommandDone for a RoomCommand
        (an error ack in it is the client's answer, not raised here)."""
        entry = self._rooms[room_id]
        try:
            reply = await entry.ref.ask(message)
        except ActorStopped:
            await self._close_room(room_id, "crashed")
            raise ProtocolError("internal", f"room {room_id} failed and was closed; you are in the lobby") from None
        if isinstance(reply, ProtocolError):
            raise reply
        summary = reply.summary if isinstance(reply, CommandDone) else reply
        if summary is not None and summary != entry.summary:
            entry.summary = summary
            self._feed.update(summary)
        return reply

    async def _close_room(self, room_id: int, reason: str) -> None:
        """Disband a room: a running race ends first (``raceover`` with the same
        reason, host included); then players (and, when the server closed it,
        the host) get ``roomclosed``, before the list that no longer shows the room."""
        entry = self._rooms.pop(room_id, None)
        if entry is None:
            return  # already closed (a crash reported twice: by an ask and by the supervisor)
        if reason != "crashed":
            try:
                await entry.ref.ask(CloseRoom(reason))
            except ActorStopped:
                pass  # it crashed meanwhile: it can send nothing, roomclosed still goes out
        entry.ref.close()
        self._feed.close(room_id)
        summary = entry.summary
        tell_host = reason in ("shutdown", "crashed")
        closed = SharedEvent("roomclosed", {"id": room_id, "reason": reason})  # encoded once for all
        for seated in (summary.host, *summary.players):
            state = self._users.get(seated.id)
            if state is None or state.room_id != room_id:
                continue
            state.room_id = None
            self._unroute_user(state)
            if seated is summary.host and not tell_host:
                continue
            conn = self._clients.get(state.client_id)
            if conn is not None:
                self._hand(conn.client, "send_shared", closed)
        logger.info("room %d closed: %s", room_id, reason, extra={"room_id": room_id})

    def _unroute(self, client: Client) -> None:
        """The client's direct line to a room (routes.py) went stale: drop it.
        (The room checks every direct command anyway; this keeps it from trying.)"""
        if isinstance(client, RoutedClient):
            self._hand(client, "route_room", None)

    def _unroute_user(self, state: _UserState) -> None:
        conn = self._clients.get(state.client_id) if state.client_id is not None else None
        if conn is not None:
            self._unroute(conn.client)

    def _hand(self, client: Client, method: str, *args: object) -> None:
        """Call a client method; one client that raises must not stop the lobby."""
        try:
            getattr(client, method)(*args)
        except Exception:
            logger.exception("client %r raised in %s; ignored", client.client_id, method)


def _ack_of(done: CommandDone) -> dict[str, Any]:
    return done.ack


def _room_failed(room_id: int) -> dict[str, Any]:
    return ProtocolError("internal", f"room {room_id} failed and was closed; you are in the lobby").to_ack()


async def run_lobby(
    limits: RoomLimits,
    *,
    batch_scope: Callable[[], AbstractContextManager[object]] | None = None,
    identity: IdentityPolicy = IdentityPolicy(),
    task_status: trio.TaskStatus[tuple[ActorRef[LobbyMessage], LobbyActor]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the lobby until ``Shutdown`` (or every ref is closed).

    Rooms run in this task's nursery, started with ``nursery.start``; room
    supervision (see ``room.SUPERVISION``) keeps their crashes out of it.
    """
    ref: ActorRef[LobbyMessage]
    ref, mailbox = open_mailbox("lobby", limits.lobby_mailbox_size)
    async with trio.open_nursery() as room_nursery:
        actor = LobbyActor(limits, ref.clone(), room_nursery, mailbox, ServerClock.start(), batch_scope, identity)
        task_status.started((ref, actor))
        try:
            async with trio.open_nursery() as alarm_nursery:
                alarm_nursery.start_soon(_run_alarm, actor, ref.clone())
                await mailbox.serve(actor.handle, after_batch=actor.after_batch, batch_scope=batch_scope)
                alarm_nursery.cancel_scope.cancel()
        finally:
            actor.close()


async def _run_alarm(actor: LobbyActor, ref: ActorRef[LobbyMessage]) -> None:
    """Wake the lobby (``Tick``) when a deferred room list is due.

    The lobby sets ``alarm_at`` from its own task and calls ``alarm_changed``;
    this task only reads it, so the lobby's state stays the lobby's. After a
    ``Tick`` it waits for the lobby to re-arm, so a late lobby gets one, not many.
    """
    wake = trio.Event()

    def changed() -> None:
        wake.set()

    actor.alarm_changed = changed
    with ref:
        while True:
            wake = trio.Event()
            with trio.move_on_at(actor.alarm_at) as scope:
                await wake.wait()
            if scope.cancelled_caught:
                try:
                    await ref.tell(Tick())
                except ActorStopped:
                    return
                await wake.wait()
