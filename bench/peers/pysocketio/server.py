"""The room protocol (/work/shared/protocol.md) on python-socketio's AsyncServer
under aiohttp: a benchmark peer.

Why it exists: the benchmark compares roomactors with the reference stacks doing
the same work, so this server follows the same contract, check for check, as
``bench/peers/node/server.mjs`` does: namespaces ``/`` and ``/lobby`` share one
lobby; every command answers by ack or by ``rejected``; errors come in the
contract's order; ``updaterooms`` goes to every client on every change, after any
``roomclosed``; a second connection of a user takes over.

The lobby is plain synchronous code, so each command is atomic on the event loop.
What it sends is queued and sent by one task in order: with concurrent handler
tasks sending inline, an older room list could overtake a newer one.

    python server.py --port 0 [--host 127.0.0.1] [--max-players 50] [--max-rooms 10000]
                     [--command-rate 20] [--command-burst 40]    (rate 0: no limit)
                     [--ping-interval 25] [--ping-timeout 20] [--max-payload 1000000]
                     [--exit-on-stdin-close]   (for a parent that may die without a signal)

Prints the bound port on stdout as one line once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import socketio
from aiohttp import web
from socketio import packet

logger = logging.getLogger("pysocketio_peer")

NAMESPACES = ("/", "/lobby")
COMMANDS = frozenset({"join_lobby", "leave_lobby", "create_room", "join_room", "leave_room"})
MAX_ID_CHARS = 64
MAX_USER_TEXT_CHARS = 64
MAX_NAME_CHARS = 100
MAX_CARDS = 1000
OPTIONAL_DECK_FIELDS = ("id", "description", "user_id", "user_name", "created", "changed", "private")

ConnKey = tuple[str, str]  # (namespace, sid)


@dataclass(frozen=True)
class Limits:
    max_players: int = 50
    max_rooms: int = 10_000
    command_rate: float | None = 20.0
    command_burst: int = 40


class ProtocolError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def invalid(message: str) -> ProtocolError:
    return ProtocolError("invalid_payload", message)


# --- validation ------------------------------------------------------------------


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: object) -> bool:
    return _is_int(v) or (isinstance(v, float) and math.isfinite(v))


def require_object(payload: object, command: str) -> Mapping[str, Any]:
    if not isinstance(payload, dict):
        raise invalid(f"{command} takes one JSON object")
    return payload


def parse_user_id(value: object, where: str = "id") -> int | str:
    if _is_int(value):
        return value  # type: ignore[return-value]
    if isinstance(value, str):
        if not value:
            raise invalid(f"{where} must not be empty")
        if len(value) > MAX_ID_CHARS:
            raise invalid(f"{where} has more than {MAX_ID_CHARS} characters")
        return value
    raise invalid(f"{where} must be an integer or a string")


@dataclass(frozen=True)
class Claim:
    id: int | str
    fields: dict[str, str | None]  # only the profile fields the client sent


def parse_claim(raw: object, where: str = "") -> Claim:
    if not isinstance(raw, dict):
        raise invalid(f"{where or 'the payload '}must be an object")
    if "id" not in raw:
        raise invalid(f"{where}id is missing")
    user_id = parse_user_id(raw["id"], f"{where}id")
    fields: dict[str, str | None] = {}
    for key in ("username", "auth_level"):
        if key in raw:
            value = raw[key]
            if value is not None and not isinstance(value, str):
                raise invalid(f"{where}{key} must be a string or null")
            if isinstance(value, str) and len(value) > MAX_USER_TEXT_CHARS:
                raise invalid(f"{where}{key} has more than {MAX_USER_TEXT_CHARS} characters")
            fields[key] = value
    return Claim(user_id, fields)


def trimmed_name(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise invalid(f"{where} must be a string")
    name = value.strip()
    if not name:
        raise invalid(f"{where} must not be empty")
    if len(name) > MAX_NAME_CHARS:
        raise invalid(f"{where} has more than {MAX_NAME_CHARS} characters")
    return name


def parse_room_id(payload: object, command: str) -> int:
    raw = require_object(payload, command)
    if "id" not in raw:
        raise invalid(f"{command} needs the room id")
    value = raw["id"]
    if not _is_int(value) or value <= 0:
        raise invalid("a room id is a positive integer")
    return int(value)


def _scalar(value: object, where: str) -> object:
    if value is None or isinstance(value, (str, bool)) or _is_number(value):
        return value
    raise invalid(f"{where} must be a string, number, boolean or null")


def _card(raw: object, index: int) -> dict[str, Any]:
    where = f"deck card {index}"
    if not isinstance(raw, dict):
        raise invalid(f"{where} must be an object")
    if "id" not in raw:
        raise invalid(f"{where} has no id")
    if not (_is_int(raw["id"]) or isinstance(raw["id"], str)):
        raise invalid(f"{where}: id must be an integer or a string")
    if "problem" not in raw:
        raise invalid(f"{where} has no problem")
    if not (isinstance(raw["problem"], str) or _is_number(raw["problem"])):
        raise invalid(f"{where}: problem must be a string or a number")
    if "answer" in raw:
        answer = raw["answer"]
    elif "solution" in raw:
        answer = raw["solution"]
    else:
        raise invalid(f"{where} has no answer (or solution)")
    if not (isinstance(answer, str) or _is_number(answer)):
        raise invalid(f"{where}: answer must be a string or a number")
    return {"id": raw["id"], "problem": raw["problem"], "answer": answer}


def parse_deck(raw: object) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if not isinstance(raw, dict):
        raise invalid("deck must be an object")
    if "name" not in raw:
        raise invalid("deck.name is missing")
    name = trimmed_name(raw["name"], "deck.name")
    if "flashcards" in raw:
        cards_raw = raw["flashcards"]
    elif "flashcard" in raw:
        cards_raw = raw["flashcard"]
    else:
        raise invalid("deck has no cards (deck.flashcards)")
    if not isinstance(cards_raw, list):
        raise invalid("deck cards must be an array")
    if not 1 <= len(cards_raw) <= MAX_CARDS:
        raise invalid(f"a deck has 1 to {MAX_CARDS} cards")
    cards = [_card(card, i) for i, card in enumerate(cards_raw)]
    info: dict[str, Any] = {
        "id": None, "name": name, "description": None, "numProblems": len(cards), "user_id": None,
        "user_name": None, "created": None, "changed": None, "private": None,
    }  # fmt: skip
    for key in OPTIONAL_DECK_FIELDS:
        if key in raw:
            info[key] = _scalar(raw[key], f"deck.{key}")
    if raw.get("numProblems") is not None:
        if not _is_int(raw["numProblems"]) or raw["numProblems"] < 0:
            raise invalid("deck.numProblems must be a non-negative integer")
        info["numProblems"] = raw["numProblems"]
    return info, cards


# --- the lobby -------------------------------------------------------------------


@dataclass
class Conn:
    key: ConnKey
    user_id: int | str | None = None
    tokens: float = 0.0
    refilled_at: float = 0.0


@dataclass
class UserState:
    user: dict[str, Any]  # {id, username, auth_level}
    conn: ConnKey
    room_id: int | None = None


@dataclass
class Room:
    id: int
    name: str
    host_id: int | str
    deck: dict[str, Any]
    cards: list[dict[str, Any]]  # kept, never shown
    players: list[int | str] = field(default_factory=list)


class Lobby:
    """Users, rooms and connections. Synchronous: each call is atomic on the loop;
    what must be sent is appended to ``outbox`` in order."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.conns: dict[ConnKey, Conn] = {}
        self.users: dict[int | str, UserState] = {}
        self.rooms: dict[int, Room] = {}
        self.next_room_id = 1
        self.dirty = False
        self.outbox: list[tuple[Any, ...]] = []  # ("emit", event, payload, key|None) / ("detach", key)

    def connect(self, key: ConnKey) -> None:
        self.conns[key] = Conn(key, tokens=float(self.limits.command_burst), refilled_at=time.monotonic())

    def disconnect(self, key: ConnKey) -> None:
        conn = self.conns.get(key)
        if conn is None:
            return  # replaced earlier
        if conn.user_id is not None:
            self._remove_user(conn, "host_disconnected")
        del self.conns[key]
        self._publish_if_dirty()

    def command(self, key: ConnKey, name: str, payload: object) -> dict[str, Any]:
        conn = self.conns.get(key)
        try:
            if conn is None:
                raise ProtocolError("not_in_lobby", "this connection was replaced or has left")
            self._take_token(conn)
            reply: dict[str, Any] = getattr(self, f"_{name}")(conn, payload)
            return reply
        except ProtocolError as error:
            return {"ok": False, "error": {"code": error.code, "message": error.message}}
        except Exception:
            logger.exception("%s failed", name)
            return {"ok": False, "error": {"code": "internal", "message": "the server failed; nothing changed"}}
        finally:
            self._publish_if_dirty()

    def _take_token(self, conn: Conn) -> None:
        rate = self.limits.command_rate
        if rate is None:
            return
        now = time.monotonic()
        conn.tokens = min(float(self.limits.command_burst), conn.tokens + (now - conn.refilled_at) * rate)
        conn.refilled_at = now
        if conn.tokens < 1.0:
            raise ProtocolError("rate_limited", "too many commands from this connection")
        conn.tokens -= 1.0

    # commands

    def _join_lobby(self, conn: Conn, payload: object) -> dict[str, Any]:
        claim = parse_claim(require_object(payload, "join_lobby"))
        if conn.user_id is not None and conn.user_id != claim.id:
            raise ProtocolError("identity_mismatch", f"this connection speaks for user {conn.user_id!r}")
        state = self._bind(conn, claim)
        if not self.dirty:
            self.outbox.append(("emit", "updaterooms", self.room_list(), conn.key))  # else the broadcast covers it
        return {"ok": True, "user": dict(state.user), "room": state.room_id}

    def _leave_lobby(self, conn: Conn, payload: object) -> dict[str, Any]:
        raw = require_object(payload, "leave_lobby")
        if "id" not in raw:
            raise invalid("leave_lobby needs your user id")
        user_id = parse_user_id(raw["id"])
        if conn.user_id is None:
            raise ProtocolError("not_in_lobby", "send join_lobby first")
        if user_id != conn.user_id:
            raise ProtocolError("forbidden", f"this connection speaks for user {conn.user_id!r}")
        self._remove_user(conn, "host_left")
        return {"ok": True}

    def _create_room(self, conn: Conn, payload: object) -> dict[str, Any]:
        raw = require_object(payload, "create_room")
        if "name" not in raw:
            raise invalid("create_room needs a room name")
        name = trimmed_name(raw["name"], "name")
        if "deck" not in raw:
            raise invalid("create_room needs a deck")
        deck, cards = parse_deck(raw["deck"])
        host = parse_claim(raw["host"], "host.") if raw.get("host") is not None else None
        if conn.user_id is None:
            if host is None:
                raise ProtocolError("not_in_lobby", "join the lobby first, or send a host")
            user_id = host.id
        else:
            if host is not None and host.id != conn.user_id:
                raise ProtocolError("identity_mismatch", f"this connection speaks for user {conn.user_id!r}")
            user_id = conn.user_id
        existing = self.users.get(user_id)
        if existing is not None and existing.room_id is not None:
            raise ProtocolError("already_in_room", f"you sit in room {existing.room_id}")
        if len(self.rooms) >= self.limits.max_rooms:
            raise ProtocolError("too_many_rooms", "the server holds its limit of rooms")
        state = self._bind(conn, host) if conn.user_id is None and host is not None else self.users[user_id]
        room = Room(self.next_room_id, name, state.user["id"], deck, cards)
        self.next_room_id += 1
        self.rooms[room.id] = room
        state.room_id = room.id
        self.dirty = True
        return {"ok": True, "room": self.summary(room)}

    def _join_room(self, conn: Conn, payload: object) -> dict[str, Any]:
        room_id = parse_room_id(payload, "join_room")
        state = self._speaker(conn)
        room = self._room(room_id)
        if state.room_id == room_id:
            return {"ok": True, "room": self.summary(room)}
        if state.room_id is not None:
            raise ProtocolError("already_in_room", f"you sit in room {state.room_id}")
        if len(room.players) >= self.limits.max_players:
            raise ProtocolError("room_full", f"room {room_id} is full")
        room.players.append(state.user["id"])
        state.room_id = room_id
        self.dirty = True
        return {"ok": True, "room": self.summary(room)}

    def _leave_room(self, conn: Conn, payload: object) -> dict[str, Any]:
        room_id = parse_room_id(payload, "leave_room")
        state = self._speaker(conn)
        room = self._room(room_id)
        if state.room_id != room_id:
            raise ProtocolError("not_in_room", f"you are not in room {room_id}")
        if room.host_id == state.user["id"]:
            self._close_room(room_id, "host_left")
        else:
            self._leave_seat(room, state)
        return {"ok": True}

    # helpers

    def _speaker(self, conn: Conn) -> UserState:
        if conn.user_id is None:
            raise ProtocolError("not_in_lobby", "send join_lobby first")
        return self.users[conn.user_id]

    def _room(self, room_id: int) -> Room:
        room = self.rooms.get(room_id)
        if room is None:
            raise ProtocolError("room_not_found", f"room {room_id} does not exist")
        return room

    def _bind(self, conn: Conn, claim: Claim) -> UserState:
        state = self.users.get(claim.id)
        base = state.user if state is not None else {"id": claim.id, "username": None, "auth_level": None}
        user = {**base, **claim.fields}
        if state is None:
            state = self.users[claim.id] = UserState(user, conn.key)
            conn.user_id = claim.id
            return state
        if state.conn != conn.key:
            self._take_over(state, conn)
        if user != state.user:
            state.user = user
            if state.room_id is not None:
                self.dirty = True  # the change shows in the list
        return state

    def _take_over(self, state: UserState, conn: Conn) -> None:
        old = self.conns.pop(state.conn, None)
        state.conn = conn.key
        conn.user_id = state.user["id"]
        if old is not None:
            old.user_id = None
            reason = f"user {state.user['id']!r} joined from another connection"
            self.outbox.append(("emit", "replaced", {"reason": reason}, old.key))
            self.outbox.append(("detach", old.key))

    def _remove_user(self, conn: Conn, host_reason: str) -> None:
        assert conn.user_id is not None
        state = self.users[conn.user_id]
        if state.room_id is not None:
            room = self.rooms[state.room_id]
            if room.host_id == state.user["id"]:
                self._close_room(room.id, host_reason)
            else:
                self._leave_seat(room, state)
        del self.users[conn.user_id]
        conn.user_id = None

    def _leave_seat(self, room: Room, state: UserState) -> None:
        room.players = [p for p in room.players if p != state.user["id"]]
        state.room_id = None
        self.dirty = True

    def _close_room(self, room_id: int, reason: str) -> None:
        room = self.rooms.pop(room_id, None)
        if room is None:
            return
        self.dirty = True
        tell_host = reason in ("shutdown", "crashed")
        for seated in (room.host_id, *room.players):
            state = self.users.get(seated)
            if state is None or state.room_id != room_id:
                continue
            state.room_id = None
            if seated == room.host_id and not tell_host:
                continue
            if state.conn in self.conns:
                self.outbox.append(("emit", "roomclosed", {"id": room_id, "reason": reason}, state.conn))

    def summary(self, room: Room) -> dict[str, Any]:
        return {
            "id": room.id,
            "name": room.name,
            "host": dict(self.users[room.host_id].user),
            "deck": dict(room.deck),
            "players": [dict(self.users[p].user) for p in room.players],
            "max_players": self.limits.max_players,
        }

    def room_list(self) -> list[dict[str, Any]]:
        return [self.summary(room) for room in self.rooms.values()]

    def _publish_if_dirty(self) -> None:
        if self.dirty:
            self.dirty = False
            self.outbox.append(("emit", "updaterooms", self.room_list(), None))


