"""Two cluster nodes behind Debian's nginx, as docs/deployment.md and docs/cluster.md set them up.

nginx runs the configuration docs/deployment.md shows (``tests/proxy/nginx.conf.template``:
TLS, WebSocket upgrades, ``ip_hash`` for sticky long-polling) with both nodes in
its upstream block; the nodes share a real ``redis-server``. socket.io-client
picks its source address, so nginx's ``ip_hash`` spreads the clients over both
nodes as it would spread schools; a teacher on one node and a student on the
other race in one room through the proxy. A python-socketio client on
long-polling only (every request a new HTTP request through nginx) stays on its
node and sees the same list.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from support.certs import TestCertificates, tls_options
from support.clusternodes import DECK, open_nodes
from support.nginx import open_nginx
from support.nodeclient import NodeSocket, open_node_clients
from support.pyclient import open_python_clients
from support.redisserver import RedisServer, open_redis_server, unique_prefix
from support.waiting import wait_until

from roomactors.server import RoomServer

pytestmark = [
    pytest.mark.node,
    pytest.mark.skipif(importlib.util.find_spec("coredis") is None, reason="the redis extra is not installed"),
]

#: Source addresses to try: ip_hash keys IPv4 clients by their first three octets.
SOURCE_ADDRESSES = [f"127.0.{n}.2" for n in range(1, 33)]


@pytest.fixture
async def redis_server() -> AsyncIterator[RedisServer]:
    async with open_redis_server() as server:
        yield server


def _on_node(nodes: list[RoomServer], before: list[int]) -> int | None:
    """The node whose connection count went up since ``before``, if exactly one did."""
    grown = [i for i, node in enumerate(nodes) if node.statistics().connections > before[i]]
    return grown[0] if len(grown) == 1 else None


async def test_clients_spread_by_nginx_over_two_nodes_race_together(
    redis_server: RedisServer, certificates: TestCertificates, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    prefix = unique_prefix(request.node.name)
    async with (
        open_nodes(redis_server, prefix, 2, forwarded_allow_ips=("127.0.0.1",)) as nodes,
        open_nginx([node.port for node in nodes], certificates, tmp_path) as proxy,
        open_node_clients() as clients,
    ):
        # One socket on each node, as nginx chose by the client's address.
        placed: dict[int, NodeSocket] = {}
        for address in SOURCE_ADDRESSES:
            before = [node.statistics().connections for node in nodes]
            sock = clients.connect(
                proxy.url, "/lobby", transports=["websocket"], localAddress=address,
                rejectUnauthorized=False, reconnection=False,
            )
            await sock.wait_connected()
            with trio.fail_after(10):
                await wait_until(lambda b=before: _on_node(nodes, b) is not None)
            node = _on_node(nodes, before)
            assert node is not None
            if node in placed:
                await sock.disconnect()
                with trio.fail_after(10):
                    await wait_until(lambda b=before: [n.statistics().connections for n in nodes] == b)
            else:
                placed[node] = sock
            if len(placed) == 2:
                break
        assert sorted(placed) == [0, 1], f"ip_hash sent all of {SOURCE_ADDRESSES} to node {list(placed)}"
        teacher, student = placed[0], placed[1]

        (joined,) = await teacher.call("join_lobby", {"id": 1, "username": "mia", "auth_level": "teacher"})
        assert joined["ok"] is True
        (joined,) = await student.call("join_lobby", {"id": 2, "username": "sam"})
        assert joined["ok"] is True
        (created,) = await teacher.call("create_room", {"name": "Fractions", "deck": DECK})
        room = created["room"]

        # A long-polling client through nginx: sticky, so its session works, and on
        # whichever node it landed it lists the room of node 0.
        async with open_python_clients() as py:
            poller = py.connect(proxy.url, "/lobby", transports=["polling"], **tls_options("python", certificates.ca))
            await poller.wait_connected()
            (ack,) = await poller.call("join_lobby", {"id": 3, "username": "pat"})
            assert ack["ok"] is True

            def lists_fractions() -> bool:
                lists = poller.received("updaterooms")
                return bool(lists) and [r["name"] for r in lists[-1][0]] == ["Fractions"]

            with trio.fail_after(15):
                await wait_until(lists_fractions)
            await poller.disconnect()

        # The student on node 1 joins node 0's room by its code and races in it.
        (seated,) = await student.call("join_room", {"code": room["code"].lower()})
        assert seated["ok"] is True, seated
        (started,) = await teacher.call("start_race", {"id": room["id"], "countdown": 0})
        assert started["ok"] is True
        (racestart,) = await student.next_event("racestart")
        assert [card["problem"] for card in racestart["cards"]] == ["1/2+1/4"]
        (answered,) = await student.call(
            "answer", {"id": room["id"], "race_id": started["race_id"], "card": 0, "answer": "0.75"}
        )
        assert answered == {"ok": True, "card": 0, "correct": True, "next": None}
        (over,) = await student.next_event("raceover")
        assert over["reason"] == "all_done"
        assert [entry["id"] for entry in over["ranking"]] == [2]
        assert over["cards"] == [{"index": 0, "problem": "1/2+1/4", "answer": "3/4"}]
        (teacher_over,) = await teacher.next_event("raceover")
        assert teacher_over["ranking"] == over["ranking"] and teacher_over["mine"] == []
