"""The room protocol (docs/protocol.md) on python-socketio's AsyncServer
under aiohttp: a benchmark peer.

Why it exists: the benchmark compares roomactors with the reference stacks doing
the same work, so this server follows the same contract, check for check, as
``bench/peers/node/server.mjs`` does: namespaces ``/`` and ``/lobby`` share one
lobby; every command answers by ack or by ``rejected``; errors come in the
contract's order; ``updaterooms`` goes to every client on every change, after any
``roomclosed``; a second connection of a user takes over. The race
(docs/protocol.md, "The race") too: the
deck's answers stay in the room until ``raceover``, every time is the server's,
``raceprogress`` goes out at most every 200 ms per room and, when the sender falls
behind, newest-wins per room (it is built when it is sent). Room codes and
unlisted rooms (protocol.md "Room codes and the room feed": ``code``,
``create_room {listed}``, ``join_room {code}``, ``roomupdated``), not the feed
(``watch_rooms``): the race benchmark seats its players in unlisted rooms.
Identity (race.md "Identity"): the open mode only, with seat tokens: every join
issues a fresh token, and a held user id is claimed only with it (else
``identity_taken``, nothing changes). Signed identity (``join_lobby {credential}``,
JWTs) is not implemented here: the benchmark peers need only open identity.
Seats that outlive a connection (race.md): a drop (a transport closed or failed, or
a ping timeout: no DISCONNECT packet) keeps the user's seat for
``--reconnect-grace`` seconds (a timer per held seat), shown ``connected: false``;
a return with the token takes it back (``racestate`` during a race); when the grace
ends a player leaves and a host's room closes (``host_disconnected``).

The lobby is plain synchronous code, so each command is atomic on the event loop.
What it sends is queued and sent by one task in order: with concurrent handler
tasks sending inline, an older room list could overtake a newer one.

    python server.py --port 0 [--host 127.0.0.1] [--max-players 50] [--max-rooms 10000]
                     [--command-rate 20] [--command-burst 40]    (rate 0: no limit)
                     [--reconnect-grace 60]   (0: a drop is a leave)
                     [--ping-interval 25] [--ping-timeout 20] [--max-payload 1000000]
                     [--exit-on-stdin-close]   (for a parent that may die without a signal)
                     [--redis redis://HOST:PORT/DB [--redis-channel socketio]]

With ``--redis``, python-socketio's ``AsyncRedisManager`` is the client manager:
every emit goes through Redis to every process on that channel, which is how
python-socketio scales over several processes (bench/run's cluster workload, as
context). The lobby (rooms, users, the room list) stays per process: python-socketio
shares no application state, so each process's ``updaterooms`` shows its own rooms
only, and a room is joined only on the process that holds it.

Prints the bound port on stdout as one line once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import random
import re
import secrets
import sys
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import socketio
from aiohttp import web
from socketio import packet

logger = logging.getLogger("pysocketio_peer")

NAMESPACES = ("/", "/lobby")
COMMANDS = frozenset({
    "join_lobby", "leave_lobby", "create_room", "join_room", "leave_room",
    "time_sync", "start_race", "answer", "end_race", "race_results", "kick_player", "lock_room",
})  # fmt: skip
MAX_ANSWER_CHARS = 100
PROGRESS_INTERVAL = 0.2  # seconds between two raceprogress of one room, at least
RESULTS_KEPT = 10
NO_LIMIT_CAP_S = 3600
MAX_EXPONENT = 20
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6
MAX_CODE_CHARS = 16
_EXPONENT = re.compile(r"e\s*([-+]?\d[\d_]*)", re.IGNORECASE)
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
    reconnect_grace: float = 60.0  # seconds a dropped user's seat is kept; 0: a drop is a leave


DROP_REASONS = frozenset({"transport close", "transport error", "ping timeout"})
"""python-socketio's reasons for a connection that ended without a goodbye."""


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


MAX_TOKEN_CHARS = 64  # a seat token as a client sends it back (ours are 24 characters)
SEAT_TOKEN_BYTES = 18  # 144 random bits, 24 base64url characters, as roomactors


@dataclass(frozen=True)
class Claim:
    id: int | str
    fields: dict[str, str | None]  # only the profile fields the client sent
    token: str | None = field(default=None, repr=False)  # the seat token from an earlier ack


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
    token = raw.get("token")
    if token is not None:
        if not isinstance(token, str):
            raise invalid(f"{where}token must be the string from your join_lobby ack, or null")
        if len(token) > MAX_TOKEN_CHARS:
            raise invalid(f"{where}token has more than {MAX_TOKEN_CHARS} characters")
    return Claim(user_id, fields, token)


