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


async def joined(lobby: Lobby, name: str) -> MemoryClient:
    client = MemoryClient(name, transcript=True)
    await lobby.connect(client)
    ack = await lobby.join_lobby(client, name, username=name.upper())
    assert ack["ok"] is True, ack
    return client


async def room_with_players(
    lobby: Lobby, *players: str, answers: tuple[str, ...] = ANSWERS
) -> tuple[int, MemoryClient, list[MemoryClient]]:
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
