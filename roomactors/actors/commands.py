"""The command registry: every room-protocol command, named in one place.

Each :class:`CommandSpec` names a command, turns its raw JSON payload into a
frozen request dataclass (or ``invalid_payload``), and says which actor handles
it. Everything else reads this table: the lobby dispatches on it, ``app.py``
registers one Socket.IO handler per entry, the docs list the same names. So a
new command touches this file, the actor that handles it, ``docs/protocol.md``
and the tests (``docs/architecture.md`` has the whole checklist).

Parsing happens in the caller's task (a connection's reader), not in the lobby:
the request travels typed (or as the ProtocolError that refuses it, which the
lobby answers after the rate limit, since ``rate_limited`` comes first of all).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Generic, Literal, TypeVar

from .directory import RoomFilter
from .feed_validation import parse_join_target, parse_listed, parse_watch_rooms
from .records import UserId
from .validation import (
    MAX_ANSWER_CHARS,
    CreateRoomRequest,
    ProtocolError,
    UserClaim,
    invalid,
    is_number,
    json_type,
    parse_create_room,
    parse_credential,
    parse_join_lobby,
    parse_leave_lobby,
    parse_room_id,
    parse_user_id,
    require_object,
    shown,
)

R = TypeVar("R")

HandledBy = Literal["lobby", "room"]

COUNTDOWN_RANGE: Final = (0.0, 10.0)
"""``start_race`` ``countdown`` seconds, inclusive (default 3)."""
TIME_LIMIT_RANGE: Final = (10.0, 3600.0)
"""``start_race`` ``time_limit`` seconds, inclusive, or null: until all are done."""
DEFAULT_COUNTDOWN: Final = 3.0


# --- the requests: one frozen dataclass per command ------------------------------


@dataclass(frozen=True)
class JoinLobbyRequest:
    claim: UserClaim | None
    """None: only a ``credential`` was sent (signed identity)."""
    credential: str | None = field(default=None, repr=False)
    """A signed identity (race.md, "Identity"); never logged."""
    vouched: bool = False
    """Set only by trusted code (a cluster node that checked the identity itself,
    docs/cluster.md), never by the wire parser: the claim is taken as it stands
    (no credential needed) and a held seat is taken over without its token."""


@dataclass(frozen=True)
class LeaveLobbyRequest:
    id: UserId


@dataclass(frozen=True)
class JoinRoomRequest:
    """By ``id`` or by ``code`` (exactly one of them is set)."""

    id: int | None
    code: str | None = None


@dataclass(frozen=True)
class LeaveRoomRequest:
    id: int


@dataclass(frozen=True)
class WatchRoomsRequest:
    filter: RoomFilter
    limit: int


@dataclass(frozen=True)
class UnwatchRoomsRequest:
    pass


@dataclass(frozen=True)
class TimeSyncRequest:
    t0: int | float


@dataclass(frozen=True)
class StartRaceRequest:
    id: int
    countdown: float = DEFAULT_COUNTDOWN
    time_limit: float | None = None
    shuffle: bool = False
    late_join: bool = False


@dataclass(frozen=True)
class AnswerRequest:
    id: int
    race_id: int
    card: int
    answer: str | int | float = field(repr=False)  # may be right: kept out of logs


@dataclass(frozen=True)
class EndRaceRequest:
    id: int


@dataclass(frozen=True)
class RaceResultsRequest:
    id: int
    race_id: int | None = None


@dataclass(frozen=True)
class KickPlayerRequest:
    id: int
    user: UserId


@dataclass(frozen=True)
class LockRoomRequest:
    id: int
    locked: bool


RoomRequest = StartRaceRequest | AnswerRequest | EndRaceRequest | RaceResultsRequest | KickPlayerRequest | LockRoomRequest
"""The requests a room handles (every one names the room by ``id``)."""


# --- parsers ------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_int(raw: Mapping[str, Any], key: str, command: str, example: str) -> int:
    if key not in raw:
        raise invalid(f"{command} needs {key}, e.g. {example}")
    value = raw[key]
    if not _is_int(value) or value <= 0:
        raise invalid(f"{key} must be a positive integer, got {shown(value)}")
    return int(value)


def _seconds(raw: Mapping[str, Any], key: str, bounds: tuple[float, float], default: float | None,
             nullable: bool) -> float | None:
    value = raw.get(key)
    if value is None:
        if key in raw and not nullable:
            raise invalid(f"{key} must be a number of seconds from {bounds[0]:g} to {bounds[1]:g}, got null")
        return default
    if not is_number(value):
        raise invalid(f"{key} must be a number of seconds from {bounds[0]:g} to {bounds[1]:g}, got {json_type(value)}")
    if not bounds[0] <= value <= bounds[1]:
        raise invalid(f"{key} must be from {bounds[0]:g} to {bounds[1]:g} seconds, got {shown(value)}")
    return float(value)


def _flag(raw: Mapping[str, Any], key: str, default: bool | None) -> bool:
    """A boolean option; absent or null is ``default`` (None: the field is required)."""
    value = raw.get(key)
    if value is None:
        if default is None:
            raise invalid(f"{key} is missing: send true or false")
        return default
    if not isinstance(value, bool):
        raise invalid(f"{key} must be true or false, got {json_type(value)}")
    return value


def _room_id(payload: object, command: str) -> tuple[Mapping[str, Any], int]:
    raw = require_object(payload, command)
    return raw, parse_room_id(raw, command)


def parse_time_sync(payload: object) -> TimeSyncRequest:
    raw = require_object(payload, "time_sync")
    if "t0" not in raw:
        raise invalid('time_sync needs t0, your clock\'s time in milliseconds, e.g. {"t0": 1700000000000}')
    t0 = raw["t0"]
    if not is_number(t0):
        raise invalid(f"t0 must be a number (your clock in milliseconds), got {json_type(t0)}")
    return TimeSyncRequest(t0)


def parse_start_race(payload: object) -> StartRaceRequest:
    raw, room_id = _room_id(payload, "start_race")
    countdown = _seconds(raw, "countdown", COUNTDOWN_RANGE, DEFAULT_COUNTDOWN, nullable=False)
    assert countdown is not None
    time_limit = _seconds(raw, "time_limit", TIME_LIMIT_RANGE, None, nullable=True)
    return StartRaceRequest(room_id, countdown, time_limit, _flag(raw, "shuffle", False), _flag(raw, "late_join", False))


def parse_answer(payload: object) -> AnswerRequest:
    raw, room_id = _room_id(payload, "answer")
    race_id = _positive_int(raw, "race_id", "answer", '{"id": 1, "race_id": 1, "card": 0, "answer": "4"}')
    if "card" not in raw:
        raise invalid("answer needs card, the index of the card you answer (your next card)")
    card = raw["card"]
    if not _is_int(card) or card < 0:
        raise invalid(f"card must be a card index (an integer from 0), got {shown(card)}")
    if "answer" not in raw:
        raise invalid("answer needs answer: a string of at most 100 characters or a number")
    given = raw["answer"]
    if isinstance(given, str):
        if len(given) > MAX_ANSWER_CHARS:
            raise invalid(f"answer has {len(given)} characters; at most {MAX_ANSWER_CHARS} are allowed")
    elif not is_number(given):
        raise invalid(f"answer must be a string or a number, got {json_type(given)}")
    return AnswerRequest(room_id, race_id, int(card), given)


def parse_end_race(payload: object) -> EndRaceRequest:
    return EndRaceRequest(_room_id(payload, "end_race")[1])


def parse_race_results(payload: object) -> RaceResultsRequest:
    raw, room_id = _room_id(payload, "race_results")
    if raw.get("race_id") is None:
        return RaceResultsRequest(room_id)
    return RaceResultsRequest(room_id, _positive_int(raw, "race_id", "race_results", '{"id": 1, "race_id": 2}'))


def parse_kick_player(payload: object) -> KickPlayerRequest:
    raw, room_id = _room_id(payload, "kick_player")
    if "user" not in raw:
        raise invalid('kick_player needs user, the id of the player to kick, e.g. {"id": 1, "user": 7}')
    return KickPlayerRequest(room_id, parse_user_id(raw["user"], "user"))


def parse_lock_room(payload: object) -> LockRoomRequest:
    raw, room_id = _room_id(payload, "lock_room")
    return LockRoomRequest(room_id, _flag(raw, "locked", None))


# --- the registry -------------------------------------------------------------------------


@dataclass(frozen=True)
class CommandSpec(Generic[R]):
    """One command: its name, how its payload becomes a request, who handles it."""

    name: str
    parse: Callable[[object], R] = field(repr=False)
    handled_by: HandledBy
    changes_room: bool = False
    """For room commands: whether it may change what the lobby lists (state,
    lock, seats). The lobby then waits for the room's answer to update its
    directory; other room commands (``answer``) are forwarded, and the room
    answers the client itself, so the lobby never waits on the hot path."""
    anonymous: bool = False
    """Whether a connection that speaks for no user may send it."""

    def request(self, payload: object) -> R | ProtocolError:
        """The typed request, or the ``invalid_payload`` error that refuses it."""
        try:
            return self.parse(payload)
        except ProtocolError as error:
            return error


def _join_lobby(payload: object) -> JoinLobbyRequest:
    credential = parse_credential(payload)
    if credential is not None and "id" not in require_object(payload, "join_lobby"):
        return JoinLobbyRequest(None, credential)  # signed: the identity is in the credential
    return JoinLobbyRequest(parse_join_lobby(payload), credential)


def _leave_lobby(payload: object) -> LeaveLobbyRequest:
    return LeaveLobbyRequest(parse_leave_lobby(payload))


def _join_room(payload: object) -> JoinRoomRequest:
    target = parse_join_target(payload, "join_room")
    return JoinRoomRequest(None, target) if isinstance(target, str) else JoinRoomRequest(target)


def _leave_room(payload: object) -> LeaveRoomRequest:
    return LeaveRoomRequest(parse_room_id(payload, "leave_room"))


def _create_room(payload: object) -> CreateRoomRequest:
    request = parse_create_room(payload)
    listed = parse_listed(payload, request.deck.info)
    return request if listed else CreateRoomRequest(request.name, request.deck, request.host, listed=False)


def _watch_rooms(payload: object) -> WatchRoomsRequest:
    return WatchRoomsRequest(*parse_watch_rooms(payload))


def _unwatch_rooms(payload: object) -> UnwatchRoomsRequest:
    require_object(payload, "unwatch_rooms")
    return UnwatchRoomsRequest()


REGISTRY: Final[Mapping[str, CommandSpec[Any]]] = {
    spec.name: spec
    for spec in (
        CommandSpec("join_lobby", _join_lobby, "lobby", anonymous=True),
        CommandSpec("leave_lobby", _leave_lobby, "lobby"),
        CommandSpec("create_room", _create_room, "lobby", anonymous=True),
        CommandSpec("join_room", _join_room, "lobby"),
        CommandSpec("leave_room", _leave_room, "lobby"),
        CommandSpec("time_sync", parse_time_sync, "lobby", anonymous=True),
        CommandSpec("watch_rooms", _watch_rooms, "lobby", anonymous=True),
        CommandSpec("unwatch_rooms", _unwatch_rooms, "lobby", anonymous=True),
        CommandSpec("start_race", parse_start_race, "room", changes_room=True),
        CommandSpec("answer", parse_answer, "room"),
        CommandSpec("end_race", parse_end_race, "room", changes_room=True),
        CommandSpec("race_results", parse_race_results, "room"),
        CommandSpec("kick_player", parse_kick_player, "room", changes_room=True),
        CommandSpec("lock_room", parse_lock_room, "room", changes_room=True),
    )
}
"""Every command of protocol.md and race.md, by name."""

COMMANDS: Final = tuple(REGISTRY)
"""The command names, in the order the protocol documents them."""


def command_spec(name: str) -> CommandSpec[Any]:
    """The spec of ``name``; a ValueError (the caller's bug) for an unknown one."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown command {name!r}; the commands are {', '.join(COMMANDS)}") from None