def token_matches(given: str | None, expected: str | None) -> bool:
    """Whether ``given`` is the seat's token, compared in constant time."""
    if given is None or expected is None:
        return False
    return secrets.compare_digest(given.encode(), expected.encode())


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


def _seconds(raw: Mapping[str, Any], key: str, low: float, high: float, default: float | None) -> float | None:
    if key not in raw:
        return default
    value = raw[key]
    if not _is_number(value) or not low <= value <= high:
        raise invalid(f"{key} must be a number of seconds from {low:g} to {high:g}")
    return float(value)


def _flag(raw: Mapping[str, Any], key: str) -> bool:
    if key not in raw:
        return False
    if not isinstance(raw[key], bool):
        raise invalid(f"{key} must be true or false")
    return bool(raw[key])


def _positive_int(raw: Mapping[str, Any], key: str, command: str) -> int:
    if key not in raw:
        raise invalid(f"{command} needs {key}")
    if not _is_int(raw[key]) or raw[key] <= 0:
        raise invalid(f"{key} must be a positive integer")
    return int(raw[key])


# The matching rule: trimmed, NFKC, case-folded, inner whitespace collapsed; or equal
# exact rationals (fractions.Fraction). A decimal exponent beyond ±20 is text only.


def _answer_text(value: str | float) -> str:
    """A JSON number is read through its shortest decimal form (repr)."""
    return value if isinstance(value, str) else repr(value)


def normalize(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text.strip()).casefold().split())


def rational(text: str) -> Fraction | None:
    exponent = _EXPONENT.search(text)
    if exponent is not None:
        try:
            if abs(int(exponent.group(1))) > MAX_EXPONENT:
                return None
        except ValueError:
            return None
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None


def matches(given: str | float, expected: str | float) -> bool:
    a, b = normalize(_answer_text(given)), normalize(_answer_text(expected))
    if a == b:
        return True
    x = rational(a)
    y = rational(b) if x is not None else None
    return y is not None and x == y


def ranking(players: list[Racer]) -> list[dict[str, Any]]:
    """Most correct first, then smallest time_ms, then most answered; equal on all three
    share a place and the next place skips (1, 1, 3). Never answered: last."""

    def key(p: Racer) -> tuple[int, float, int]:
        return (-p.correct, math.inf if p.time_ms is None else p.time_ms, -p.answered)

    out: list[dict[str, Any]] = []
    previous: tuple[int, float, int] | None = None
    for i, p in enumerate(sorted(players, key=key)):
        place = out[-1]["place"] if previous == key(p) else i + 1
        previous = key(p)
        out.append({"place": place, "id": p.id, "username": p.username, "correct": p.correct,
                    "answered": p.answered, "time_ms": p.time_ms, "left": p.left})  # fmt: skip
    return out


class Clock:
    """Server epoch milliseconds: the monotonic clock plus the epoch at start-up."""

    def __init__(self) -> None:
        self.offset = time.time() - time.monotonic()

    def ms(self) -> int:
        return int((self.offset + time.monotonic()) * 1000)


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
    conn: ConnKey | None  # None: dropped, within its grace
    room_id: int | None = None
    grace_timer: asyncio.TimerHandle | None = None
    token: str | None = field(default=None, repr=False)  # of the last join; never logged


@dataclass
class Racer:
    id: int | str
    username: str | None
    next: int | None = 0
    answered: int = 0
    correct: int = 0
    time_ms: int | None = None
    left: bool = False
    mine: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Race:
    id: int
    start_at: int
    end_at: int
    late_join: bool
    cards: list[dict[str, Any]]
    players: dict[int | str, Racer]
    over: bool = False
    last_progress_at: float = -math.inf
    progress_due: bool = False
    timers: list[asyncio.TimerHandle] = field(default_factory=list)


@dataclass
class Room:
    id: int
    code: str
    listed: bool
    name: str
    host_id: int | str
    deck: dict[str, Any]
    cards: list[dict[str, Any]]  # kept, never shown
    players: list[int | str] = field(default_factory=list)
    state: str = "waiting"
    locked: bool = False
    banned: set[int | str] = field(default_factory=set)
    race: Race | None = None  # the current or last race
    next_race_id: int = 1
    results: list[dict[str, Any]] = field(default_factory=list)  # the last RESULTS_KEPT, newest last


