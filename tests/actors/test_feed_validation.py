"""Payload rules of watch_rooms, join_room {code} and create_room's listed."""

from __future__ import annotations

from typing import Any

import pytest

from roomactors.actors import ProtocolError
from roomactors.actors.directory import RoomFilter
from roomactors.actors.feed_validation import (
    parse_join_target,
    parse_listed,
    parse_watch_rooms,
)
from roomactors.actors.records import DeckInfo


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({}, (RoomFilter(), 100)),
        ({"limit": None, "filter": None}, (RoomFilter(), 100)),
        ({"limit": 1000}, (RoomFilter(), 1000)),
        ({"filter": {"state": "racing"}}, (RoomFilter(states=frozenset({"racing"})), 100)),
        ({"filter": {"state": []}}, (RoomFilter(states=frozenset()), 100)),
        ({"filter": {"state": ["waiting", "finished"], "has_seats": True}},
         (RoomFilter(states=frozenset({"waiting", "finished"}), has_seats=True), 100)),
        ({"filter": {"name": "FRACtions", "host": "7", "later": {"x": 1}}},
         (RoomFilter(name="fractions", host="7"), 100)),
        ({"filter": {"host": 7, "name": None, "state": None}}, (RoomFilter(host=7), 100)),
    ],
)
def test_watch_rooms_accepts(payload: dict[str, Any], expected: tuple[RoomFilter, int]) -> None:
    assert parse_watch_rooms(payload) == expected


@pytest.mark.parametrize(
    "payload",
    [
        [], {"limit": 0}, {"limit": 1001}, {"limit": 5.5}, {"limit": True}, {"limit": "5"},
        {"filter": []}, {"filter": "racing"}, {"filter": {"state": "Racing"}}, {"filter": {"state": "lobby"}},
        {"filter": {"state": ["waiting", 3]}}, {"filter": {"has_seats": 1}}, {"filter": {"name": 3}},
        {"filter": {"name": "x" * 101}}, {"filter": {"host": True}}, {"filter": {"host": ""}},
    ],
)
def test_watch_rooms_refuses(payload: Any) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_watch_rooms(payload)
    assert info.value.code == "invalid_payload"


def test_join_target() -> None:
    assert parse_join_target({"id": 3}) == 3
    assert parse_join_target({"code": "k7mx2q"}) == "k7mx2q"
    assert parse_join_target({"code": " x "}) == " x "  # not trimmed: an unknown code, not a bad payload
    for bad in ({"id": 1, "code": "ABCDEF"}, {"code": None}, {"code": ""}, {"code": "x" * 17}, {"code": 5}, {},
                {"id": 0}, {"id": None, "code": "ABCDEF"}):
        with pytest.raises(ProtocolError) as info:
            parse_join_target(bad)
        assert info.value.code == "invalid_payload", bad


def test_listed_follows_the_deck_unless_given() -> None:
    public, private = DeckInfo("d", 1), DeckInfo("d", 1, private=True)
    assert parse_listed({}, public) and not parse_listed({}, private)
    assert parse_listed({"listed": True}, private) and not parse_listed({"listed": False}, public)
    assert not parse_listed({"listed": None}, private)
    with pytest.raises(ProtocolError):
        parse_listed({"listed": "no"}, public)
