"""A bounded soak: hundreds of clients on both transports doing random commands,
random hang-ups and reconnects for a fixed time, then an auditor checks the
invariants once the dust has settled, and a second identical round must not
leave more tasks or memory behind than the first.

Size and length come from the environment (docs/soak.md has a large run):
``ROOMACTORS_SOAK_CLIENTS`` (lean raw clients, default 200),
``ROOMACTORS_SOAK_SECONDS`` (seconds of churn per round, default 3),
``ROOMACTORS_SOAK_SEED`` (default 1), ``ROOMACTORS_SOAK_RATE`` (commands per
second of all lean clients together, default 5,000,000 / clients², at most 150),
``ROOMACTORS_SOAK_ROUNDS``
(default 2), ``ROOMACTORS_SOAK_REAL`` (python-socketio
and socket.io-client clients each, default 2; Node ones only when
``tests/js/node_modules`` is installed).

The lean clients run in the test's trio loop with the server; pacing between
one client's commands uses ``trio.sleep`` on purpose (that is the load, not a
synchronisation), and every wait for an outcome waits on what a client received.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import random
import sys
from collections import Counter
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio
from support.logcheck import server_errors
from support.nodeclient import JS_DIR
from support.soak import LeanClient, open_lean_client
from support.tasks import task_names
from support.waiting import wait_until
from trio_websocket import ConnectionClosed

from roomactors.actors.validation import ERROR_CODES

CLIENTS = int(os.environ.get("ROOMACTORS_SOAK_CLIENTS", "200"))
SECONDS = float(os.environ.get("ROOMACTORS_SOAK_SECONDS", "3"))
SEED = int(os.environ.get("ROOMACTORS_SOAK_SEED", "1"))
REAL = int(os.environ.get("ROOMACTORS_SOAK_REAL", "2"))
ROUNDS = max(2, int(os.environ.get("ROOMACTORS_SOAK_ROUNDS", "2")))
#: Commands per second of all lean clients together. Every change goes to every
#: client, and every client's traffic costs time on the one core the server
#: shares with all its clients here, so the work grows with clients² x rate: the
#: default keeps that below what one process handles (125/s for 200 clients,
#: 20/s for 500), so that a soak checks correctness, not an overload.
RATE = float(os.environ.get("ROOMACTORS_SOAK_RATE", 0)) or min(150.0, 5_000_000 / max(CLIENTS, 1) ** 2)
#: Seconds between two commands of one client, so that all of them together send
#: about RATE commands per second.
PAUSE = (0.3 * CLIENTS / RATE, 1.7 * CLIENTS / RATE)

DECK = {"name": "soak deck", "flashcards": [{"id": 1, "problem": "1+1", "answer": "2"}]}
SEND_FAILURES = (ConnectionClosed, EOFError, trio.BrokenResourceError, trio.ClosedResourceError, OSError)
#: Codes a soak client may be answered with; "internal" means a server bug.
EXPECTED_CODES = ERROR_CODES - {"internal"}
#: Seconds a client waits for an answer: latency is not what a soak checks, and
#: a large run may queue commands for a while (docs/soak.md).
PATIENCE = 60.0
#: Tolerances between round 1 and round 2 (after every client left).
TASK_SLACK = 2
BLOCK_SLACK = 0.02  # of Python's allocated blocks
RSS_SLACK = 0.10  # of the resident set: the allocator keeps freed pages


@dataclass
class Round:
    """What one round's clients share: the live clients, the answers, the phases."""

    port: int
    started: float
    deadline: float = math.inf
    """Set once every client is connected: the churn lasts SECONDS from then."""
    connected_at: float | None = None
    go: trio.Event = field(default_factory=trio.Event)
    times: dict[str, float] = field(default_factory=dict)
    """Seconds from the start to each phase's end, for the log."""
    live: set[LeanClient] = field(default_factory=set)
    codes: Counter[str] = field(default_factory=Counter)
    connections: int = 0
    settled: int = 0
    all_settled: trio.Event = field(default_factory=trio.Event)
    audited: trio.Event = field(default_factory=trio.Event)

    def settle_one(self) -> None:
        self.settled += 1
        if self.settled == CLIENTS:
            self.all_settled.set()