class Lobby:
    """Users, rooms and connections. Synchronous: each call is atomic on the loop;
    what must be sent is appended to ``outbox`` in order."""

    def __init__(self, limits: Limits, call_later: Callable[[float, Callable[[], None]], asyncio.TimerHandle]) -> None:
        self.limits = limits
        self.call_later = call_later
        """Runs a function after a delay (seconds) on the loop, then flushes what it sent."""
        self.clock = Clock()
        self.conns: dict[ConnKey, Conn] = {}
        self.users: dict[int | str, UserState] = {}
        self.rooms: dict[int, Room] = {}
        self.codes: dict[str, int] = {}  # room code -> room id, for open rooms
        self.next_room_id = 1
        self.dirty = False  # the list changed
        self.changed: dict[int, Room] = {}  # rooms whose members get a roomupdated
        # ("emit", event, payload, key|None) / ("emit_many", event, payload, [keys]) /
        # ("progress", room_id, race_id) / ("detach", key)
        self.outbox: list[tuple[Any, ...]] = []

    def connect(self, key: ConnKey) -> None:
        self.conns[key] = Conn(key, tokens=float(self.limits.command_burst), refilled_at=time.monotonic())

    def disconnect(self, key: ConnKey, reason: str = "") -> None:
        conn = self.conns.get(key)
        if conn is None:
            return  # replaced earlier
        if conn.user_id is not None:
            if reason in DROP_REASONS and self.limits.reconnect_grace > 0:
                self._hold(self.users[conn.user_id])
            else:
                self._remove_user(conn, "host_disconnected")
        del self.conns[key]
        self._publish_if_dirty()

    def _hold(self, state: UserState) -> None:
        """A drop: the seat waits for the token's holder for the grace, shown connected: false."""
        state.conn = None
        state.grace_timer = self.call_later(self.limits.reconnect_grace, lambda: self._grace_ended(state))
        if state.room_id is not None:
            room = self.rooms[state.room_id]
            self._touch(room)
            if self._running(room):
                self._schedule_progress(room)

    def _grace_ended(self, state: UserState) -> None:
        if self.users.get(state.user["id"]) is not state or state.conn is not None:
            return  # came back
        self._remove_state(state, "host_disconnected")
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
        self._check_held(conn, claim)
        held = self.users.get(claim.id)
        returning = held is not None and held.conn is None
        state = self._bind(conn, claim)
        if returning and state.room_id is not None:
            room = self.rooms[state.room_id]
            self._touch(room)  # connected: true again
            race = self._running(room)
            if race is not None:
                racer = race.players.get(state.user["id"])
                self._send_to(state.user["id"], "racestate", self._race_state(room, race, racer))
                self._schedule_progress(room)
        if not self.dirty:
            self.outbox.append(("emit", "updaterooms", self.room_list(), conn.key))  # else the broadcast covers it
        state.token = secrets.token_urlsafe(SEAT_TOKEN_BYTES)  # the previous one stops working
        return {"ok": True, "user": dict(state.user), "room": state.room_id, "token": state.token}

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
        listed = deck.get("private") is not True  # a private deck: unlisted unless `listed` says otherwise
        if raw.get("listed") is not None:
            if not isinstance(raw["listed"], bool):
                raise invalid("listed must be true or false")
            listed = raw["listed"]
        if conn.user_id is None:
            if host is None:
                raise ProtocolError("not_in_lobby", "join the lobby first, or send a host")
            user_id = host.id
            self._check_held(conn, host)
        else:
            if host is not None and host.id != conn.user_id:
                raise ProtocolError("identity_mismatch", f"this connection speaks for user {conn.user_id!r}")
            user_id = conn.user_id
        existing = self.users.get(user_id)
        if existing is not None and existing.room_id is not None:
            raise ProtocolError("already_in_room", f"you sit in room {existing.room_id}")
        if len(self.rooms) >= self.limits.max_rooms:
            raise ProtocolError("too_many_rooms", "the server holds its limit of rooms")
        binds = conn.user_id is None and host is not None
        state = self._bind(conn, host) if binds and host is not None else self.users[user_id]
        if binds:
            state.token = secrets.token_urlsafe(SEAT_TOKEN_BYTES)  # it bound this connection, as join_lobby does
        room = Room(self.next_room_id, self._new_code(), listed, name, state.user["id"], deck, cards)
        self.next_room_id += 1
        self.rooms[room.id] = room
        self.codes[room.code] = room.id
        state.room_id = room.id
        self._touch(room)
        reply: dict[str, Any] = {"ok": True, "room": self.summary(room)}
        if binds:
            reply["token"] = state.token
        return reply

    def _join_room(self, conn: Conn, payload: object) -> dict[str, Any]:
        raw = require_object(payload, "join_room")
        code: str | None = None
        if "code" in raw:
            if "id" in raw:
                raise invalid("join_room takes a room id or a code, not both")
            code = raw["code"]
            if not isinstance(code, str) or not 1 <= len(code) <= MAX_CODE_CHARS:
                raise invalid(f"a room code is a string of 1 to {MAX_CODE_CHARS} characters")
        else:
            target = parse_room_id(raw, "join_room")
        state = self._speaker(conn)
        room = self._room_by_code(code.upper()) if code is not None else self._room(target, state)
        room_id = room.id
        if state.room_id == room_id:
            return {"ok": True, "room": self.summary(room)}
        if state.room_id is not None:
            raise ProtocolError("already_in_room", f"you sit in room {state.room_id}; leave it first")
        if state.user["id"] in room.banned:
            raise ProtocolError("banned", f"the host removed you from room {room_id}; pick another room")
        if room.locked:
            raise ProtocolError("room_locked", f"room {room_id} is locked; ask its host to unlock it")
        race = self._running(room)
        if race is not None and not race.late_join:
            raise ProtocolError("race_in_progress", f"room {room_id} is racing; join when the race is over")
        if len(room.players) >= self.limits.max_players:
            raise ProtocolError("room_full", f"room {room_id} is full")
        room.players.append(state.user["id"])
        state.room_id = room_id
        self._touch(room)
        if race is not None:
            racer = race.players[state.user["id"]] = Racer(state.user["id"], state.user.get("username"))
            self._send_to(state.user["id"], "racestate", self._race_state(room, race, racer))
            self._schedule_progress(room)
        return {"ok": True, "room": self.summary(room)}

    def _leave_room(self, conn: Conn, payload: object) -> dict[str, Any]:
        room_id = parse_room_id(payload, "leave_room")
        state = self._speaker(conn)
        room = self._room(room_id, state)
        if state.room_id != room_id:
            raise ProtocolError("not_in_room", f"you are not in room {room_id}")
        if room.host_id == state.user["id"]:
            self._close_room(room_id, "host_left")
        else:
            self._leave_seat(room, state)
        return {"ok": True}

    # the race

    def _time_sync(self, conn: Conn, payload: object) -> dict[str, Any]:
        raw = require_object(payload, "time_sync")
        if not _is_number(raw.get("t0")):
            raise invalid("time_sync needs t0, your clock's reading as a number")
        return {"ok": True, "t0": raw["t0"], "server_ms": self.clock.ms()}

    def _start_race(self, conn: Conn, payload: object) -> dict[str, Any]:
        raw = require_object(payload, "start_race")
        room_id = parse_room_id(raw, "start_race")
        countdown = _seconds(raw, "countdown", 0, 10, 3.0)
        time_limit = _seconds(raw, "time_limit", 10, 3600, None) if raw.get("time_limit") is not None else None
        shuffle, late_join = _flag(raw, "shuffle"), _flag(raw, "late_join")
        room = self._host_of(conn, room_id)
        if self._running(room) is not None:
            raise ProtocolError("race_in_progress", f"room {room.id} is racing; end_race first")
        if not room.players:
            raise ProtocolError("no_players", f"room {room.id} has no players yet; wait for someone to join")
        now = self.clock.ms()
        start_at = now + round((countdown or 0.0) * 1000)
        end_at = start_at + round((time_limit if time_limit is not None else NO_LIMIT_CAP_S) * 1000)
        order = list(range(len(room.cards)))
        if shuffle:
            random.shuffle(order)
        players = {p: Racer(p, self.users[p].user.get("username")) for p in room.players}
        race = Race(room.next_race_id, start_at, end_at, late_join, [room.cards[i] for i in order], players)
        room.next_race_id += 1
        self._cancel_timers(room)
        room.race = race
        if not late_join:
            room.locked = True
        room.state = "countdown" if start_at > now else "racing"
        self._touch(room)
        if start_at > now:
            race.timers.append(self.call_later((start_at - now) / 1000, lambda: self._advance(room)))
        race.timers.append(self.call_later((end_at - now) / 1000, lambda: self._advance(room)))
        self._send_to_members(room, "racestart", {
            "id": room.id, "race_id": race.id, "start_at": start_at, "end_at": end_at, "server_ms": now,
            "cards": [{"index": i, "problem": c["problem"]} for i, c in enumerate(race.cards)],
            "players": [{"id": p.id, "username": p.username} for p in players.values()],
        })  # fmt: skip
        return {"ok": True, "race_id": race.id, "start_at": start_at, "end_at": end_at}

    def _answer(self, conn: Conn, payload: object) -> dict[str, Any]:
        raw = require_object(payload, "answer")
        room_id = parse_room_id(raw, "answer")
        race_id = _positive_int(raw, "race_id", "answer")
        card_raw = raw.get("card")
        if not isinstance(card_raw, int) or isinstance(card_raw, bool) or card_raw < 0:
            raise invalid("answer needs card, the index of your next card (a non-negative integer)")
        card = card_raw
        if "answer" not in raw:
            raise invalid("answer needs the answer")
        given = raw["answer"]
        if isinstance(given, str):
            if len(given) > MAX_ANSWER_CHARS:
                raise invalid(f"an answer has at most {MAX_ANSWER_CHARS} characters")
        elif not _is_number(given):
            raise invalid("an answer is a string or a number")
        state = self._speaker(conn)
        room = self._room(room_id, state)
        race = room.race
        racer = race.players.get(state.user["id"]) if race is not None and race.id == race_id else None
        if race is None or racer is None or racer.left:
            raise ProtocolError("not_racing", f"you are not a player of race {race_id} in room {room.id}")
        now = self.clock.ms()
        if not race.over and now < race.start_at:
            raise ProtocolError("race_not_started", f"the race starts at {race.start_at} (server time); wait for it")
        if race.over:
            raise ProtocolError("race_over", f"race {race.id} is over; wait for the next one")
        if card != racer.next:
            where = "you have answered every card" if racer.next is None else f"your next card is {racer.next}"
            raise ProtocolError("wrong_card", f"{where}; answer the cards in order")
        correct = matches(given, race.cards[card]["answer"])
        ms = now - race.start_at
        racer.mine.append({"index": card, "given": given, "correct": correct, "ms": ms})
        racer.answered += 1
        racer.correct += int(correct)
        racer.time_ms = ms
        racer.next = card + 1 if card + 1 < len(race.cards) else None
        self._schedule_progress(room)
        self._end_if_all_done(room)
        return {"ok": True, "card": card, "correct": correct, "next": racer.next}

    def _end_race(self, conn: Conn, payload: object) -> dict[str, Any]:
        room = self._host_of(conn, parse_room_id(payload, "end_race"))
        if self._running(room) is None:
            raise ProtocolError("not_racing", f"room {room.id} has no race running")
        self._finish(room, "host_ended")
        return {"ok": True}

    def _race_results(self, conn: Conn, payload: object) -> dict[str, Any]:
        raw = require_object(payload, "race_results")
        room_id = parse_room_id(raw, "race_results")
        race_id = _positive_int(raw, "race_id", "race_results") if raw.get("race_id") is not None else None
        room = self._host_of(conn, room_id)
        running = self._running(room)
        if running is not None and race_id in (None, running.id):
            raise ProtocolError("race_in_progress", f"race {running.id} is still running; ask again when it is over")
        if race_id is None:
            found = room.results[-1] if room.results else None
        else:
            found = next((r for r in room.results if r["race_id"] == race_id), None)
        if found is None:
            where = "has no finished race yet" if race_id is None else f"keeps no race {race_id}"
            raise ProtocolError("race_not_found", f"room {room.id} {where}")
        return {"ok": True, "results": found}

    def _kick_player(self, conn: Conn, payload: object) -> dict[str, Any]:
        raw = require_object(payload, "kick_player")
        room_id = parse_room_id(raw, "kick_player")
        if "user" not in raw:
            raise invalid("kick_player needs the user id to kick")
        user_id = parse_user_id(raw["user"], "user")
        room = self._host_of(conn, room_id)
        if user_id not in room.players:
            raise ProtocolError("not_in_room", f"user {user_id!r} is not a player of room {room.id}")
        room.banned.add(user_id)
        self._leave_seat(room, self.users[user_id])
        self._send_to(user_id, "kicked", {"id": room.id})
        return {"ok": True}

    def _lock_room(self, conn: Conn, payload: object) -> dict[str, Any]:
        raw = require_object(payload, "lock_room")
        room_id = parse_room_id(raw, "lock_room")
        if not isinstance(raw.get("locked"), bool):
            raise invalid("lock_room needs locked: true or false")
        room = self._host_of(conn, room_id)
        if room.locked != raw["locked"]:
            room.locked = raw["locked"]
            self._touch(room)
        return {"ok": True}

    def _host_of(self, conn: Conn, room_id: int) -> Room:
        state = self._speaker(conn)
        room = self._room(room_id, state)
        if room.host_id != state.user["id"]:
            raise ProtocolError("not_host", f"only the host of room {room.id} may do that")
        return room

    @staticmethod
    def _running(room: Room) -> Race | None:
        return room.race if room.race is not None and not room.race.over else None

    def _advance(self, room: Room) -> None:
        """A timer fired: the countdown's end or end_at, on the server's clock."""
        race = self._running(room)
        if race is None or self.rooms.get(room.id) is not room:
            return
        now = self.clock.ms()
        if now >= race.end_at:
            self._finish(room, "time_up")
        elif room.state == "countdown" and now >= race.start_at:
            room.state = "racing"
            self._touch(room)
        else:  # a little early: again at the due time
            due = race.start_at if room.state == "countdown" else race.end_at
            race.timers.append(self.call_later(max(0.001, (due - now) / 1000), lambda: self._advance(room)))
        self._publish_if_dirty()

    def _end_if_all_done(self, room: Room) -> None:
        race = self._running(room)
        if race is not None and all(p.left or p.next is None for p in race.players.values()):
            self._finish(room, "all_done")

    @staticmethod
    def _cancel_timers(room: Room) -> None:
        if room.race is not None:
            for timer in room.race.timers:
                timer.cancel()
            room.race.timers.clear()

    def _finish(self, room: Room, reason: str) -> None:
        race = room.race
        assert race is not None
        race.over = True
        self._cancel_timers(room)
        room.state = "finished"
        self._touch(room)
        players = list(race.players.values())
        results = {
            "id": room.id, "race_id": race.id, "reason": reason, "ranking": ranking(players),
            "cards": [{"index": i, "problem": c["problem"], "answer": c["answer"]} for i, c in enumerate(race.cards)],
        }  # fmt: skip
        answers = [{"id": p.id, "username": p.username, "mine": list(p.mine)} for p in players]
        room.results.append({**results, "answers": answers})
        del room.results[:-RESULTS_KEPT]
        self._send_to(room.host_id, "raceover", {**results, "mine": []})
        for p in players:
            if not p.left:
                self._send_to(p.id, "raceover", {**results, "mine": list(p.mine)})

    def _progress_players(self, race: Race) -> list[dict[str, Any]]:
        return [
            {"id": p.id, "username": p.username, "answered": p.answered, "correct": p.correct,
             "done": p.next is None, "time_ms": p.time_ms, "connected": not p.left and self._connected(p.id)}
            for p in race.players.values()
        ]  # fmt: skip

    def _race_state(self, room: Room, race: Race, racer: Racer | None) -> dict[str, Any]:
        return {
            "id": room.id, "race_id": race.id, "state": room.state, "start_at": race.start_at,
            "end_at": race.end_at, "server_ms": self.clock.ms(),
            "cards": [{"index": i, "problem": c["problem"]} for i, c in enumerate(race.cards)],
            "next": racer.next if racer is not None else None, "progress": self._progress_players(race),
        }  # fmt: skip

    def _schedule_progress(self, room: Room) -> None:
        """At most one raceprogress per room every PROGRESS_INTERVAL: the first change goes
        out at once, later ones wait for the interval and go out as one."""
        race = room.race
        assert race is not None
        if race.progress_due:
            return
        race.progress_due = True
        wait = race.last_progress_at + PROGRESS_INTERVAL - time.monotonic()
        if wait <= 0:
            self._queue_progress(room, race)
        else:
            race.timers.append(self.call_later(wait, lambda: self._queue_progress(room, race)))

    def _queue_progress(self, room: Room, race: Race) -> None:
        race.progress_due = False
        race.last_progress_at = time.monotonic()
        if not race.over:
            self.outbox.append(("progress", room.id, race.id))

    def progress(self, room_id: int, race_id: int) -> tuple[dict[str, Any], list[ConnKey]] | None:
        """The newest raceprogress of a room and whom to send it, built when it is sent."""
        room = self.rooms.get(room_id)
        race = room.race if room is not None else None
        if room is None or race is None or race.id != race_id or race.over:
            return None
        payload = {"id": room.id, "race_id": race.id, "server_ms": self.clock.ms(), "players": self._progress_players(race)}
        return payload, self._member_keys(room)

    def _send_to(self, user_id: int | str, event: str, payload: dict[str, Any]) -> None:
        state = self.users.get(user_id)
        if state is not None and state.conn in self.conns:
            self.outbox.append(("emit", event, payload, state.conn))

    def _member_keys(self, room: Room) -> list[ConnKey]:
        keys = []
        for user_id in (room.host_id, *room.players):
            state = self.users.get(user_id)
            if state is not None and state.conn in self.conns:
                keys.append(state.conn)
        return keys

    def _send_to_members(self, room: Room, event: str, payload: dict[str, Any]) -> None:
        self.outbox.append(("emit_many", event, payload, self._member_keys(room)))

    # helpers

    def _speaker(self, conn: Conn) -> UserState:
        if conn.user_id is None:
            raise ProtocolError("not_in_lobby", "send join_lobby first")
        return self.users[conn.user_id]

    def _room(self, room_id: int, state: UserState | None = None) -> Room:
        """A room by id; an unlisted room only for its members (ids reveal nothing)."""
        room = self.rooms.get(room_id)
        if room is None or (not room.listed and state is not None and not self._is_member(room, state.user["id"])):
            raise ProtocolError("room_not_found", f"room {room_id} does not exist; check the id or join by code")
        return room

    def _room_by_code(self, code: str) -> Room:
        room = self.rooms.get(self.codes.get(code, 0))
        if room is None:
            raise ProtocolError("room_not_found", f"no open room has the code {code}; check it with your host")
        return room

    @staticmethod
    def _is_member(room: Room, user_id: int | str) -> bool:
        return room.host_id == user_id or user_id in room.players

    def _new_code(self) -> str:
        while (code := "".join(random.choices(CODE_ALPHABET, k=CODE_LENGTH))) in self.codes:
            pass
        return code

    def _touch(self, room: Room) -> None:
        """The room's summary changed: its members get a roomupdated, and a listed room's
        change is a list change."""
        self.changed[room.id] = room
        if room.listed:
            self.dirty = True

    def _check_held(self, conn: Conn, claim: Claim) -> None:
        """race.md "Identity": a held id (here: connected elsewhere) is taken over
        only with its seat token; else ``identity_taken``, and nothing changes."""
        state = self.users.get(claim.id)
        if state is None or state.conn == conn.key or token_matches(claim.token, state.token):
            return
        given = "a token that is not this seat's" if claim.token is not None else "no token"
        raise ProtocolError(
            "identity_taken",
            f"user {claim.id!r} is signed in on another connection and this carries {given}; to take the seat "
            "over, send the token from that user's last join_lobby ack, or use another id",
        )

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
                self._touch(self.rooms[state.room_id])  # the change shows in the list
        return state

    def _take_over(self, state: UserState, conn: Conn) -> None:
        if state.grace_timer is not None:  # a return within the grace
            state.grace_timer.cancel()
            state.grace_timer = None
        old = self.conns.pop(state.conn, None) if state.conn is not None else None
        state.conn = conn.key
        conn.user_id = state.user["id"]
        if old is not None:
            old.user_id = None
            reason = f"user {state.user['id']!r} joined from another connection"
            self.outbox.append(("emit", "replaced", {"reason": reason}, old.key))
            self.outbox.append(("detach", old.key))

    def _remove_user(self, conn: Conn, host_reason: str) -> None:
        assert conn.user_id is not None
        self._remove_state(self.users[conn.user_id], host_reason)
        conn.user_id = None

    def _remove_state(self, state: UserState, host_reason: str) -> None:
        if state.room_id is not None:
            room = self.rooms[state.room_id]
            if room.host_id == state.user["id"]:
                self._close_room(room.id, host_reason)
            else:
                self._leave_seat(room, state)
        del self.users[state.user["id"]]

    def _leave_seat(self, room: Room, state: UserState) -> None:
        room.players = [p for p in room.players if p != state.user["id"]]
        state.room_id = None
        self._touch(room)
        racer = room.race.players.get(state.user["id"]) if room.race is not None else None
        if racer is not None and not racer.left:
            racer.left = True  # stays in the results with what they answered
            if self._running(room) is not None:
                self._schedule_progress(room)
                self._end_if_all_done(room)

    def _close_room(self, room_id: int, reason: str) -> None:
        room = self.rooms.get(room_id)
        if room is None:
            return
        if self._running(room) is not None:
            self._finish(room, reason)  # raceover before roomclosed, to the host too
        self._cancel_timers(room)
        del self.rooms[room_id]
        self.codes.pop(room.code, None)
        self.changed.pop(room.id, None)
        if room.listed:
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
            "code": room.code,
            "name": room.name,
            "host": {**self.users[room.host_id].user, "connected": self._connected(room.host_id)},
            "deck": dict(room.deck),
            "players": [{**self.users[p].user, "connected": self._connected(p)} for p in room.players],
            "max_players": self.limits.max_players,
            "state": room.state,
            "locked": room.locked,
        }

    def _connected(self, user_id: int | str) -> bool:
        state = self.users.get(user_id)
        return state is not None and state.conn is not None

    def room_list(self) -> list[dict[str, Any]]:
        return [self.summary(room) for room in self.rooms.values() if room.listed]

    def _publish_if_dirty(self) -> None:
        for room in self.changed.values():
            if self.rooms.get(room.id) is room:
                self._send_to_members(room, "roomupdated", {"room": self.summary(room)})
        self.changed.clear()
        if self.dirty:
            self.dirty = False
            self.outbox.append(("emit", "updaterooms", self.room_list(), None))


