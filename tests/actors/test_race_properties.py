"""Random races against a model: starts, right and wrong answers, leaves, joins,
kicks, locks, ends and waits, on a mock clock.

After every step: each ack is the one the model predicts (error code, or
``{ok, card, correct, next}``); the newest ``raceprogress`` agrees with the
answers the model recorded; a ``raceover`` ranks by race.md's rule and gives
each player their own answers; and no event sent to any client, and no ack,
ever contains an expected answer, except ``raceover`` itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import trio
import trio.testing
from actors.helpers import NO_RATE_LIMIT
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from roomactors.actors import Lobby, MemoryClient, RoomRoute, open_lobby

ANSWERS = ("qz-ANSWER-zero", "qz-ANSWER-one", "qz-ANSWER-two")
PLAYERS = ("a", "b", "c")
DECK = {"name": "d", "flashcards": [{"id": i, "problem": f"p{i}", "answer": a} for i, a in enumerate(ANSWERS)]}

starts = st.tuples(st.just("start"), st.sampled_from([0, 0.5, 1]), st.sampled_from([None, 10]), st.booleans())
answers = st.tuples(st.just("answer"), st.sampled_from(PLAYERS), st.booleans(), st.sampled_from([0, 0, 0, 0, 1]))
steps = st.one_of(
    starts,
    answers, answers, answers, answers, answers,  # answers weigh more: races get to their end
    *[st.tuples(st.just("answer_all"), st.sampled_from(PLAYERS), st.booleans())] * 3,
    st.tuples(st.just("leave"), st.sampled_from(PLAYERS)),
    st.tuples(st.just("join"), st.sampled_from(PLAYERS)),
    st.tuples(st.just("kick"), st.sampled_from(PLAYERS)),
    st.tuples(st.just("lock"), st.booleans()),
    st.tuples(st.just("end"),),
    st.tuples(st.just("wait"), st.sampled_from([0.05, 0.3, 2, 11])),
    st.tuples(st.just("wait"), st.sampled_from([0.3, 11])),
)


@dataclass
class RacerModel:
    answers: list[tuple[int, Any, bool, int]] = field(default_factory=list)  # index, given, correct, ms
    left: bool = False

    @property
    def correct(self) -> int:
        return sum(1 for a in self.answers if a[2])


@dataclass
class RaceModel:
    race_id: int
    start_ms: int  # trio ms of start_at
    end_ms: int
    late_join: bool
    racers: dict[str, RacerModel]
    reason: str | None = None

    def all_done(self) -> bool:
        return all(len(r.answers) == len(ANSWERS) for r in self.racers.values() if not r.left)


def now_ms() -> int:
    return round(trio.current_time() * 1000)


def expected_ranking(race: RaceModel) -> list[tuple[int, str]]:
    """race.md's rule, written again independently of the server's."""
    def key(item: tuple[str, RacerModel]) -> tuple[Any, ...]:
        racer = item[1]
        time_ms = racer.answers[-1][3] if racer.answers else None
        return (not racer.answers, -racer.correct, time_ms if time_ms is not None else 10**12, -len(racer.answers))

    ordered = sorted(race.racers.items(), key=key)
    places: list[tuple[int, str]] = []
    for i, item in enumerate(ordered):
        same = i > 0 and key(ordered[i - 1]) == key(item)
        places.append((places[-1][0] if same else i + 1, item[0]))
    return places


class RoutedMemoryClient(MemoryClient):
    """A player whose answers take the direct line the lobby hands it, as a
    socket's do (roomactors/actors/routes.py), and which never lets go of it:
    after a kick or a leave its answers still go to the room directly, as an
    answer that crossed the kick would, and the room must hand them back."""

    route: RoomRoute | None = None

    def route_room(self, route: RoomRoute | None) -> None:
        if route is not None:
            self.route = route


class Scenario:
    def __init__(self, lobby: Lobby, routed: bool = False) -> None:
        self.lobby = lobby
        self.host = MemoryClient("host")
        self.watcher = MemoryClient("watcher")
        player = RoutedMemoryClient if routed else MemoryClient
        self.clients = {p: player(p) for p in PLAYERS}
        self.direct = 0  # answers that went the direct way
        self.stale = 0  # ... of them on a line gone stale
        self.room = 0
        self.members: list[str] = []
        self.banned: set[str] = set()
        self.locked = False
        self.race: RaceModel | None = None
        self.races = 0
        self.acks: list[Any] = []

    async def setup(self) -> None:
        for client in (self.host, self.watcher, *self.clients.values()):
            await self.lobby.connect(client)
        await self.lobby.join_lobby(self.host, "host")
        self.room = (await self.lobby.create_room(self.host, "R", DECK))["room"]["id"]
        for p, client in self.clients.items():
            await self.lobby.join_lobby(client, p, username=p.upper())
            assert (await self.lobby.join_room(client, self.room))["ok"]
            self.members.append(p)

    def running(self) -> RaceModel | None:
        race = self.race
        if race is not None and race.reason is None and now_ms() >= race.end_ms:
            race.reason = "time_up"
        return race if race is not None and race.reason is None else None

    async def command(self, client: MemoryClient, name: str, payload: dict[str, Any], expect: str | None) -> Any:
        route = client.route if isinstance(client, RoutedMemoryClient) else None
        if route is not None:
            self.direct += 1
            if client.name not in self.members:
                self.stale += 1  # kicked or gone: the room must hand it back
            ack = await self.lobby.command_routed(client, route, name, payload)
        else:
            ack = await self.lobby.command(client, name, payload)
        self.acks.append(ack)
        if expect is None:
            assert ack["ok"] is True, (name, payload, ack)
        else:
            assert ack["ok"] is False and ack["error"]["code"] == expect, (name, payload, ack, expect)
        return ack

    def _left(self, p: str) -> None:
        race = self.running()
        if race is not None and p in race.racers:
            race.racers[p].left = True
            if race.all_done():
                race.reason = "all_done"

    async def answer(self, p: str, right: bool, skip: int) -> None:
        race = self.running()
        racer = race.racers.get(p) if race else None
        last = self.race
        if last is None or last.racers.get(p) is None or last.racers[p].left:
            expect = "not_racing"
        elif last.reason is not None:
            expect = "race_over"
        elif now_ms() < last.start_ms:
            expect = "race_not_started"
        elif skip or len(last.racers[p].answers) == len(ANSWERS):
            expect = "wrong_card"
        else:
            expect = None
        card = (len(last.racers[p].answers) if last and p in last.racers else 0) + skip
        given = ANSWERS[card % len(ANSWERS)].upper() if right else f"wrong {card}"
        race_id = last.race_id if last else 1
        payload = {"id": self.room, "race_id": race_id, "card": card, "answer": given}
        ack = await self.command(self.clients[p], "answer", payload, expect)
        if expect is None:
            assert race is not None and racer is not None
            racer.answers.append((card, given, right, now_ms() - race.start_ms))
            done = len(racer.answers) == len(ANSWERS)
            assert ack == {"ok": True, "card": card, "correct": right, "next": None if done else card + 1}
            if race.all_done():
                race.reason = "all_done"

    async def step(self, step: tuple[Any, ...]) -> None:
        kind = step[0]
        race = self.running()
        if kind == "start":
            _, countdown, limit, late = step
            expect = "race_in_progress" if race else "no_players" if not self.members else None
            payload = {"id": self.room, "countdown": countdown, "time_limit": limit, "late_join": late}
            start = now_ms()
            ack = await self.command(self.host, "start_race", payload, expect)
            if expect is None:
                self.races += 1
                assert ack["race_id"] == self.races
                start_ms = start + round(countdown * 1000)
                self.race = RaceModel(self.races, start_ms, start_ms + (limit or 3600) * 1000, late,
                                      {p: RacerModel() for p in self.members})
                self.locked = self.locked or not late
        elif kind == "answer":
            _, p, right, skip = step
            await self.answer(p, right, skip)
        elif kind == "answer_all":  # a player answers every card left, at once
            for _ in ANSWERS:
                await self.answer(step[1], step[2], 0)
        elif kind == "leave":
            p = step[1]
            expect = None if p in self.members else "not_in_room"
            await self.command(self.clients[p], "leave_room", {"id": self.room}, expect)
            if expect is None:
                self.members.remove(p)
                self._left(p)
        elif kind == "join":
            p = step[1]
            if p in self.members:
                expect = None
            elif p in self.banned:
                expect = "banned"
            elif self.locked:
                expect = "room_locked"
            elif race is not None and not race.late_join:
                expect = "race_in_progress"
            else:
                expect = None
            await self.command(self.clients[p], "join_room", {"id": self.room}, expect)
            if expect is None and p not in self.members:
                self.members.append(p)
                if race is not None:
                    race.racers.setdefault(p, RacerModel()).left = False
        elif kind == "kick":
            p = step[1]
            expect = None if p in self.members else "not_in_room"
            await self.command(self.host, "kick_player", {"id": self.room, "user": p}, expect)
            if expect is None:
                self.members.remove(p)
                self.banned.add(p)
                self._left(p)
        elif kind == "lock":
            await self.command(self.host, "lock_room", {"id": self.room, "locked": step[1]}, None)
            self.locked = step[1]
        elif kind == "end":
            await self.command(self.host, "end_race", {"id": self.room}, None if race else "not_racing")
            if race is not None:
                race.reason = "host_ended"
        elif kind == "wait":
            await trio.sleep(step[1])
        await trio.sleep(0.25)  # let the newest raceprogress go out (due at most 200 ms after a change)
        self.running()  # the model's own time limit
        self.check()

    def check(self) -> None:
        race = self.race
        for p, client in self.clients.items():
            events = client.events
            for name, payload in events:
                if name != "raceover":
                    text = json.dumps(payload)
                    assert not any(a.casefold() in text.casefold() for a in ANSWERS), (p, name, payload)
        for name, payload in self.host.events + self.watcher.events:
            if name != "raceover":
                assert not any(a.casefold() in json.dumps(payload).casefold() for a in ANSWERS)
        acks = json.dumps(self.acks).casefold()
        assert not any(a.casefold() in acks for a in ANSWERS)
        if race is None:
            return
        progress = [e for e in self.host.events_named("raceprogress") if e["race_id"] == race.race_id]
        if race.reason is None and progress:
            assert [(q["id"], q["answered"], q["correct"], q["connected"]) for q in progress[-1]["players"]] == [
                (p, len(r.answers), r.correct, not r.left) for p, r in race.racers.items()
            ]
        overs = [e for e in self.host.events_named("raceover") if e["race_id"] == race.race_id]
        if race.reason is None:
            assert overs == []
            return
        assert len(overs) == 1 and overs[0]["reason"] == race.reason
        event(f"a race ended: {race.reason}")
        over = overs[0]
        assert [(r["place"], r["id"]) for r in over["ranking"]] == expected_ranking(race)
        for entry in over["ranking"]:
            racer = race.racers[entry["id"]]
            assert (entry["correct"], entry["answered"], entry["left"]) == (racer.correct, len(racer.answers), racer.left)
        assert over["mine"] == []
        for p, racer in race.racers.items():
            theirs = [e for e in self.clients[p].events_named("raceover") if e["race_id"] == race.race_id]
            if racer.left:
                assert theirs == [] or p in self.members  # left (or kicked) before the end: no raceover
                continue
            assert len(theirs) == 1
            assert theirs[0]["mine"] == [
                {"index": i, "given": g, "correct": c, "ms": ms} for i, g, c, ms in racer.answers
            ]


async def run_scenario(script: list[tuple[Any, ...]], routed: bool = False) -> None:
    async with open_lobby(NO_RATE_LIMIT) as lobby:
        scenario = Scenario(lobby, routed)
        await scenario.setup()
        for step in script:
            await scenario.step(step)
        if routed:
            event(f"direct answers: {'some' if scenario.direct else 'none'}")
            event(f"answers on a stale line: {'some' if scenario.stale else 'none'}")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(starts, st.lists(steps, max_size=60))
def test_random_races_follow_the_model(first: tuple[Any, ...], script: list[tuple[Any, ...]]) -> None:
    """Scripts open with a start_race, so that most examples race."""
    trio.run(run_scenario, [first, *script], clock=trio.testing.MockClock(autojump_threshold=0))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(starts, st.lists(steps, max_size=60))
def test_random_races_follow_the_model_with_direct_answers(first: tuple[Any, ...], script: list[tuple[Any, ...]]
                                                            ) -> None:
    """The same, with players whose answers go straight to the room once the
    lobby gave them the line, and keep going there when it is stale (after a
    kick or a leave): the room hands those back to the lobby, and every ack and
    event is still the model's."""
    trio.run(run_scenario, [first, *script], True, clock=trio.testing.MockClock(autojump_threshold=0))