def random_command(rng: random.Random, index: int, client: LeanClient) -> tuple[str, dict[str, Any]]:
    own = f"u{index}"
    user = own if rng.random() > 0.05 else f"u{rng.randrange(CLIENTS)}"  # sometimes a takeover
    rooms = [room["id"] for room in client.last_list or []]
    some_room = rng.choice(rooms) if rooms and rng.random() < 0.9 else rng.randint(1, 5 + len(rooms))
    kind = rng.choices(
        ["join_lobby", "create_room", "join_room", "leave_room", "leave_lobby"], [25, 10, 35, 20, 10]
    )[0]
    if kind == "join_lobby":
        return kind, {"id": user, "username": f"name{rng.randrange(3)}"}
    if kind == "create_room":
        return kind, {"name": f"room of {own}", "deck": DECK}
    if kind == "leave_lobby":
        return kind, {"id": own}
    return kind, {"id": some_room}


async def play(client: LeanClient, rng: random.Random, index: int, run: Round) -> str:
    """Random commands until the deadline or the end of this connection."""
    if rng.random() < 0.9:  # most clients say who they are first; some stay anonymous watchers
        await client.emit("join_lobby", {"id": f"u{index}", "username": f"bot {index}"})
    while trio.current_time() < run.deadline:
        await trio.sleep(rng.uniform(*PAUSE))
        if client.ended or not client.joined:
            return "gone"
        chance = rng.random()
        if chance < 0.02:
            return "hang up"
        if chance < 0.04:
            return "close"
        command, payload = random_command(rng, index, client)
        try:
            if rng.random() < 0.5:
                (reply,) = await client.call(command, payload, timeout=PATIENCE)
                run.codes["ok" if reply["ok"] else reply["error"]["code"]] += 1
            else:
                await client.emit(command, payload)
        except SEND_FAILURES:
            return "gone"
    return "deadline"


async def bot(index: int, run: Round, seed: int) -> None:
    rng = random.Random(f"{seed}-{index}")
    transport = "websocket" if index % 2 else "polling"
    namespace = "/lobby" if index % 3 else "/"
    settled = False
    try:
        while True:
            try:
                async with AsyncExitStack() as stack:
                    client = await stack.enter_async_context(
                        open_lean_client(
                            run.port, transport=transport, namespace=namespace, name=f"bot{index}", timeout=PATIENCE
                        )
                    )
                    run.connections += 1
                    if run.connections == CLIENTS:
                        run.connected_at = trio.current_time()
                        run.deadline = run.connected_at + SECONDS
                        run.go.set()
                    await run.go.wait()
                    run.live.add(client)
                    stack.callback(run.live.discard, client)
                    outcome = await play(client, rng, index, run)
                    if outcome == "deadline":
                        # Everything this connection sent has been handled once this ack is back.
                        (reply,) = await client.call("join_room", {"id": 0}, timeout=PATIENCE)
                        assert not reply["ok"], reply
                        run.settle_one()
                        settled = True
                        await run.audited.wait()
                        outcome = rng.choice(["hang up", "close", "leave"])
                    if outcome == "hang up":
                        await client.hang_up()
                    elif outcome == "close":
                        await client.send_eio("1")
                        await client.wait_ended()
                    elif outcome == "leave":
                        await client.send("1" + client._prefix())
                        await client.send_eio("1")
                        await client.wait_ended()
            except* SEND_FAILURES:  # the connection went away under us: reconnect
                pass
            if settled:
                return
    finally:
        if not settled:
            run.settle_one()


