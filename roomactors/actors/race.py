"""One race's state and rules, with no actor and no clock of its own.

The room actor owns a :class:`Race` and passes it the server time (epoch
milliseconds, see :mod:`.clock`) of everything that happens; this module decides
and records, and builds the JSON of race.md's events. Keeping it free of tasks
and sockets lets the rules be tested on their own. The expected answers live
in ``_expected`` and the cards; only :meth:`Race.over_json` and
:meth:`Race.results_json` (for after the race) ever put them in JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .matching import Expected, expected, is_correct
from .records import Card, JsonDict, User, UserId


@dataclass(frozen=True)
class Given:
    """One recorded answer: card index, what was given, whether it was right, when."""

    index: int
    given: str | int | float = field(repr=False)
    correct: bool
    ms: int

    def to_json(self) -> JsonDict:
        return {"index": self.index, "given": self.given, "correct": self.correct, "ms": self.ms}


@dataclass
class Racer:
    """A player of one race: where they are and what they answered."""

    user: User
    answers: list[Given] = field(default_factory=list, repr=False)
    correct: int = 0
    left: bool = False

    @property
    def next(self) -> int:
        return len(self.answers)

    @property
    def time_ms(self) -> int | None:
        return self.answers[-1].ms if self.answers else None


def rank_key(racer: Racer) -> tuple[bool, int, float, int]:
    """race.md: most correct, then smallest time_ms, then most answered; never answered last."""
    answered = len(racer.answers)
    time_ms = racer.time_ms
    return (answered == 0, -racer.correct, float("inf") if time_ms is None else time_ms, -answered)


def ranked(racers: list[Racer]) -> list[tuple[int, Racer]]:
    """Racers with their places: equal keys share a place, the next one skips (1, 1, 3)."""
    ordered = sorted(racers, key=rank_key)  # stable: joining order among equals
    places: list[tuple[int, Racer]] = []
    for position, racer in enumerate(ordered, start=1):
        if places and rank_key(places[-1][1]) == rank_key(racer):
            places.append((places[-1][0], racer))
        else:
            places.append((position, racer))
    return places


class Race:
    """One race of a room: its cards in race order, its racers, its end."""

    def __init__(
        self,
        room_id: int,
        race_id: int,
        cards: tuple[Card, ...],
        players: list[User],
        start_at: int,
        end_at: int,
        late_join: bool,
    ) -> None:
        self.room_id = room_id
        self.race_id = race_id
        self._cards = cards
        self._expected: tuple[Expected, ...] = tuple(expected(card.answer) for card in cards)
        self.start_at = start_at
        self.end_at = end_at
        self.late_join = late_join
        self.racers: dict[UserId, Racer] = {user.id: Racer(user) for user in players}
        self.reason: str | None = None
        """Why it ended (``raceover``'s reason); None while it runs."""
        self._base: JsonDict | None = None

    def __repr__(self) -> str:
        return f"Race(room={self.room_id}, id={self.race_id}, racers={len(self.racers)}, reason={self.reason!r})"

    @property
    def over(self) -> bool:
        return self.reason is not None

    def state(self, now_ms: int) -> str:
        if self.reason is not None:
            return "finished"
        return "countdown" if now_ms < self.start_at else "racing"

    def done(self, racer: Racer) -> bool:
        return racer.next >= len(self._cards)

    def all_done(self) -> bool:
        """Every racer still in the race has answered every card."""
        return all(self.done(r) for r in self.racers.values() if not r.left)

    def record(self, racer: Racer, given: str | int | float, now_ms: int) -> bool:
        """Check ``given`` against the racer's next card and move them on."""
        index = racer.next
        correct = is_correct(self._expected[index], given)
        racer.answers.append(Given(index, given, correct, now_ms - self.start_at))
        racer.correct += correct
        return correct

    def next_of(self, racer: Racer) -> int | None:
        return None if self.done(racer) else racer.next

    # --- JSON of the events; answers only in over_json / results_json ------------------

    def cards_json(self) -> list[JsonDict]:
        return [{"index": i, "problem": card.problem} for i, card in enumerate(self._cards)]

    def players_json(self) -> list[JsonDict]:
        return [{"id": r.user.id, "username": r.user.username} for r in self.racers.values()]

    def start_json(self, now_ms: int) -> JsonDict:
        return {
            "id": self.room_id, "race_id": self.race_id, "start_at": self.start_at, "end_at": self.end_at,
            "server_ms": now_ms, "cards": self.cards_json(), "players": self.players_json(),
        }

    def progress_players(self, offline: frozenset[UserId] = frozenset()) -> list[JsonDict]:
        return [
            {
                "id": r.user.id, "username": r.user.username, "answered": r.next, "correct": r.correct,
                "done": self.done(r), "time_ms": r.time_ms, "connected": not r.left and r.user.id not in offline,
            }
            for r in self.racers.values()
        ]

    def progress_json(self, now_ms: int, offline: frozenset[UserId] = frozenset()) -> JsonDict:
        return {"id": self.room_id, "race_id": self.race_id, "server_ms": now_ms,
                "players": self.progress_players(offline)}

    def state_json(self, now_ms: int, user_id: UserId, offline: frozenset[UserId] = frozenset()) -> JsonDict:
        racer = self.racers.get(user_id)
        return {
            "id": self.room_id, "race_id": self.race_id, "state": self.state(now_ms), "start_at": self.start_at,
            "end_at": self.end_at, "server_ms": now_ms, "cards": self.cards_json(),
            "next": None if racer is None else self.next_of(racer), "progress": self.progress_players(offline),
        }

    def _results_base(self) -> JsonDict:
        assert self.reason is not None, "answers are revealed only once the race is over"
        if self._base is None:  # built once: raceover goes to every member
            self._base = self._build_results_base()
        return self._base

    def _build_results_base(self) -> JsonDict:
        assert self.reason is not None
        return {
            "id": self.room_id,
            "race_id": self.race_id,
            "reason": self.reason,
            "ranking": [
                {
                    "place": place, "id": r.user.id, "username": r.user.username, "correct": r.correct,
                    "answered": r.next, "time_ms": r.time_ms, "left": r.left,
                }
                for place, r in ranked(list(self.racers.values()))
            ],
            "cards": [
                {"index": i, "problem": card.problem, "answer": card.answer} for i, card in enumerate(self._cards)
            ],
        }

    def over_json(self, user_id: UserId | None) -> JsonDict:
        """``raceover`` for one member: the host's ``mine`` is empty."""
        racer = self.racers.get(user_id) if user_id is not None else None
        mine = [] if racer is None else [g.to_json() for g in racer.answers]
        return {**self._results_base(), "mine": mine}

    def results_json(self) -> JsonDict:
        """``race_results``: raceover's fields without ``mine``, plus every racer's answers."""
        answers: list[Any] = [
            {"id": r.user.id, "username": r.user.username, "mine": [g.to_json() for g in r.answers]}
            for r in self.racers.values()
        ]
        return {**self._results_base(), "answers": answers}