# --- wiring ----------------------------------------------------------------------


class PeerServer(socketio.AsyncServer):
    """AsyncServer with the two things its public API cannot say: whether a command
    asked for an ack (else a failure becomes ``rejected``), and the reference
    servers' ``{"message": "Invalid namespace"}`` for unknown namespaces."""

    def __init__(self, lobby: Lobby, **kwargs: Any) -> None:
        super().__init__(async_mode="aiohttp", namespaces=list(NAMESPACES), **kwargs)
        self.lobby = lobby
        self.sendq: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        for ns in NAMESPACES:
            self.on("connect", self._make_connect(ns), namespace=ns)
            self.on("disconnect", self._make_disconnect(ns), namespace=ns)

    def _make_connect(self, ns: str) -> Any:
        async def on_connect(sid: str, environ: Any, auth: Any = None) -> None:
            self.lobby.connect((ns, sid))

        return on_connect

    def _make_disconnect(self, ns: str) -> Any:
        async def on_disconnect(sid: str, reason: str = "") -> None:
            self.lobby.disconnect((ns, sid))
            self._flush()

        return on_disconnect

    async def _handle_connect(self, eio_sid: str, namespace: str, data: Any) -> None:
        if (namespace or "/") not in NAMESPACES:
            await self._send_packet(
                eio_sid, self.packet_class(packet.CONNECT_ERROR, data={"message": "Invalid namespace"}, namespace=namespace)
            )
            return
        await super()._handle_connect(eio_sid, namespace, data)

    async def _handle_event_internal(
        self, server: Any, sid: str, eio_sid: str, data: list[Any], namespace: str, ack_id: int | None
    ) -> None:
        event = data[0]
        if event not in COMMANDS:
            return
        reply = self.lobby.command((namespace, sid), event, data[1] if len(data) > 1 else None)
        self._flush()
        if ack_id is not None:
            await self._send_packet(eio_sid, self.packet_class(packet.ACK, namespace=namespace, id=ack_id, data=[reply]))
        elif not reply["ok"]:
            self.sendq.put_nowait(("emit", "rejected", {"event": event, **reply["error"]}, (namespace, sid)))

    def _flush(self) -> None:
        for item in self.lobby.outbox:
            self.sendq.put_nowait(item)
        self.lobby.outbox.clear()

    async def sender(self) -> None:
        """Send what the lobby decided, in the order it decided it."""
        while True:
            item = await self.sendq.get()
            try:
                if item[0] == "emit":
                    _, event, payload, key = item
                    if key is None:
                        for ns in NAMESPACES:
                            await self.emit(event, payload, namespace=ns)
                    else:
                        await self.emit(event, payload, to=key[1], namespace=key[0])
                else:
                    _, key = item
                    await self.disconnect(key[1], namespace=key[0])
            except Exception:
                logger.exception("sending %r failed", item[:2])


