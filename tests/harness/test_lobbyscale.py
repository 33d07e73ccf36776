"""A short, small run of the lobby-scale load client (bench/load/lobbyscale.mjs)
against roomactors served in the test: every room opens, every change is made,
both kinds of watchers see the changes, and nothing fails; or the benchmark's
numbers mean nothing."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator

import pytest
import trio
from support.nodeclient import node_or_skip
from support.refservers import REPO

from roomactors.actors import RoomLimits
from roomactors.app import open_room_app
from roomactors.socketio import SocketIOServer

pytestmark = pytest.mark.node

LOAD = REPO / "bench" / "load" / "lobbyscale.mjs"


@pytest.fixture
async def url(nursery: trio.Nursery) -> AsyncIterator[str]:
    sio = SocketIOServer()
    limits = RoomLimits(command_rate=None, large_list_bytes=2000)
    async with open_room_app(sio, limits), trio.open_nursery() as server_nursery:
        addresses = await server_nursery.start(sio.serve, "127.0.0.1", 0)
        yield f"http://127.0.0.1:{addresses[0][1]}"
        server_nursery.cancel_scope.cancel()


async def test_short_run_reports_clean_numbers(url: str) -> None:
    node = node_or_skip()
    argv = [node, str(LOAD), "--url", url, "--server-pid", str(os.getpid()), "--clk-tck", str(os.sysconf("SC_CLK_TCK")),
            "--rooms", "40", "--full", "4", "--feed", "4", "--topics", "2", "--churn", "4", "--rate", "20",
            "--duration", "1", "--settle", "0.2", "--idle", "3"]
    with trio.fail_after(60):
        done = await trio.run_process(argv, capture_stdout=True, capture_stderr=True, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    report = json.loads(done.stdout)
    assert (report["rooms"], report["idle_connections"], report["full_clients"], report["feed_clients"]) == (40, 3, 4, 4)
    assert report["errors"] == {} and report["changes"] >= 15
    assert report["lag_full"]["count"] > 0 and report["lag_feed"]["count"] > 0
    assert report["last_list_bytes"] > 2000  # lists past large_list_bytes: coalesced, and still seen
    assert report["server_cpu_ms_per_change"] is not None and report["server_bytes_per_change"] > 0
