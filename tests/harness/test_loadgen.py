"""A short, small run of the benchmark's load generator (bench/load/loadgen.mjs)
against both peers: it must connect everyone, see every change it makes, and
report no errors, or the benchmark's numbers mean nothing."""

from __future__ import annotations

import json

import pytest
import trio

from support.nodeclient import node_or_skip
from support.refservers import REPO, open_node_peer, open_pysocketio_peer

pytestmark = pytest.mark.node

LOADGEN = REPO / "bench" / "load" / "loadgen.mjs"


@pytest.mark.parametrize("peer", ["node", "pysocketio"])
async def test_short_run_reports_clean_numbers(peer: str) -> None:
    node = node_or_skip()
    opener = open_node_peer if peer == "node" else open_pysocketio_peer
    async with opener() as url:
        with trio.fail_after(60):
            result = await trio.run_process(
                [node, str(LOADGEN), "--url", url, "--clients", "8", "--rooms", "2", "--duration", "1", "--rate", "4"],
                capture_stdout=True,
                check=True,
            )
    report = json.loads(result.stdout)
    assert (report["connected"], report["rooms"]) == (8, 2)
    assert report["errors"] == {}
    timeouts = ("ack_timeouts", "visibility_timeouts", "unexpected_disconnects", "final_list_timeouts")
    assert [report[key] for key in timeouts] == [0, 0, 0, 0]
    assert report["acks"]["join_lobby"]["n"] == 8
    assert report["acks"]["join_room"]["n"] >= 6
    assert report["visibility"]["join_room"]["n"] == report["acks"]["join_room"]["n"]
    assert report["updaterooms_received"] > 8
    # The hosts' leave_room at the end closes the rooms: every seated player hears it.
    assert report["roomclosed_received"] == report["seated_at_end"]