async def real_client_loop(sock: Any, user: str, rng: random.Random, run: Round) -> None:
    await sock.wait_connected(timeout=PATIENCE)
    (reply,) = await sock.call("join_lobby", {"id": user}, timeout=PATIENCE)
    assert reply["ok"], reply
    while trio.current_time() < run.deadline:
        await trio.sleep(rng.uniform(0.1, 0.4))
        rooms = [room["id"] for room in (sock.received("updaterooms") or [[[]]])[-1][0]]
        command, payload = rng.choice(
            [
                ("create_room", {"name": f"room of {user}", "deck": DECK}),
                ("join_room", {"id": rng.choice(rooms) if rooms else 1}),
                ("leave_room", {"id": rng.choice(rooms) if rooms else 1}),
                ("join_lobby", {"id": user}),
            ]
        )
        (reply,) = await sock.call(command, payload, timeout=PATIENCE)
        run.codes["ok" if reply["ok"] else reply["error"]["code"]] += 1


def audit(snapshot: Any) -> None:
    """The directory's invariants at one instant (the lobby's own snapshot)."""
    rooms = {room.id: room for room in snapshot.rooms.rooms}
    seats = Counter(user.id for room in rooms.values() for user in (room.host, *room.players))
    for user_id, place in snapshot.places.items():
        if place is None:
            assert seats[user_id] == 0, f"user {user_id!r} in the lobby but seated"
        else:
            assert place in rooms, f"user {user_id!r} in room {place}, which is not listed"
            assert rooms[place].seats(user_id) and seats[user_id] == 1, f"user {user_id!r} not exactly in {place}"
    assert set(seats) <= set(snapshot.places), "someone is seated who is no user"
    speakers = [user for user in snapshot.connections.values() if user is not None]
    held = set(snapshot.held)  # dropped connections' seats, kept for the reconnect grace
    assert len(speakers) == len(set(speakers)), "a user is spoken for by two connections"
    assert not held & set(speakers), "a held seat has a connection"
    assert set(speakers) | held == set(snapshot.places), "users and the connections that speak for them differ"
    for room in rooms.values():
        assert snapshot.places.get(room.host.id) == room.id, f"room {room.id} has no seated host"
        assert room.host.id in speakers or room.host.id in held, f"room {room.id} has no host, connected or held"
        for user in (room.host, *room.players):
            assert room.to_json() and (user.id in room.offline) == (user.id in held), f"{user.id!r}: connected wrong"


def count_tasks() -> int:
    return len(task_names())


def allocated_blocks() -> int:
    """Python's live memory blocks: as telling as tracemalloc for growth, without
    slowing every allocation down (tracemalloc tripled the soak's time)."""
    gc.collect()
    return sys.getallocatedblocks()


def rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def run_round(server: Any, seed: int, real_kinds: list[str]) -> Round:
    run = Round(server.port, trio.current_time())
    async with trio.open_nursery() as nursery:
        for index in range(CLIENTS):
            nursery.start_soon(bot, index, run, seed)
        async with AsyncExitStack() as stack:
            real: list[Any] = []
            if real_kinds:
                from support.clients import open_clients

                for kind in real_kinds:
                    clients = await stack.enter_async_context(open_clients(kind))
                    for i in range(REAL):
                        sock = clients.connect(server.url, "/lobby" if i % 2 else "/", reconnection=False)
                        real.append(sock)
                        rng = random.Random(f"{seed}-{kind}-{i}")
                        nursery.start_soon(real_client_loop, sock, f"{kind}{i}", rng, run)
            await run.all_settled.wait()
            run.times["settled"] = trio.current_time() - run.started
            # Every lean client is quiet; one more change reaches everyone connected.
            async with open_lean_client(server.port, name="auditor") as auditor:
                assert (await auditor.call("join_lobby", {"id": "auditor"}))[0]["ok"]
                (created,) = await auditor.call("create_room", {"name": "audit", "deck": DECK})
                assert created["ok"], created
                snapshot = await server.app.lobby.snapshot()
                audit(snapshot)
                expected = snapshot.rooms.to_json()
                for client in [*run.live, auditor]:
                    try:  # a client taken over at the last moment may not have heard yet
                        await client.wait_for(
                            lambda client=client: client.last_list == expected or not client.joined, timeout=PATIENCE
                        )
                    except trio.TooSlowError:
                        raise AssertionError(
                            f"{client.name} ({client.transport}) holds a stale list after {client.lists} lists: "
                            f"{client.last_list!r:.300} instead of {expected!r:.300}"
                        ) from None
                    if not client.joined:
                        assert client.received("replaced") or client.ended, (client.name, client.events)
                for sock in real:
                    await sock.next_event("updaterooms", where=lambda args: args[0] == expected, timeout=PATIENCE)
                    assert sock.received("updaterooms")[-1][0] == expected, sock
                assert (await auditor.call("leave_lobby", {"id": "auditor"}))[0]["ok"]
            run.times["audited"] = trio.current_time() - run.started
            run.audited.set()
    run.times["closed"] = trio.current_time() - run.started
    return run


