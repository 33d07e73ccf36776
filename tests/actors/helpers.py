"""Helpers shared by the actor tests (imported as ``actors.helpers``: tests/ is on the path)."""

from __future__ import annotations

from typing import Any

from roomactors.actors import RoomLimits

NO_RATE_LIMIT = RoomLimits(command_rate=None)


def make_deck(name: str = "Week 3", cards: int = 1, key: str = "flashcards", **extra: Any) -> dict[str, Any]:
    """A valid deck payload whose answers all contain the word ``secret``."""
    return {
        "name": name,
        key: [{"id": i + 1, "problem": f"{i}+1", "answer": f"secret-{i + 1}"} for i in range(cards)],
        **extra,
    }