async def serve(args: argparse.Namespace) -> None:
    limits = Limits(
        max_players=args.max_players,
        max_rooms=args.max_rooms,
        command_rate=args.command_rate or None,
        command_burst=args.command_burst,
    )
    sio = PeerServer(
        Lobby(limits),
        ping_interval=args.ping_interval,
        ping_timeout=args.ping_timeout,
        max_http_buffer_size=args.max_payload,
    )
    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    port = runner.addresses[0][1]
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    sender = asyncio.create_task(sio.sender())
    stop = asyncio.Event()
    if args.exit_on_stdin_close:
        loop = asyncio.get_running_loop()

        def on_stdin() -> None:
            if not os.read(sys.stdin.fileno(), 65536):
                loop.remove_reader(sys.stdin.fileno())
                stop.set()

        loop.add_reader(sys.stdin.fileno(), on_stdin)
    try:
        await stop.wait()
    finally:
        sender.cancel()
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-players", type=int, default=50)
    parser.add_argument("--max-rooms", type=int, default=10_000)
    parser.add_argument("--command-rate", type=float, default=20.0, help="commands per second per connection; 0: no limit")
    parser.add_argument("--command-burst", type=int, default=40)
    parser.add_argument("--ping-interval", type=float, default=25.0)
    parser.add_argument("--ping-timeout", type=float, default=20.0)
    parser.add_argument("--max-payload", type=int, default=1_000_000)
    parser.add_argument("--exit-on-stdin-close", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
