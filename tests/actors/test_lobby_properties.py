"""Random command sequences from several connections, invariants checked after each step.

Sequence-based (not RuleBasedStateMachine): each example runs its own ``trio.run``,
which keeps hypothesis and trio out of each other's way. Checked after every step:
every user in exactly one place; every room has its host; each connection speaks
for at most one user and each user has one connection, or else a held seat (a
dropped connection within its reconnect grace), shown ``connected: false``;
every connected client's last list equals the directory; a failed command
changes nothing. Time passes on a mock clock, so graces end mid-sequence.
"""

from __future__ import annotations

from typing import Any

import trio
import trio.testing
from actors.helpers import NO_RATE_LIMIT, make_deck
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from roomactors.actors import LobbySnapshot, MemoryClient, RoomLimits, open_lobby

SLOTS = 4
USERS = (1, 2, "three")
GRACE = 5.0
LIMITS = RoomLimits(max_rooms=3, max_players=2, command_rate=None, reconnect_grace=GRACE)
WRONG_TOKEN = "not-the-seat-token-at-all"
assert NO_RATE_LIMIT.command_rate is None

slot = st.integers(0, SLOTS - 1)
user = st.sampled_from(USERS)
room = st.integers(1, 3)
step = st.one_of(
    st.tuples(st.just("join_room"), slot, room),
    st.tuples(st.just("create_room"), slot, st.none() | user),
    st.tuples(st.just("leave_room"), slot, room),
    st.tuples(st.just("join_lobby"), slot, st.tuples(user, st.sampled_from(("none", "right", "wrong")))),
    st.tuples(st.just("leave_lobby"), slot, user),
    st.tuples(st.just("disconnect"), slot, st.none()),
    st.tuples(st.just("drop"), slot, st.none()),
    # a dropped user coming back with the seat's token, weighted so that returns to a
    # seat in a room happen often
    st.tuples(st.just("join_lobby"), slot, st.tuples(user, st.just("right"))),
    st.tuples(st.just("wait"), slot, st.sampled_from((0.5, GRACE - 0.001, GRACE, GRACE + 0.001))),
)

KNOWN_REFUSALS = {
    "invalid_payload", "not_in_lobby", "already_in_room", "room_not_found", "room_full",
    "not_in_room", "forbidden", "identity_mismatch", "too_many_rooms", "identity_taken",
}


def payload_for(kind: str, arg: Any, tokens: dict[Any, str]) -> dict[str, Any]:
    if kind == "create_room":
        body: dict[str, Any] = {"name": "r", "deck": make_deck()}
        if arg is not None:
            body["host"] = {"id": arg, "username": f"u{arg}", "token": tokens.get(arg)}
        return body
    if kind == "join_lobby":
        user_id, which = arg
        token = {"none": None, "right": tokens.get(user_id), "wrong": WRONG_TOKEN}[which]
        return {"id": user_id, "token": token}
    return {"id": arg}


def check_invariants(snapshot: LobbySnapshot, clients: list[MemoryClient], connected_at: list[int]) -> None:
    rooms = {summary.id: summary for summary in snapshot.rooms.rooms}
    seated: dict[Any, int] = {}
    for summary in rooms.values():
        for person in (summary.host, *summary.players):
            assert person.id not in seated, f"user {person.id} sits in two rooms"
            seated[person.id] = summary.id
        assert len(summary.players) <= summary.max_players
        # every room has its host, and the host is a connected user
        assert snapshot.places.get(summary.host.id) == summary.id
    for user_id, place in snapshot.places.items():
        assert place == seated.get(user_id), f"user {user_id}: lobby says {place}, rooms say {seated.get(user_id)}"
    assert set(seated) <= set(snapshot.places)
    bound = [uid for uid in snapshot.connections.values() if uid is not None]
    held = set(snapshot.held)
    assert held <= set(snapshot.places), "a held seat belongs to a user who is somewhere"
    assert not held & set(bound), "a held seat has no connection"
    assert sorted(map(str, bound)) == sorted(map(str, set(snapshot.places) - held)), "one connection per user"
    now = trio.current_time()
    assert all(now < until <= now + GRACE for until in snapshot.held.values()), "graces end on time"
    for summary in rooms.values():
        for person in summary.to_json()["players"] + [summary.to_json()["host"]]:
            assert person["connected"] is (person["id"] not in held), person
    expected = snapshot.rooms.to_json()
    for client, since in zip(clients, connected_at, strict=True):
        if snapshot.rooms.version > since or client.room_list is not None:
            assert client.room_list is not None and client.room_list.to_json() == expected, client


async def run_steps(steps: list[tuple[str, int, Any]]) -> None:
    async with open_lobby(LIMITS) as lobby:
        tokens: dict[Any, str] = {}  # the newest seat token of each user id
        generation = [0] * SLOTS
        clients: list[MemoryClient] = []
        connected_at: list[int] = []
        for i in range(SLOTS):
            clients.append(MemoryClient(f"c{i}.0"))
            await lobby.connect(clients[i])
            connected_at.append(0)
        # Start from three users in the lobby (slot 3 watches), so short examples reach rooms.
        steps = [("join_lobby", i, (uid, "none")) for i, uid in enumerate(USERS)] + steps
        for kind, index, arg in steps:
            before = await lobby.snapshot()
            if kind == "wait":
                await trio.sleep(arg)
                if set(before.held) - set((await lobby.snapshot()).held):
                    event("a grace ended")
            elif kind in ("disconnect", "drop"):
                await lobby.disconnect(clients[index], dropped=kind == "drop")
                generation[index] += 1
                clients[index] = MemoryClient(f"c{index}.{generation[index]}")
                await lobby.connect(clients[index])
                connected_at[index] = (await lobby.snapshot()).rooms.version
            else:
                client = clients[index]
                ack = await lobby.command(client, kind, payload_for(kind, arg, tokens))
                after = await lobby.snapshot()
                if not ack["ok"]:
                    assert ack["error"]["code"] in KNOWN_REFUSALS, ack
                    if ack["error"]["code"] == "identity_taken":
                        claimed = arg[0] if kind == "join_lobby" else arg
                        event(f"identity_taken of a {'held' if claimed in before.held else 'connected'} user")
                    assert after == before, f"failed {kind} changed something"
                elif kind == "join_lobby":
                    if arg[0] in before.held:
                        event("came back to a held seat" + (" in a room" if ack["room"] is not None else ""))
                    assert ack["room"] == after.places[arg[0]]
                    assert arg[0] not in after.held
                    tokens[arg[0]] = ack["token"]
                elif kind == "create_room" and "token" in ack:
                    tokens[arg] = ack["token"]
            # A replaced connection is detached and gone; reconnect that slot like a browser would.
            for i, client in enumerate(clients):
                if client.detached:
                    assert client.events[-1][0] == "replaced"
                    generation[i] += 1
                    clients[i] = MemoryClient(f"c{i}.{generation[i]}")
                    await lobby.connect(clients[i])
                    connected_at[i] = (await lobby.snapshot()).rooms.version
            check_invariants(await lobby.snapshot(), clients, connected_at)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=8, max_size=40))
def test_random_command_sequences_keep_the_invariants(steps: list[tuple[str, int, Any]]) -> None:
    trio.run(run_steps, steps, clock=trio.testing.MockClock(autojump_threshold=0))
