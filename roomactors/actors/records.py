"""Value types of the room protocol: users, cards, decks and room summaries.

They are frozen so that actors can hand them to each other and to connections
without copying, and so that nobody outside the room actor can edit a deck.
Deck answers live only in :class:`Card`, whose ``answer`` is kept out of every
``repr`` (and so out of every log line and traceback that prints one); nothing
in a summary or in JSON output ever reaches the cards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeAlias

UserId: TypeAlias = int | str
"""A user id: an integer, or a non-empty string of at most 64 characters."""

Scalar: TypeAlias = str | int | float | bool | None
"""What an optional deck field may hold."""

JsonDict: TypeAlias = dict[str, Any]


@dataclass(frozen=True)
class User:
    """Who a connection speaks for, as every client sees it in ``updaterooms``."""

    id: UserId
    username: str | None = None
    auth_level: str | None = None

    def to_json(self) -> JsonDict:
        return {"id": self.id, "username": self.username, "auth_level": self.auth_level}


@dataclass(frozen=True)
class Card:
    """One flashcard. The answer is the game's secret: it stays out of reprs."""

    id: int | str
    problem: str | int | float
    answer: str | int | float = field(repr=False)


DECK_INFO_FIELDS: tuple[str, ...] = (
    "id",
    "name",
    "description",
    "numProblems",
    "user_id",
    "user_name",
    "created",
    "changed",
    "private",
)
"""The deck fields a room summary shows, in the order protocol.md lists them."""


@dataclass(frozen=True)
class DeckInfo:
    """The public face of a deck: what ``updaterooms`` shows (never the cards)."""

    name: str
    num_problems: int
    id: Scalar = None
    description: Scalar = None
    user_id: Scalar = None
    user_name: Scalar = None
    created: Scalar = None
    changed: Scalar = None
    private: Scalar = None

    def to_json(self) -> JsonDict:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "numProblems": self.num_problems,
            "user_id": self.user_id,
            "user_name": self.user_name,
            "created": self.created,
            "changed": self.changed,
            "private": self.private,
        }


@dataclass(frozen=True)
class Deck:
    """A deck as a room holds it: public info plus the cards (answers included).

    Only the room actor keeps a ``Deck``; everything it hands out is ``info``.
    """

    info: DeckInfo
    cards: tuple[Card, ...] = field(repr=False)

    def __repr__(self) -> str:  # a dataclass repr would be fine too; this one says why
        return f"Deck(info={self.info!r}, cards=<{len(self.cards)} cards, hidden>)"


ROOM_STATES: tuple[str, ...] = ("waiting", "countdown", "racing", "finished")
"""A room's phases, in the order a race goes through them (race.md)."""


@dataclass(frozen=True)
class RoomSummary:
    """One entry of ``updaterooms``: what every client may know about a room."""

    id: int
    name: str
    host: User
    deck: DeckInfo
    players: tuple[User, ...]
    max_players: int
    state: str = "waiting"
    locked: bool = False
    offline: frozenset[UserId] = frozenset()
    """Seated users whose connection is gone but whose seat is kept
    (``connected: false`` in lists); empty until seats outlive connections."""
    late_join: bool = False
    """The running race lets newcomers join (not shown in lists; the room
    feed's ``has_seats`` filter reads it)."""

    def seats(self, user_id: UserId) -> bool:
        """True when the user sits in this room, as its host or as a player."""
        return self.host.id == user_id or any(p.id == user_id for p in self.players)

    @property
    def full(self) -> bool:
        return len(self.players) >= self.max_players

    def to_json(self) -> JsonDict:
        return {
            "id": self.id,
            "name": self.name,
            "host": self._user_json(self.host),
            "deck": self.deck.to_json(),
            "players": [self._user_json(p) for p in self.players],
            "max_players": self.max_players,
            "state": self.state,
            "locked": self.locked,
        }

    def _user_json(self, user: User) -> JsonDict:
        return {**user.to_json(), "connected": user.id not in self.offline}
