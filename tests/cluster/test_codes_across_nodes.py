"""Room codes across nodes: a clash of two nodes' rooms resolves alike on every node.

Each node's lobby draws again when its replica knows the code (tests/actors/
test_codes.py); two rooms created at nearly the same moment on two nodes can
still share one. Here three nodes' room directories run against the real
redis-server (their writer and replica jobs, as a node runs them), and two of
them report rooms with one code, as such a clash would.
"""

from __future__ import annotations

import logging

import pytest
import trio
from support.redisserver import RedisServer
from support.waiting import wait_until

from roomactors.actors.directory import Listing, RoomDirectory
from roomactors.actors.records import DeckInfo, RoomSummary, User
from roomactors.cluster.directory import ClusterDirectory
from roomactors.cluster.link import RedisHealth, supervise

CODE = "ABCDEF"


def _listing(room_id: int, host: int, *, listed: bool) -> Listing:
    summary = RoomSummary(
        id=room_id, name=f"Room {room_id}", host=User(host, f"host{host}", "teacher"),
        deck=DeckInfo(name="Week 3", num_problems=1), players=(), max_players=30,
    )
    return RoomDirectory().put(summary, code=CODE, listed=listed)


async def _nothing() -> None:
    pass


async def test_a_code_clash_resolves_to_the_lower_room_id_on_every_node(
    redis_server: RedisServer, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="roomactors.cluster")
    health = RedisHealth(redis_server.url)
    nodes = {name: ClusterDirectory(name, prefix, redis_server.url, health, _nothing) for name in ("a", "b", "c")}
    a, b, c = nodes.values()
    async with trio.open_nursery() as nursery:
        for node in nodes.values():
            nursery.start_soon(supervise, health, "directory-writer", node.write)
            nursery.start_soon(supervise, health, "directory-replica", node.replicate)
        low, high = (5 << 32) + 1, (9 << 32) + 1
        b.report((_listing(high, 2, listed=True),))  # b's room has the higher id (and came first)
        a.report((_listing(low, 1, listed=False),))  # unlisted rooms count too

        def resolved() -> list[object]:
            return [n.room_of_code(CODE.lower()) for n in (a, b, c)]

        with trio.fail_after(10):
            # a: its own room (the lobby's code book answers); b and c: a's room; and
            # a's replica has b's room too (the clash is known on both sides)
            await wait_until(
                lambda: resolved() == [None, (low, "a"), (low, "a")] and a.code_taken(CODE), state=resolved
            )
        assert b.code_taken(CODE) and c.code_taken(CODE)
        with trio.fail_after(10):  # both nodes holding the code log the clash, once
            await wait_until(lambda: len(_clash_lines(caplog)) == 2)
        assert all(f"reaches room {low} on every node" in line for line in _clash_lines(caplog))
        # the lower room closes: the code reaches the other room everywhere
        a.report(())
        with trio.fail_after(10):
            await wait_until(lambda: resolved() == [(high, "b"), None, (high, "b")], state=resolved)
        assert not b.code_taken(CODE) and a.code_taken(CODE)
        nursery.cancel_scope.cancel()
    assert len(_clash_lines(caplog)) == 2


def _clash_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    lines = [record.getMessage() for record in caplog.records]
    return [line for line in lines if f"room code {CODE} is held by" in line]
