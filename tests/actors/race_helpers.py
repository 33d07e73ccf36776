"""Helpers for the race tests (imported as ``actors.race_helpers``)."""

from __future__ import annotations

from typing import Any

from roomactors.actors import Lobby, MemoryClient

Ack = dict[str, Any]

ANSWERS = ("zebra-ANSWER-0", "3/4", "yak-ANSWER-2")
"""A deck's answers: distinctive strings (and one rational), so that a scan of
everything sent can tell whether an answer leaked."""


def race_deck(answers: tuple[str, ...] = ANSWERS) -> dict[str, Any]:
    return {
        "name": "Race deck",
        "flashcards": [{"id": i + 1, "problem": f"problem {i}", "answer": a} for i, a in enumerate(answers)],
    }


def code(ack: Ack) -> str:
    assert ack["ok"] is False, ack
    assert ack["error"]["message"]
    return str(ack["error"]["code"])


class Seat(MemoryClient):
    """A MemoryClient that keeps its seat token (race.md, "Identity"), to come back with."""

    token: str | None = None


async def joined(lobby: Lobby, name: str) -> Seat:
    client = Seat(name, transcript=True)
    await lobby.connect(client)
    ack = await lobby.join_lobby(client, name, username=name.upper())
    assert ack["ok"] is True, ack
    client.token = ack["token"]
    return client


async def room_with_players(
    lobby: Lobby, *players: str, answers: tuple[str, ...] = ANSWERS
) -> tuple[int, Seat, list[Seat]]:
    host = await joined(lobby, "host")
    ack = await lobby.create_room(host, "Race room", race_deck(answers))
    assert ack["ok"] is True, ack
    room_id = int(ack["room"]["id"])
    clients = []
    for name in players:
        client = await joined(lobby, name)
        assert (await lobby.join_room(client, room_id))["ok"] is True
        clients.append(client)
    return room_id, host, clients


def sent_names(client: MemoryClient) -> list[str]:
    return [name for name, _ in client.events]


MATCHING: list[tuple[Any, Any, bool]] = [
    # (given, expected, correct): race.md's matching rule as a table
    ("4", "4", True),
    ("4.0", "4", True),
    (4, "4", True),
    ("8/2", 4, True),
    ("0.75", "3/4", True),
    ("3/4", "0.7500", True),
    (0.1, "1/10", True),  # a JSON number through its shortest decimal form
    (0.3, 0.3, True),
    (4.0, "4", True),
    ("-0", "0", True),
    ("+5", "5", True),
    (".5", "1/2", True),
    ("1e3", "1000", True),
    ("1e-20", "0.00000000000000000001", True),
    ("1e21", "1000000000000000000000", False),  # exponent beyond 20: text only
    ("1E21", "1e21", True),  # ... which still matches as text
    ("1e999999999", "1e999999999", True),  # and never builds the rational
    ("1e999999999", "2e999999999", False),
    ("  Paris ", "paris", True),  # trimmed, case-folded
    ("PARIS", "Paris", True),
    ("new \t  york", "New York", True),  # inner whitespace collapsed
    ("newyork", "New York", False),
    ("ｐａｒｉｓ", "paris", True),  # NFKC: full-width letters
    ("４２", 42, True),  # NFKC: full-width digits, then a rational
    ("Straße", "STRASSE", True),  # case folding, not lower()
    ("3 / 4", "3/4", False),  # not a rational, and not the same text
    ("1/0", "1/0", True),  # not a rational, the same text
    ("1/0", "0", False),
    ("four", 4, False),
    ("x", "y", False),
    ("", "0", False),
]
