"""The race in the room actor, through the embedding API, on ``autojump_clock``.

Every time is exact: the lobby's clock is trio's (plus one epoch offset), so a
test knows to the millisecond when the countdown ends, when an answer was
recorded and when the time limit strikes.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing
from actors.helpers import NO_RATE_LIMIT
from actors.race_helpers import (
    ANSWERS,
    Ack,
    code,
    joined,
    race_deck,
    room_with_players,
    sent_names,
)

from roomactors.actors import Lobby, MemoryClient, RoomLimits, open_lobby


@pytest.fixture
async def lobby() -> AsyncIterator[Lobby]:
    """Tests request ``autojump_clock`` themselves (pytest-trio takes the clock
    from the test's own arguments)."""
    async with open_lobby(NO_RATE_LIMIT) as lobby:
        yield lobby


async def answer(lobby: Lobby, client: MemoryClient, room: int, race: int, card: int, given: Any) -> Ack:
    return await lobby.answer(client, room, race, card, given)


async def listed(lobby: Lobby, room_id: int) -> dict[str, Any]:
    await trio.testing.wait_all_tasks_blocked()
    snapshot = await lobby.snapshot()
    return next(r for r in snapshot.rooms.to_json() if r["id"] == room_id)


def server_ms_now(lobby: Lobby, ack: Ack, countdown_ms: int, started: float) -> int:
    """The server time now, from a start_race ack taken at trio time ``started``."""
    return int(ack["start_at"]) - countdown_ms + round((trio.current_time() - started) * 1000)


async def test_countdown_then_racing_at_start_at_exactly(
    autojump_clock: trio.abc.Clock, lobby: Lobby) -> None:
    room, host, (p1, p2) = await room_with_players(lobby, "p1", "p2")
    started = trio.current_time()
    ack = await lobby.start_race(host, room, countdown=3)
    assert set(ack) == {"ok", "race_id", "start_at", "end_at"} and ack["race_id"] == 1
    start_at = ack["start_at"]
    assert ack["end_at"] == start_at + 3_600_000  # no time limit: capped at an hour
    for client in (host, p1, p2):
        start = client.events_named("racestart")[0]
        assert start == {
            "id": room, "race_id": 1, "start_at": start_at, "end_at": ack["end_at"], "server_ms": start_at - 3000,
            "cards": [{"index": i, "problem": f"problem {i}"} for i in range(3)],
            "players": [{"id": "p1", "username": "P1"}, {"id": "p2", "username": "P2"}],
        }
    summary = await listed(lobby, room)
    assert summary["state"] == "countdown" and summary["locked"] is True

    await trio.sleep_until(started + 2.999)
    assert code(await answer(lobby, p1, room, 1, 0, ANSWERS[0])) == "race_not_started"
    assert (await listed(lobby, room))["state"] == "countdown"
    await trio.sleep_until(started + 3)
    assert (await listed(lobby, room))["state"] == "racing"
    assert await answer(lobby, p1, room, 1, 0, ANSWERS[0]) == {"ok": True, "card": 0, "correct": True, "next": 1}
    assert p1.events_named("raceprogress")[-1]["players"][0] == {
        "id": "p1", "username": "P1", "answered": 1, "correct": 1, "done": False, "time_ms": 0, "connected": True,
    }


async def test_countdown_zero_starts_racing_at_once(
    autojump_clock: trio.abc.Clock, lobby: Lobby) -> None:
    room, host, (p1,) = await room_with_players(lobby, "p1")
    ack = await lobby.start_race(host, room, countdown=0, time_limit=10)
    assert ack["end_at"] == ack["start_at"] + 10_000
    assert (await listed(lobby, room))["state"] == "racing"
    assert (await answer(lobby, p1, room, 1, 0, "nope"))["correct"] is False


async def test_one_attempt_per_card_in_order_and_time_ms(
    autojump_clock: trio.abc.Clock, lobby: Lobby) -> None:
    room, host, (p1,) = await room_with_players(lobby, "p1")
    started = trio.current_time()
    ack = await lobby.start_race(host, room, countdown=1)
    await trio.sleep_until(started + 1.25)
    assert code(await answer(lobby, p1, room, 1, 1, ANSWERS[1])) == "wrong_card"
    assert await answer(lobby, p1, room, 1, 0, "wrong") == {"ok": True, "card": 0, "correct": False, "next": 1}
    assert code(await answer(lobby, p1, room, 1, 0, ANSWERS[0])) == "wrong_card"  # no second attempt
    assert code(await answer(lobby, p1, room, 2, 1, ANSWERS[1])) == "not_racing"  # another race_id
    await trio.sleep_until(started + 2.5)
    assert await answer(lobby, p1, room, 1, 1, " 0.75 ") == {"ok": True, "card": 1, "correct": True, "next": 2}
    await trio.sleep_until(started + 3.125)
    assert await answer(lobby, p1, room, 1, 2, "YAK-answer-2") == {"ok": True, "card": 2, "correct": True, "next": None}
    over = p1.events_named("raceover")[0]
    assert over["reason"] == "all_done"
    assert over["mine"] == [
        {"index": 0, "given": "wrong", "correct": False, "ms": 250},
        {"index": 1, "given": " 0.75 ", "correct": True, "ms": 1500},
        {"index": 2, "given": "YAK-answer-2", "correct": True, "ms": 2125},
    ]
    assert over["ranking"] == [
        {"place": 1, "id": "p1", "username": "P1", "correct": 2, "answered": 3, "time_ms": 2125, "left": False}
    ]
    assert over["cards"] == [{"index": i, "problem": f"problem {i}", "answer": a} for i, a in enumerate(ANSWERS)]
    assert host.events_named("raceover")[0] == {**over, "mine": []}
    assert ack["race_id"] == over["race_id"] == 1
    assert code(await answer(lobby, p1, room, 1, 2, "x")) == "race_over"
    summary = await listed(lobby, room)
    assert summary["state"] == "finished" and summary["locked"] is True  # stays locked after the race


async def test_time_limit_ends_the_race_at_end_at_exactly(
    autojump_clock: trio.abc.Clock, lobby: Lobby) -> None:
    room, host, (p1, p2) = await room_with_players(lobby, "p1", "p2")
    started = trio.current_time()
    ack = await lobby.start_race(host, room, countdown=2, time_limit=10.5)
    assert ack["end_at"] - ack["start_at"] == 10_500
    await trio.sleep_until(started + 2.5)
    await answer(lobby, p1, room, 1, 0, ANSWERS[0])
    await host.wait_event("raceover")
    assert trio.current_time() == started + 12.5
    over = host.events_named("raceover")[0]
    assert over["reason"] == "time_up"
    assert [(r["place"], r["id"], r["time_ms"]) for r in over["ranking"]] == [(1, "p1", 500), (2, "p2", None)]
    assert code(await answer(lobby, p2, room, 1, 0, ANSWERS[0])) == "race_over"


async def test_raceprogress_at_most_every_200_ms_per_room(
    autojump_clock: trio.abc.Clock, lobby: Lobby) -> None:
    room, host, (p1, p2) = await room_with_players(lobby, "p1", "p2")
    started = trio.current_time()
    ack = await lobby.start_race(host, room, countdown=0)
    start_at = ack["start_at"]
    await answer(lobby, p1, room, 1, 0, "a")  # at 0 ms: sent at once
    await trio.sleep_until(started + 0.05)
    await answer(lobby, p2, room, 1, 0, "b")  # at 50 ms: held until 200 ms
    await trio.sleep_until(started + 0.1)
    await answer(lobby, p2, room, 1, 1, "c")  # at 100 ms: same
    await trio.sleep_until(started + 0.199)
    assert len(host.events_named("raceprogress")) == 1
    await trio.sleep_until(started + 1)
    progress = host.events_named("raceprogress")
    assert [p["server_ms"] - start_at for p in progress] == [0, 200]
    assert [(p["id"], p["answered"]) for p in progress[1]["players"]] == [("p1", 1), ("p2", 2)]
    assert p1.events_named("raceprogress") == progress == p2.events_named("raceprogress")
    await answer(lobby, p1, room, 1, 1, "d")  # quiet for more than 200 ms: at once again
    assert host.events_named("raceprogress")[-1]["server_ms"] - start_at == 1000


async def test_end_race_in_the_countdown_then_answers_get_race_over(
    autojump_clock: trio.abc.Clock, lobby: Lobby) -> None:
    room, host, (p1,) = await room_with_players(lobby, "p1")
    assert code(await lobby.command(host, "end_race", {"id": room})) == "not_racing"
    await lobby.start_race(host, room, countdown=5)
    assert code(await lobby.command(p1, "end_race", {"id": room})) == "not_host"
    assert await lobby.command(host, "end_race", {"id": room}) == {"ok": True}
    assert p1.events_named("raceover")[0]["reason"] == "host_ended"
    assert code(await answer(lobby, p1, room, 1, 0, ANSWERS[0])) == "race_over"  # even before start_at
    assert code(await lobby.command(host, "end_race", {"id": room})) == "not_racing"
    assert (await listed(lobby, room))["state"] == "finished"


async def test_ranking_ties_share_a_place_and_the_next_skips(
    autojump_clock: trio.abc.Clock, lobby: Lobby) -> None:
    room, host, players = await room_with_players(lobby, "a", "b", "c", "d", "e")
    a, b, c, d, e = players
    started = trio.current_time()
    await lobby.start_race(host, room, countdown=0, time_limit=10)
    await trio.sleep_until(started + 1)
    for player in (a, b):  # same correct, same time, same answered: tied
        await answer(lobby, player, room, 1, 0, ANSWERS[0])
    await answer(lobby, c, room, 1, 0, "wrong")  # fewer correct
    await answer(lobby, d, room, 1, 0, "wrong")
    await trio.sleep_until(started + 2)
    await answer(lobby, d, room, 1, 1, "wrong")  # same correct as c, later, but more answered
    await host.wait_event("raceover")
    ranking = host.events_named("raceover")[0]["ranking"]
    assert [(r["place"], r["id"]) for r in ranking] == [(1, "a"), (1, "b"), (3, "c"), (4, "d"), (5, "e")]
    assert ranking[4] == {"place": 5, "id": "e", "username": "E", "correct": 0, "answered": 0, "time_ms": None,
                          "left": False}


async def test_kick_player(
    autojump_clock: trio.abc.Clock, lobby: Lobby) -> None:
    room, host, (p1, p2) = await room_with_players(lobby, "p1", "p2")
    await lobby.start_race(host, room, countdown=0)
    await answer(lobby, p1, room, 1, 0, ANSWERS[0])
    assert code(await lobby.command(p2, "kick_player", {"id": room, "user": "p1"})) == "not_host"
    assert code(await lobby.command(host, "kick_player", {"id": room, "user": "host"})) == "not_in_room"
    assert code(await lobby.command(host, "kick_player", {"id": room, "user": "nobody"})) == "not_in_room"
    assert await lobby.command(host, "kick_player", {"id": room, "user": "p1"}) == {"ok": True}
    assert p1.events_named("kicked") == [{"id": room}]
    assert (await lobby.snapshot()).places["p1"] is None
    assert [p["id"] for p in (await listed(lobby, room))["players"]] == ["p2"]
    assert code(await answer(lobby, p1, room, 1, 1, ANSWERS[1])) == "not_racing"
    for i, given in enumerate(ANSWERS):
        await answer(lobby, p2, room, 1, i, given)
    over = host.events_named("raceover")[0]
    assert over["reason"] == "all_done"  # every player still in it is done
    assert [(r["id"], r["left"]) for r in over["ranking"]] == [("p2", False), ("p1", True)]
    assert p1.events_named("raceover") == []
    assert code(await lobby.join_room(p1, room)) == "banned"
    assert await lobby.command(host, "lock_room", {"id": room, "locked": False}) == {"ok": True}
    assert code(await lobby.join_room(p1, room)) == "banned"  # banned comes before room_locked


async def test_lock_room(
    autojump_clock: trio.abc.Clock, lobby: Lobby) -> None:
    room, host, (p1,) = await room_with_players(lobby, "p1")
    late = await joined(lobby, "late")
    assert code(await lobby.command(p1, "lock_room", {"id": room, "locked": True})) == "not_host"
    assert await lobby.command(host, "lock_room", {"id": room, "locked": True}) == {"ok": True}
    assert (await listed(lobby, room))["locked"] is True
    assert code(await lobby.join_room(late, room)) == "room_locked"
    await lobby.command(host, "lock_room", {"id": room, "locked": False})
    assert (await lobby.join_room(late, room))["ok"] is True


async def test_join_during_a_race_and_late_join(
    autojump_clock: trio.abc.Clock, lobby: Lobby) -> None:
    room, host, (p1,) = await room_with_players(lobby, "p1")
    late = await joined(lobby, "late")
    await lobby.start_race(host, room, countdown=0)
    assert code(await lobby.join_room(late, room)) == "room_locked"
    await lobby.command(host, "lock_room", {"id": room, "locked": False})
    assert code(await lobby.join_room(late, room)) == "race_in_progress"
    await lobby.command(host, "end_race", {"id": room})

    started = trio.current_time()
    ack = await lobby.start_race(host, room, countdown=1, late_join=True)
    assert (await listed(lobby, room))["locked"] is False
    await trio.sleep_until(started + 1.5)
    await answer(lobby, p1, room, 2, 0, ANSWERS[0])
    assert (await lobby.join_room(late, room))["ok"] is True
    state = late.events_named("racestate")[0]
    assert state == {
        "id": room, "race_id": 2, "state": "racing", "start_at": ack["start_at"], "end_at": ack["end_at"],
        "server_ms": ack["start_at"] + 500, "cards": [{"index": i, "problem": f"problem {i}"} for i in range(3)],
        "next": 0,
        "progress": [
            {"id": "p1", "username": "P1", "answered": 1, "correct": 1, "done": False, "time_ms": 500, "connected": True},
            {"id": "late", "username": "LATE", "answered": 0, "correct": 0, "done": False, "time_ms": None,
             "connected": True},
        ],
    }
    assert late.events_named("racestart") == []
    assert (await answer(lobby, late, room, 2, 0, ANSWERS[0]))["correct"] is True


async def test_rematch_and_race_results(
    autojump_clock: trio.abc.Clock, lobby: Lobby) -> None:
    room, host, (p1, p2) = await room_with_players(lobby, "p1", "p2")
    assert code(await lobby.command(host, "race_results", {"id": room})) == "race_not_found"
    started = trio.current_time()
    await lobby.start_race(host, room, countdown=0)
    assert code(await lobby.command(host, "race_results", {"id": room})) == "race_in_progress"
    assert code(await lobby.command(host, "race_results", {"id": room, "race_id": 1})) == "race_in_progress"
    assert code(await lobby.command(p1, "race_results", {"id": room})) == "not_host"
    assert code(await lobby.start_race(host, room)) == "race_in_progress"
    await trio.sleep_until(started + 0.5)
    await answer(lobby, p1, room, 1, 0, ANSWERS[0])
    await lobby.command(host, "end_race", {"id": room})
    results = (await lobby.command(host, "race_results", {"id": room}))["results"]
    over = p1.events_named("raceover")[0]
    assert results == {
        **{k: v for k, v in over.items() if k != "mine"},
        "answers": [
            {"id": "p1", "username": "P1", "mine": [{"index": 0, "given": ANSWERS[0], "correct": True, "ms": 500}]},
            {"id": "p2", "username": "P2", "mine": []},
        ],
    }
    # The rematch: same members, a new race id, the old results still readable.
    ack = await lobby.start_race(host, room, countdown=0)
    assert ack["race_id"] == 2
    assert (await lobby.command(host, "race_results", {"id": room, "race_id": 1}))["results"] == results
    assert code(await lobby.command(host, "race_results", {"id": room, "race_id": 2})) == "race_in_progress"
    assert code(await lobby.command(host, "race_results", {"id": room, "race_id": 7})) == "race_not_found"
    assert len(p2.events_named("racestart")) == 2
    await lobby.command(host, "end_race", {"id": room})
    assert (await lobby.command(host, "race_results", {"id": room}))["results"]["race_id"] == 2


async def test_race_results_keeps_the_last_ten(
    autojump_clock: trio.abc.Clock, lobby: Lobby) -> None:
    room, host, _ = await room_with_players(lobby, "p1")
    for _ in range(12):
        await lobby.start_race(host, room, countdown=0)
        await lobby.command(host, "end_race", {"id": room})
    assert code(await lobby.command(host, "race_results", {"id": room, "race_id": 2})) == "race_not_found"
    assert (await lobby.command(host, "race_results", {"id": room, "race_id": 3}))["ok"] is True


async def test_start_race_errors_in_order(
    autojump_clock: trio.abc.Clock, lobby: Lobby) -> None:
    host = await joined(lobby, "host")
    anonymous = MemoryClient("anon")
    await lobby.connect(anonymous)
    assert code(await lobby.command(host, "start_race", {"id": 1, "countdown": 11})) == "invalid_payload"
    assert code(await lobby.command(anonymous, "start_race", {"id": 1})) == "not_in_lobby"
    assert code(await lobby.command(host, "start_race", {"id": 1})) == "room_not_found"
    room = (await lobby.create_room(host, "R", race_deck()))["room"]["id"]
    p1 = await joined(lobby, "p1")
    assert code(await lobby.command(p1, "start_race", {"id": room})) == "not_host"
    assert code(await lobby.command(host, "start_race", {"id": room})) == "no_players"
    await lobby.join_room(p1, room)
    assert (await lobby.command(host, "start_race", {"id": room}))["ok"] is True
    assert code(await lobby.command(host, "start_race", {"id": room})) == "race_in_progress"


@pytest.mark.parametrize(
    "options, words",
    [
        ({"countdown": -1}, "countdown"), ({"countdown": 10.001}, "countdown"), ({"countdown": "3"}, "countdown"),
        ({"countdown": True}, "countdown"), ({"countdown": None}, "countdown"), ({"time_limit": 9.99}, "time_limit"),
        ({"time_limit": 3600.5}, "time_limit"), ({"time_limit": "60"}, "time_limit"), ({"shuffle": 1}, "shuffle"),
        ({"late_join": "yes"}, "late_join"), ({"id": 0}, "id"), ({"id": "1"}, "id"),
    ],
)
async def test_start_race_options_out_of_range_are_invalid_never_clamped(
    autojump_clock: trio.abc.Clock, lobby: Lobby, options: dict[str, Any], words: str
) -> None:
    room, host, _ = await room_with_players(lobby, "p1")
    ack = await lobby.command(host, "start_race", {"id": room, **options})
    assert code(ack) == "invalid_payload" and words in ack["error"]["message"]
    assert (await listed(lobby, room))["state"] == "waiting"


async def test_start_race_bounds_are_inclusive_and_shuffle_keeps_problem_answer_pairs(
    autojump_clock: trio.abc.Clock, lobby: Lobby) -> None:
    answers = tuple(f"answer-{i}" for i in range(20))
    room, host, (p1,) = await room_with_players(lobby, "p1", answers=answers)
    ack = await lobby.start_race(host, room, countdown=10, time_limit=3600, shuffle=True)
    assert ack["start_at"] - p1.events_named("racestart")[0]["server_ms"] == 10_000
    cards = p1.events_named("racestart")[0]["cards"]
    assert sorted(c["problem"] for c in cards) == sorted(f"problem {i}" for i in range(20))
    await lobby.command(host, "end_race", {"id": room})
    over = p1.events_named("raceover")[0]
    assert all(c["answer"] == f"answer-{c['problem'].split()[1]}" for c in over["cards"])
    assert [c["index"] for c in over["cards"]] == list(range(20))
    ack = await lobby.start_race(host, room, countdown=0, time_limit=10)
    assert ack["end_at"] - ack["start_at"] == 10_000


async def test_answer_payload_rules(
    autojump_clock: trio.abc.Clock, lobby: Lobby) -> None:
    room, host, (p1,) = await room_with_players(lobby, "p1")
    await lobby.start_race(host, room, countdown=0)
    base = {"id": room, "race_id": 1, "card": 0}
    for bad in ({**base, "answer": "x" * 101}, {**base, "answer": None}, {**base, "answer": True},
                {**base, "answer": ["4"]}, {**base, "card": -1, "answer": "4"}, {**base, "race_id": 0, "answer": "4"},
                {"id": room, "race_id": 1, "answer": "4"}, base):
        assert code(await lobby.command(p1, "answer", bad)) == "invalid_payload", bad
    assert (await lobby.command(p1, "answer", {**base, "answer": "x" * 100}))["ok"] is True


async def test_answer_errors_in_order(
    autojump_clock: trio.abc.Clock, lobby: Lobby) -> None:
    room, host, (p1,) = await room_with_players(lobby, "p1")
    outsider = await joined(lobby, "outsider")
    anonymous = MemoryClient("anon")
    await lobby.connect(anonymous)
    payload = {"id": room, "race_id": 1, "card": 0, "answer": "4"}
    assert code(await lobby.command(anonymous, "answer", payload)) == "not_in_lobby"
    assert code(await lobby.command(p1, "answer", {**payload, "id": 99})) == "room_not_found"
    assert code(await lobby.command(p1, "answer", payload)) == "not_racing"  # no race yet
    await lobby.start_race(host, room, countdown=1)
    assert code(await lobby.command(outsider, "answer", payload)) == "not_racing"
    assert code(await lobby.command(host, "answer", payload)) == "not_racing"  # the host does not race
    assert code(await lobby.command(p1, "answer", {**payload, "card": 1})) == "race_not_started"
    await trio.sleep(1)
    assert code(await lobby.command(p1, "answer", {**payload, "card": 1})) == "wrong_card"


async def test_a_player_who_leaves_mid_race_stays_in_the_results(
    autojump_clock: trio.abc.Clock, lobby: Lobby) -> None:
    room, host, (p1, p2) = await room_with_players(lobby, "p1", "p2")
    await lobby.start_race(host, room, countdown=0)
    await answer(lobby, p1, room, 1, 0, ANSWERS[0])
    assert await lobby.leave_room(p1, room) == {"ok": True}
    await trio.sleep(1)
    assert host.events_named("raceprogress")[-1]["players"][0]["connected"] is False
    for i, given in enumerate(ANSWERS):
        await answer(lobby, p2, room, 1, i, given)
    over = host.events_named("raceover")[0]
    assert over["reason"] == "all_done"
    assert [(r["id"], r["answered"], r["left"]) for r in over["ranking"]] == [("p2", 3, False), ("p1", 1, True)]
    assert p1.events_named("raceover") == []
    results = (await lobby.command(host, "race_results", {"id": room}))["results"]
    assert results["answers"][0]["mine"][0]["given"] == ANSWERS[0]


async def test_the_last_player_leaving_ends_the_race(
    autojump_clock: trio.abc.Clock, lobby: Lobby) -> None:
    room, host, (p1,) = await room_with_players(lobby, "p1")
    await lobby.start_race(host, room, countdown=0)
    await lobby.leave_lobby(p1, "p1")
    assert host.events_named("raceover")[0]["reason"] == "all_done"


@pytest.mark.parametrize("how, reason", [("leave_room", "host_left"), ("leave_lobby", "host_left"),
                                         ("disconnect", "host_disconnected"), ("shutdown", "shutdown")])
async def test_a_room_closing_mid_race_sends_raceover_first(
    autojump_clock: trio.abc.Clock, lobby: Lobby, how: str, reason: str) -> None:
    room, host, (p1, p2) = await room_with_players(lobby, "p1", "p2")
    await lobby.start_race(host, room, countdown=0)
    await answer(lobby, p1, room, 1, 0, ANSWERS[0])
    if how == "leave_room":
        await lobby.leave_room(host, room)
    elif how == "leave_lobby":
        await lobby.leave_lobby(host, "host")
    elif how == "disconnect":
        await lobby.disconnect(host)
    else:
        await lobby.shutdown()
    for player in (p1, p2):
        names = [n for n in sent_names(player) if n in ("raceover", "roomclosed")]
        assert names == ["raceover", "roomclosed"]
        assert player.events_named("raceover")[0]["reason"] == reason
        assert player.events_named("roomclosed")[0] == {"id": room, "reason": reason}
    assert host.events_named("raceover")[0]["reason"] == reason  # the host too
    assert host.events_named("raceover")[0]["mine"] == []
    assert p1.events_named("raceover")[0]["mine"][0]["given"] == ANSWERS[0]


async def test_a_room_closing_in_the_countdown_sends_raceover_too(
    autojump_clock: trio.abc.Clock, lobby: Lobby) -> None:
    room, host, (p1,) = await room_with_players(lobby, "p1")
    await lobby.start_race(host, room, countdown=5)
    await lobby.leave_room(host, room)
    assert [n for n in sent_names(p1) if n in ("raceover", "roomclosed")] == ["raceover", "roomclosed"]


async def test_takeover_mid_race_gets_racestate(
    autojump_clock: trio.abc.Clock, lobby: Lobby) -> None:
    room, host, (p1,) = await room_with_players(lobby, "p1")
    await lobby.start_race(host, room, countdown=0)
    await answer(lobby, p1, room, 1, 0, ANSWERS[0])
    again = MemoryClient("p1 again")
    await lobby.connect(again)
    ack = await lobby.join_lobby(again, "p1", token=p1.token)  # the seat's token: a reload keeps it
    assert ack["room"] == room
    state = again.events_named("racestate")[0]
    assert state["next"] == 1 and state["state"] == "racing"
    assert (await answer(lobby, again, room, 1, 1, ANSWERS[1]))["correct"] is True
    reseated_host = MemoryClient("host again")
    await lobby.connect(reseated_host)
    await lobby.join_lobby(reseated_host, "host", token=host.token)
    assert reseated_host.events_named("racestate")[0]["next"] is None
    await lobby.command(reseated_host, "end_race", {"id": room})
    assert reseated_host.events_named("raceover")[0]["reason"] == "host_ended"
    assert host.events_named("raceover") == []  # the replaced connection no longer hears the room


async def test_time_sync(
    autojump_clock: trio.abc.Clock, lobby: Lobby) -> None:
    anonymous = MemoryClient("anon")
    await lobby.connect(anonymous)
    started = trio.current_time()
    first = await lobby.command(anonymous, "time_sync", {"t0": 12.5})
    assert first["ok"] is True and first["t0"] == 12.5 and isinstance(first["server_ms"], int)
    await trio.sleep(1.5)
    second = await lobby.command(anonymous, "time_sync", {"t0": 1})
    assert second["server_ms"] - first["server_ms"] == round((trio.current_time() - started) * 1000) == 1500
    assert code(await lobby.command(anonymous, "time_sync", {"t0": "now"})) == "invalid_payload"
    assert code(await lobby.command(anonymous, "time_sync", {})) == "invalid_payload"
    # server_ms agrees with the race times
    room, host, _ = await room_with_players(lobby, "p1")
    ack = await lobby.start_race(host, room, countdown=2)
    sync = await lobby.command(anonymous, "time_sync", {"t0": 0})
    assert ack["start_at"] - sync["server_ms"] == 2000


async def test_answers_never_leave_the_room_before_raceover(
    autojump_clock: trio.abc.Clock, lobby: Lobby, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    secrets = ("zebra-ANSWER-0", "yak-ANSWER-2")
    room, host, (p1, p2) = await room_with_players(lobby, "p1", "p2")
    watcher = MemoryClient("watcher", transcript=True)
    await lobby.connect(watcher)
    acks = [await lobby.start_race(host, room, countdown=0)]
    acks.append(await answer(lobby, p1, room, 1, 0, "wrong"))
    acks.append(await answer(lobby, p2, room, 1, 0, "also wrong"))
    acks.append(await lobby.command(host, "race_results", {"id": room}))
    late = MemoryClient("p1b", transcript=True)
    await lobby.connect(late)
    await lobby.join_lobby(late, "p1")  # racestate
    await trio.sleep(1)
    text = repr([c.events for c in (host, p1, p2, watcher, late)]) + repr(acks) + caplog.text
    text += repr([(await lobby.snapshot()).rooms.to_json()])
    for secret in secrets:
        assert secret.casefold() not in text.casefold()
    await lobby.command(host, "end_race", {"id": room})
    assert secrets[0] in repr(p2.events_named("raceover"))


def test_ranking_rule_on_its_own() -> None:
    """Most correct, then smallest time_ms, then most answered; never answered last; ties 1, 1, 3."""
    from roomactors.actors.race import Given, Racer, ranked
    from roomactors.actors.records import User

    def racer(name: str, *answers: tuple[bool, int]) -> Racer:
        given = [Given(i, "x", correct, ms) for i, (correct, ms) in enumerate(answers)]
        return Racer(User(name), given, sum(c for c, _ in answers))

    racers = [
        racer("never"),
        racer("slow", (True, 100), (True, 900)),
        racer("fewer", (False, 50), (True, 500)),  # 1 correct at 500, 2 answered
        racer("more", (False, 10), (False, 20), (True, 500)),  # 1 correct at 500, 3 answered: above "fewer"
        racer("fast", (True, 100), (True, 400)),
        racer("fast too", (True, 200), (True, 400)),
        racer("never 2"),
        racer("all wrong", (False, 10)),
    ]
    assert [(place, r.user.id) for place, r in ranked(racers)] == [
        (1, "fast"), (1, "fast too"), (3, "slow"), (4, "more"), (5, "fewer"), (6, "all wrong"), (7, "never"),
        (7, "never 2"),
    ]


async def test_a_room_that_crashes_on_an_answer_answers_internal_and_closes(
    autojump_clock: trio.abc.Clock, lobby: Lobby, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from roomactors.actors.room import RoomActor

    def explode(self: RoomActor, user_id: Any, request: Any) -> Any:
        raise RuntimeError("room bug")

    room, host, (p1,) = await room_with_players(lobby, "p1")
    await lobby.start_race(host, room, countdown=0)
    monkeypatch.setattr(RoomActor, "_answer", explode)
    with caplog.at_level(logging.ERROR):
        ack = await answer(lobby, p1, room, 1, 0, ANSWERS[0])
    assert code(ack) == "internal" and f"room {room}" in ack["error"]["message"]
    await trio.testing.wait_all_tasks_blocked()
    crashed = {"id": room, "reason": "crashed"}
    assert p1.events_named("roomclosed") == [crashed] and host.events_named("roomclosed") == [crashed]
    assert p1.events_named("raceover") == []  # a crashed room can send nothing
    assert (await lobby.snapshot()).places == {"host": None, "p1": None}
    assert code(await answer(lobby, p1, room, 1, 0, ANSWERS[0])) == "room_not_found"


async def test_the_typed_conveniences_send_the_same_commands(autojump_clock: trio.abc.Clock, lobby: Lobby) -> None:
    room, host, (p1, p2) = await room_with_players(lobby, "p1", "p2")
    assert (await lobby.time_sync(host, 5))["t0"] == 5
    assert await lobby.lock_room(host, room, True) == {"ok": True}
    assert (await lobby.start_race(host, room, countdown=0))["race_id"] == 1
    assert await lobby.kick_player(host, room, "p2") == {"ok": True}
    assert await lobby.end_race(host, room) == {"ok": True}
    assert (await lobby.race_results(host, room))["results"]["race_id"] == 1
    assert (await lobby.race_results(host, room, 1))["results"]["ranking"][1]["left"] is True


async def test_a_seat_without_a_connection_shows_connected_false(autojump_clock: trio.abc.Clock) -> None:
    """Ready for seats that outlive a connection: Reseat(user, None) keeps the seat, offline."""
    from roomactors.actors import ServerClock
    from roomactors.actors.commands import StartRaceRequest
    from roomactors.actors.messages import Describe, JoinRoom, Reseat, RoomCommand
    from roomactors.actors.records import User
    from roomactors.actors.room import RoomActor
    from roomactors.actors.validation import parse_deck

    host, p1 = MemoryClient("h"), MemoryClient("p1")
    room = RoomActor(1, "R", User("h"), parse_deck(race_deck()), 5, host_client=host, clock=ServerClock(0))
    await room.handle(JoinRoom(User("p1"), p1))
    await room.handle(RoomCommand("h", StartRaceRequest(1, countdown=0)))
    summary = await room.handle(Reseat("p1", None))
    assert summary.to_json()["players"][0]["connected"] is False  # type: ignore[union-attr]
    assert host.events_named("raceprogress")[-1]["players"][0]["connected"] is False
    back = MemoryClient("p1 back")
    await trio.sleep(1)
    await room.handle(Reseat("p1", back))
    assert back.events_named("racestate")[0]["progress"][0]["connected"] is True
    assert (await room.handle(Describe())).to_json()["players"][0]["connected"] is True  # type: ignore[union-attr]


async def test_join_room_order_race_in_progress_before_room_full(autojump_clock: trio.abc.Clock) -> None:
    async with open_lobby(RoomLimits(command_rate=None, max_players=1)) as lobby:
        room, host, (p1,) = await room_with_players(lobby, "p1")
        late = await joined(lobby, "late")
        await lobby.start_race(host, room, countdown=0)
        await lobby.lock_room(host, room, False)
        assert code(await lobby.join_room(late, room)) == "race_in_progress"  # not room_full
        await lobby.end_race(host, room)
        await lobby.start_race(host, room, countdown=0, late_join=True)
        assert code(await lobby.join_room(late, room)) == "room_full"
        await lobby.lock_room(host, room, True)
        assert code(await lobby.join_room(late, room)) == "room_locked"
