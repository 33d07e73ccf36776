"""Seats that outlive a connection, and seat tokens (race.md), on trio's autojump clock.

A dropped connection (``Lobby.disconnect(client, dropped=True)``, what the
Socket.IO binding reports when a client vanished without a goodbye) leaves its
user where they were for the reconnect grace; the grace ends exactly on time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing
from actors.helpers import make_deck

from roomactors.actors import Lobby, MemoryClient, RoomLimits, open_lobby

GRACE = 60.0
EPSILON = 0.001
LIMITS = RoomLimits(command_rate=None, reconnect_grace=GRACE)

Ack = dict[str, Any]


@pytest.fixture
async def lobby(autojump_clock: trio.testing.MockClock) -> AsyncIterator[Lobby]:
    async with open_lobby(LIMITS) as lobby:
        yield lobby


class Seat(MemoryClient):
    """A MemoryClient that keeps the seat token of its last join, as a page does."""

    token: str | None = None


async def joined(lobby: Lobby, user_id: Any, token: str | None = None, **profile: Any) -> Seat:
    client = Seat(f"{user_id}@{trio.current_time():.3f}#{id(object())}")
    await lobby.connect(client)
    ack = await lobby.join_lobby(client, user_id, token=token, **profile)
    assert ack["ok"] is True, ack
    client.token = ack["token"]
    return client


def code(ack: Ack) -> str:
    assert ack["ok"] is False, ack
    return str(ack["error"]["code"])


async def racing_room(lobby: Lobby, cards: int = 3) -> tuple[Seat, Seat, Seat, int, int]:
    """A host and two players ("p", "q") racing in room 1; returns (host, p, q, room, race)."""
    host = await joined(lobby, "h", username="mia", auth_level="teacher")
    p, q = await joined(lobby, "p", username="pat"), await joined(lobby, "q", username="quin")
    made = await lobby.create_room(host, "R", make_deck(cards=cards))
    room_id = made["room"]["id"]
    for player in (p, q):
        assert (await lobby.join_room(player, room_id))["ok"] is True
    started = await lobby.start_race(host, room_id, countdown=0)
    assert started["ok"] is True, started
    return host, p, q, room_id, started["race_id"]


def connected_flags(lobby_list: list[dict[str, Any]]) -> dict[Any, bool]:
    (room,) = lobby_list
    return {person["id"]: person["connected"] for person in [room["host"], *room["players"]]}


async def newest_list(lobby: Lobby) -> list[dict[str, Any]]:
    return (await lobby.snapshot()).rooms.to_json()


async def test_a_drop_and_a_return_within_the_grace_keep_everything(lobby: Lobby, autojump_clock: trio.testing.MockClock) -> None:
    host, p, _q, room_id, race_id = await racing_room(lobby)
    assert (await lobby.answer(p, room_id, race_id, 0, "secret-1"))["correct"] is True
    dropped_at = trio.current_time()
    await lobby.disconnect(p, dropped=True)
    snapshot = await lobby.snapshot()
    assert snapshot.places == {"h": room_id, "p": room_id, "q": room_id}
    assert snapshot.held == {"p": pytest.approx(dropped_at + GRACE, abs=1e-3)}
    assert connected_flags(snapshot.rooms.to_json()) == {"h": True, "p": False, "q": True}
    await trio.sleep(1)  # the race clock does not pause; progress shows p offline
    progress = host.events_named("raceprogress")[-1]
    assert {r["id"]: r["connected"] for r in progress["players"]} == {"p": False, "q": True}

    await trio.sleep(GRACE - 1 - EPSILON)
    back = Seat("p-back")
    await lobby.connect(back)
    ack = await lobby.join_lobby(back, "p", token=p.token)
    assert ack["ok"] is True and ack["room"] == room_id and ack["token"] != p.token
    snapshot = await lobby.snapshot()
    assert snapshot.held == {} and snapshot.connections["p-back"] == "p"
    assert connected_flags(snapshot.rooms.to_json()) == {"h": True, "p": True, "q": True}
    (state,) = back.events_named("racestate")
    assert state["race_id"] == race_id and state["state"] == "racing" and state["next"] == 1
    assert [card["index"] for card in state["cards"]] == [0, 1, 2]
    assert "secret" not in repr(state)
    # it carries on from its next card, its first answer kept
    assert code(await lobby.answer(back, room_id, race_id, 0, "secret-1")) == "wrong_card"
    assert (await lobby.answer(back, room_id, race_id, 1, "secret-2"))["next"] == 2
    await trio.sleep(0.5)
    progress = host.events_named("raceprogress")[-1]
    assert {r["id"]: (r["answered"], r["connected"]) for r in progress["players"]} == {
        "p": (2, True), "q": (0, True),
    }
    # the grace that was running does not end the seat later
    await trio.sleep(GRACE)
    assert (await lobby.snapshot()).places["p"] == room_id


async def test_a_return_after_the_grace_finds_the_seat_gone(lobby: Lobby, autojump_clock: trio.testing.MockClock) -> None:
    host, p, q, room_id, race_id = await racing_room(lobby)
    assert (await lobby.answer(p, room_id, race_id, 0, "nope"))["correct"] is False
    await lobby.disconnect(p, dropped=True)
    await trio.sleep(GRACE - EPSILON)
    assert (await lobby.snapshot()).places.get("p") == room_id
    await trio.sleep(2 * EPSILON)
    snapshot = await lobby.snapshot()
    assert "p" not in snapshot.places and snapshot.held == {}
    assert [person["id"] for person in snapshot.rooms.to_json()[0]["players"]] == ["q"]
    # the id is free again: no token needed; the user starts in the lobby
    back = Seat("p-late")
    await lobby.connect(back)
    ack = await lobby.join_lobby(back, "p", token=p.token)
    assert ack["ok"] is True and ack["room"] is None
    # the results keep what p answered, left: true
    await lobby.answer(q, room_id, race_id, 0, "secret-1")
    await lobby.answer(q, room_id, race_id, 1, "secret-2")
    await lobby.answer(q, room_id, race_id, 2, "secret-3")
    (over,) = host.events_named("raceover")
    assert over["reason"] == "all_done"
    ranking = {r["id"]: (r["answered"], r["left"]) for r in over["ranking"]}
    assert ranking == {"q": (3, False), "p": (1, True)}
    assert back.events_named("raceover") == []


async def test_a_held_id_needs_its_token(lobby: Lobby, autojump_clock: trio.testing.MockClock) -> None:
    host, p, q, _room_id, _race_id = await racing_room(lobby)
    thief = Seat("thief")
    await lobby.connect(thief)
    for state in ("connected", "in grace"):
        before = await lobby.snapshot()
        for token in (None, "x" * 24, q.token):  # none, made up, another seat's
            ack = await lobby.join_lobby(thief, "h", token=token)
            assert code(ack) == "identity_taken", state
            assert "token" in ack["error"]["message"]
            ack = await lobby.create_room(thief, "Mine", make_deck(), host={"id": "p", "token": token})
            assert code(ack) == "identity_taken", state
        after = await lobby.snapshot()
        assert (after.places, after.connections, after.held) == (before.places, before.connections, before.held)
        assert host.detached is None and host.events_named("replaced") == []
        assert thief.events == []
        if state == "connected":
            await lobby.disconnect(host, dropped=True)
            await lobby.disconnect(p, dropped=True)
    # the room still runs, with its host held
    assert connected_flags(await newest_list(lobby)) == {"h": False, "p": False, "q": True}


async def test_each_join_issues_a_new_token_and_the_old_one_stops_working(lobby: Lobby, autojump_clock: trio.testing.MockClock) -> None:
    first = await joined(lobby, "u")
    old_token = first.token
    again = await lobby.join_lobby(first, "u")  # the same connection needs no token
    assert again["ok"] is True and again["token"] != old_token
    tab = Seat("tab")
    await lobby.connect(tab)
    assert code(await lobby.join_lobby(tab, "u", token=old_token)) == "identity_taken"
    assert (await lobby.join_lobby(tab, "u", token=again["token"]))["ok"] is True


async def test_a_second_tab_takes_over_with_the_token(lobby: Lobby, autojump_clock: trio.testing.MockClock) -> None:
    _host, _p, q, room_id, race_id = await racing_room(lobby)
    await lobby.answer(q, room_id, race_id, 0, "secret-1")
    tab = Seat("q-tab")
    await lobby.connect(tab)
    ack = await lobby.join_lobby(tab, "q", token=q.token)
    assert ack["ok"] is True and ack["room"] == room_id
    assert q.events_named("replaced") and q.detached == "replaced"
    assert tab.events_named("racestate")[0]["next"] == 1
    assert (await lobby.snapshot()).connections.get("q-tab") == "q"
    # the replaced connection's later drop changes nothing
    await lobby.disconnect(q, dropped=True)
    assert (await lobby.snapshot()).held == {}
    assert connected_flags(await newest_list(lobby))["q"] is True


async def test_a_host_drop_mid_race_lets_the_race_run_until_the_grace_ends(lobby: Lobby, autojump_clock: trio.testing.MockClock) -> None:
    host, p, _q, room_id, race_id = await racing_room(lobby)
    await lobby.disconnect(host, dropped=True)
    await trio.sleep(1)
    # the race runs on: answers count, progress goes out, host shown offline
    assert (await lobby.answer(p, room_id, race_id, 0, "secret-1"))["ok"] is True
    await trio.sleep(0.5)
    assert p.events_named("raceprogress")[-1]["players"][0]["answered"] == 1
    assert connected_flags(await newest_list(lobby))["h"] is False
    await trio.sleep(GRACE - 1.5 - EPSILON)
    assert p.events_named("raceover") == [] and p.events_named("roomclosed") == []
    await trio.sleep(2 * EPSILON)
    names = [name for name, _ in p.events if name in ("raceover", "roomclosed")]
    assert names == ["raceover", "roomclosed"]
    assert p.events_named("raceover")[0]["reason"] == "host_disconnected"
    assert p.events_named("roomclosed") == [{"id": room_id, "reason": "host_disconnected"}]
    snapshot = await lobby.snapshot()
    assert snapshot.rooms.to_json() == [] and snapshot.places == {"p": None, "q": None}
    assert host.events_named("roomclosed") == []  # nobody to tell


async def test_a_host_back_within_the_grace_keeps_the_room(lobby: Lobby, autojump_clock: trio.testing.MockClock) -> None:
    host, p, _q, room_id, _race_id = await racing_room(lobby)
    await lobby.disconnect(host, dropped=True)
    await trio.sleep(GRACE / 2)
    back = await joined(lobby, "h", token=host.token)
    assert back.events_named("racestate")[0]["next"] is None  # the host does not race
    assert (await lobby.command(back, "end_race", {"id": room_id}))["ok"] is True
    await trio.sleep(GRACE)
    assert (await lobby.snapshot()).places["h"] == room_id
    assert p.events_named("raceover")[0]["reason"] == "host_ended"


async def test_a_kicked_player_who_drops(lobby: Lobby, autojump_clock: trio.testing.MockClock) -> None:
    host, p, _q, room_id, _race_id = await racing_room(lobby)
    assert (await lobby.command(host, "kick_player", {"id": room_id, "user": "p"}))["ok"] is True
    assert p.events_named("kicked") == [{"id": room_id}]
    await lobby.disconnect(p, dropped=True)
    snapshot = await lobby.snapshot()
    assert snapshot.places["p"] is None and "p" in snapshot.held  # held in the lobby
    back = await joined(lobby, "p", token=p.token)
    assert (await lobby.snapshot()).places["p"] is None
    assert code(await lobby.join_room(back, room_id)) == "banned"
    assert back.events_named("racestate") == []
    await lobby.disconnect(back, dropped=True)
    await trio.sleep(GRACE + EPSILON)
    assert "p" not in (await lobby.snapshot()).places


async def test_a_player_kicked_while_held_stays_held_in_the_lobby(lobby: Lobby, autojump_clock: trio.testing.MockClock) -> None:
    host, p, _q, room_id, _race_id = await racing_room(lobby)
    await lobby.disconnect(p, dropped=True)
    assert (await lobby.command(host, "kick_player", {"id": room_id, "user": "p"}))["ok"] is True
    snapshot = await lobby.snapshot()
    assert snapshot.places["p"] is None and "p" in snapshot.held
    ack = await lobby.join_lobby(await _connected(lobby, "p2"), "p", token=p.token)
    assert ack["ok"] is True and ack["room"] is None


async def _connected(lobby: Lobby, name: str) -> Seat:
    client = Seat(name)
    await lobby.connect(client)
    return client


async def test_a_goodbye_and_explicit_commands_act_at_once(lobby: Lobby, autojump_clock: trio.testing.MockClock) -> None:
    host, p, q, room_id, _race_id = await racing_room(lobby)
    await lobby.disconnect(p)  # a goodbye (Socket.IO DISCONNECT, Engine.IO close)
    assert "p" not in (await lobby.snapshot()).places
    await lobby.disconnect(q, dropped=True)
    await lobby.disconnect(host, dropped=True)
    back = await joined(lobby, "h", token=host.token)
    assert (await lobby.leave_room(back, room_id))["ok"] is True  # the host leaves: host_left at once
    snapshot = await lobby.snapshot()
    assert snapshot.rooms.to_json() == [] and snapshot.places == {"h": None, "q": None}
    assert (await lobby.leave_lobby(back, "h"))["ok"] is True
    assert "h" not in (await lobby.snapshot()).places


async def test_a_grace_of_zero_is_the_old_behaviour(autojump_clock: trio.testing.MockClock) -> None:
    async with open_lobby(RoomLimits(command_rate=None, reconnect_grace=0)) as lobby:
        host, p, _q, room_id, _race_id = await racing_room(lobby)
        await lobby.disconnect(host, dropped=True)
        assert p.events_named("roomclosed") == [{"id": room_id, "reason": "host_disconnected"}]
        assert (await lobby.snapshot()).held == {}


async def test_many_held_seats_end_in_deadline_order(lobby: Lobby, autojump_clock: trio.testing.MockClock) -> None:
    clients = [await joined(lobby, i) for i in range(20)]
    for client in clients:
        await lobby.disconnect(client, dropped=True)
        await trio.sleep(1)
    await trio.sleep(GRACE - 20 - EPSILON)
    for i in range(20):
        assert set((await lobby.snapshot()).places) == set(range(i, 20))
        await trio.sleep(1)
    assert (await lobby.snapshot()).places == {}