@pytest.mark.skipif(CLIENTS < 1, reason="ROOMACTORS_SOAK_CLIENTS=0")
async def test_soak_churn_keeps_invariants_and_leaks_nothing(
    start_roomserver: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    server = await start_roomserver(
        max_rooms=CLIENTS + 1,  # the auditor must be able to open one
        max_players=5,
        max_connections=0,
        max_sessions_per_address=0,
        # A polling client that vanishes between two GETs is only noticed by the
        # heartbeat (as with the reference servers): keep it to seconds.
        ping_interval=2.0,
        ping_timeout=2.0,
        # A hung-up client's user leaves at once: a held seat's grace ending during the
        # audit would change the directory under it (held seats under churn are the
        # lobby property test's, tests/actors/test_lobby_properties.py).
        reconnect_grace=0,
    )
    real_kinds = ["python"] if REAL else []
    if REAL and (JS_DIR / "node_modules" / "socket.io-client").is_dir():
        real_kinds.append("node")
    measures = []
    server_alone = count_tasks()
    for round_number in range(1, ROUNDS + 1):
        run = await run_round(server, SEED, real_kinds)
        # The server's own cleanup, which no event announces: the counts reach
        # zero first, the sessions' tasks end a few steps later. A leaked task
        # makes this wait run out; the assertions below then say what was left.
        with trio.move_on_after(30):
            await wait_until(lambda: idle(server) and count_tasks() <= server_alone)
        assert idle(server), (server.statistics(), await server.app.lobby.snapshot())
        measures.append((count_tasks(), allocated_blocks(), rss_kb()))
        logging.getLogger(__name__).warning(
            "soak round %d: %d clients, %d connections, all in after %.1f s, round %.1f s, "
            "tasks %d, allocated blocks %d, RSS %d kB, answers %s, phases %s",
            round_number, CLIENTS, run.connections, (run.connected_at or math.inf) - run.started,
            trio.current_time() - run.started,
            *measures[-1], dict(run.codes), {k: round(v, 1) for k, v in run.times.items()},
        )
        assert "internal" not in run.codes, run.codes
        assert set(run.codes) <= EXPECTED_CODES | {"ok"}, run.codes
        # The churn really did things: about half the commands ask for an ack.
        assert sum(run.codes.values()) >= RATE * SECONDS / 4 and run.codes["ok"] >= 10, run.codes
        assert run.connections > CLIENTS, "no client reconnected"
    (tasks1, blocks1, rss1), (tasks2, blocks2, rss2) = measures[-2:]
    assert tasks2 <= tasks1 + TASK_SLACK, f"tasks grew from {tasks1} to {tasks2}"
    assert blocks2 <= blocks1 * (1 + BLOCK_SLACK), f"allocated blocks grew from {blocks1} to {blocks2}"
    assert rss2 <= rss1 * (1 + RSS_SLACK), f"RSS grew from {rss1} kB to {rss2} kB"
    assert not server_errors(caplog.records), server_errors(caplog.records)


def idle(server: Any) -> bool:
    stats = server.statistics()
    return (stats.connections, stats.clients, stats.users, stats.rooms) == (0, 0, 0, 0)
