"""Payload rules of the lobby-at-scale commands: ``watch_rooms``, ``join_room
{code}`` and ``create_room``'s ``listed`` (protocol.md, "Room codes and the room feed").

Pure functions like :mod:`.validation`, whose helpers they use: raw JSON in,
typed values or ``ProtocolError`` (always ``invalid_payload``) out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .codes import MAX_CODE_INPUT_CHARS
from .directory import DEFAULT_FEED_LIMIT, MAX_FEED_LIMIT, ROOM_STATES, RoomFilter
from .records import DeckInfo
from .validation import (
    MAX_NAME_CHARS,
    _is_int,
    invalid,
    parse_user_id,
    require_object,
)
from .validation import json_type as _json_type
from .validation import shown as _shown


def parse_join_target(payload: object, command: str = "join_room") -> int | str:
    """``{id}`` (a positive integer) or ``{code}`` (a string of 1 to 16
    characters, not trimmed), never both: the room id, or the code as sent."""
    raw = require_object(payload, command)
    has_id, has_code = "id" in raw, "code" in raw
    if has_id and has_code:
        raise invalid(f"{command} takes a room id or a room code, not both")
    if has_code:
        code = raw["code"]
        if not isinstance(code, str):
            raise invalid(f"a room code is a string such as \"K7MX2Q\", got {_json_type(code)}")
        if not 1 <= len(code) <= MAX_CODE_INPUT_CHARS:
            raise invalid(f"a room code has 1 to {MAX_CODE_INPUT_CHARS} characters, got {len(code)}")
        return code
    if not has_id:
        raise invalid(f"{command} needs the room id or code, e.g. {{\"code\": \"K7MX2Q\"}} or {{\"id\": 1}}")
    value = raw["id"]
    if not _is_int(value) or value <= 0:
        raise invalid(f"a room id is a positive integer, got {_shown(value)}")
    return int(value)


def parse_listed(payload: object, deck: DeckInfo) -> bool:
    """``create_room``'s ``listed``: a boolean; absent or null follows the
    deck (a deck with ``private: true`` makes an unlisted room)."""
    raw = require_object(payload, "create_room")
    listed = raw.get("listed")
    if listed is None:
        return deck.private is not True
    if not isinstance(listed, bool):
        raise invalid(f"listed must be true or false, got {_json_type(listed)}")
    return listed


def parse_watch_rooms(payload: object) -> tuple[RoomFilter, int]:
    """``watch_rooms {filter?, limit?}``: the filter and the limit (default 100).

    Unknown filter keys are ignored (for later versions of the protocol);
    ``null`` means absent.
    """
    raw = require_object(payload, "watch_rooms")
    limit = raw.get("limit")
    if limit is None:
        limit = DEFAULT_FEED_LIMIT
    elif not _is_int(limit) or not 1 <= limit <= MAX_FEED_LIMIT:
        raise invalid(f"limit must be an integer from 1 to {MAX_FEED_LIMIT}, got {_shown(limit)}")
    spec = raw.get("filter")
    if spec is None:
        return RoomFilter(), int(limit)
    if not isinstance(spec, Mapping):
        raise invalid(f"filter must be an object, got {_json_type(spec)}")
    return _parse_filter(spec), int(limit)


def _parse_filter(spec: Mapping[str, Any]) -> RoomFilter:
    states: frozenset[str] | None = None
    state = spec.get("state")
    if state is not None:
        names = state if isinstance(state, list) else [state]
        for name in names:
            if not isinstance(name, str) or name not in ROOM_STATES:
                shown = repr(name) if isinstance(name, str) and len(name) <= 20 else _json_type(name)
                raise invalid(f"filter.state takes {', '.join(ROOM_STATES)} (or a list of them), got {shown}")
        states = frozenset(names)
    has_seats = spec.get("has_seats")
    if has_seats is not None and not isinstance(has_seats, bool):
        raise invalid(f"filter.has_seats must be true or false, got {_json_type(has_seats)}")
    name = spec.get("name")
    if name is not None:
        if not isinstance(name, str):
            raise invalid(f"filter.name must be a string, got {_json_type(name)}")
        if len(name) > MAX_NAME_CHARS:
            raise invalid(f"filter.name has {len(name)} characters; room names have at most {MAX_NAME_CHARS}")
        name = name.casefold()
    host = spec.get("host")
    if host is not None:
        host = parse_user_id(host, "filter.host")
    return RoomFilter(states=states, has_seats=has_seats, name=name, host=host)