# --- wiring ----------------------------------------------------------------------


class PeerServer(socketio.AsyncServer):
    """AsyncServer with the two things its public API cannot say: whether a command
    asked for an ack (else a failure becomes ``rejected``), and the reference
    servers' ``{"message": "Invalid namespace"}`` for unknown namespaces."""

    def __init__(self, limits: Limits, **kwargs: Any) -> None:
        super().__init__(async_mode="aiohttp", namespaces=list(NAMESPACES), **kwargs)
        self.lobby = Lobby(limits, self._call_later)
        self.sendq: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self.progress_queued: set[tuple[int, int]] = set()
        for ns in NAMESPACES:
            self.on("connect", self._make_connect(ns), namespace=ns)
            self.on("disconnect", self._make_disconnect(ns), namespace=ns)

    def _make_connect(self, ns: str) -> Any:
        async def on_connect(sid: str, environ: Any, auth: Any = None) -> None:
            self.lobby.connect((ns, sid))

        return on_connect

    def _make_disconnect(self, ns: str) -> Any:
        async def on_disconnect(sid: str, reason: str = "") -> None:
            self.lobby.disconnect((ns, sid), reason)
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

    def _call_later(self, delay: float, fn: Callable[[], None]) -> asyncio.TimerHandle:
        def fire() -> None:
            try:
                fn()
            except Exception:
                logger.exception("a race timer failed")
            self._flush()

        return asyncio.get_running_loop().call_later(delay, fire)

    def _flush(self) -> None:
        for item in self.lobby.outbox:
            if item[0] == "progress":
                if item[1:] in self.progress_queued:
                    continue  # newest wins: the queued one is built when it is sent
                self.progress_queued.add(item[1:])
            self.sendq.put_nowait(item)
        self.lobby.outbox.clear()

    async def sender(self) -> None:
        """Send what the lobby decided, in the order it decided it."""
        while True:
            item = await self.sendq.get()
            try:
                if item[0] == "progress":
                    self.progress_queued.discard(item[1:])
                    built = self.lobby.progress(item[1], item[2])
                    if built is not None:
                        await self._emit_many("raceprogress", *built)
                elif item[0] == "emit_many":
                    await self._emit_many(item[1], item[2], item[3])
                elif item[0] == "emit":
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

    async def _emit_many(self, event: str, payload: Any, keys: list[ConnKey]) -> None:
        """One emit per namespace to a list of sids (each sid is a room of its own)."""
        for ns in NAMESPACES:
            sids = [sid for key_ns, sid in keys if key_ns == ns]
            if sids:
                await self.emit(event, payload, to=sids, namespace=ns)


async def serve(args: argparse.Namespace) -> None:
    limits = Limits(
        max_players=args.max_players,
        max_rooms=args.max_rooms,
        command_rate=args.command_rate or None,
        command_burst=args.command_burst,
        reconnect_grace=args.reconnect_grace,
    )
    extra: dict[str, Any] = {}
    if args.redis:
        extra["client_manager"] = socketio.AsyncRedisManager(args.redis, channel=args.redis_channel)
    sio = PeerServer(
        limits,
        **extra,
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
    parser.add_argument("--reconnect-grace", type=float, default=60.0, help="seconds a dropped seat is kept; 0: none")
    parser.add_argument("--ping-interval", type=float, default=25.0)
    parser.add_argument("--ping-timeout", type=float, default=20.0)
    parser.add_argument("--max-payload", type=int, default=1_000_000)
    parser.add_argument("--exit-on-stdin-close", action="store_true")
    parser.add_argument("--redis", metavar="URL", help="redis://HOST:PORT/DB: emit through python-socketio's AsyncRedisManager")
    parser.add_argument("--redis-channel", default="socketio", help="the AsyncRedisManager's pub/sub channel")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
