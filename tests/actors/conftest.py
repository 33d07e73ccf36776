"""Fixtures for the actor tests: a running lobby and a deck factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from roomactors.actors import Lobby, RoomLimits, open_lobby

NO_RATE_LIMIT = RoomLimits(command_rate=None)


def make_deck(name: str = "Week 3", cards: int = 1, key: str = "flashcards", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        key: [{"id": i + 1, "problem": f"{i}+1", "answer": f"secret-{i + 1}"} for i in range(cards)],
        **extra,
    }


@pytest.fixture
async def lobby() -> AsyncIterator[Lobby]:
    async with open_lobby(NO_RATE_LIMIT) as lobby:
        yield lobby
