"""A node on Redis: options, liveness, /healthz, and surviving a Redis restart.

Real redis-server (tests/support/redisserver.py), real servers on 127.0.0.1 port 0,
real python-socketio clients.
"""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
import trio
from support.pyclient import open_python_clients
from support.clusternodes import healthz, node_config, open_node
from support.redisserver import RedisServer
from support.waiting import wait_until

from roomactors.cli import UsageError, load_config
from roomactors.config import RoomServerConfig

DECK = {"name": "Week 3", "flashcards": [{"id": 1, "problem": "1/2+1/4", "answer": "3/4"}]}


def test_options_and_environment() -> None:
    config = load_config(["--redis", "redis://10.0.0.5:6379/2", "--node-id", "node-a"], {})
    assert (config.redis_url, config.node_id) == ("redis://10.0.0.5:6379/2", "node-a")
    config = load_config([], {"ROOMSERVER_REDIS": "redis://r:6379/0", "ROOMSERVER_NODE_TTL": "4"})
    assert (config.redis_url, config.node_ttl) == ("redis://r:6379/0", 4.0)
    assert load_config([], {}).redis_url is None
    with pytest.raises(UsageError, match=r"--redis 'http://x'.*redis://127.0.0.1:6379/0"):
        load_config(["--redis", "http://x"], {})
    with pytest.raises(UsageError, match="node_id must be"):
        load_config(["--node-id", "a b"], {})


def test_a_single_node_imports_nothing_of_redis() -> None:
    """(redis-py may be imported: python-socketio's own package imports it when it
    is installed, for its RedisManager; our code imports coredis only with --redis.)"""
    script = (
        "import sys, trio, roomactors, roomactors.cli\n"
        "from roomactors import RoomServerConfig, serve_roomserver\n"
        "async def main():\n"
        "    async with trio.open_nursery() as n:\n"
        "        s = await n.start(serve_roomserver, RoomServerConfig(port=0))\n"
        "        assert s.cluster is None\n"
        "        n.cancel_scope.cancel()\n"
        "trio.run(main)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'coredis'"
        " or m.startswith('roomactors.cluster'))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


async def test_healthz_counts_living_nodes_and_a_stopped_node_leaves(redis_server: RedisServer, prefix: str) -> None:
    async with open_node(node_config(redis_server, prefix, "a")) as a:
        async with open_node(node_config(redis_server, prefix, "b")) as b:
            with trio.fail_after(10):
                await wait_until(lambda: a.cluster.health.alive_nodes == 2 and b.cluster.health.reachable)
            health = await healthz(b)
            assert health["status"] == "ok"
            assert health["cluster"].items() >= {"node_id": "b", "redis": "reachable", "nodes_alive": 2}.items()
        # b stopped and deleted its key; a counts it gone at its next refresh
        with trio.fail_after(10):
            await wait_until(lambda: a.cluster.health.alive_nodes == 1)


async def test_node_id_defaults_to_host_and_pid(redis_server: RedisServer, prefix: str) -> None:
    config = node_config(redis_server, prefix, "x")
    config = RoomServerConfig(**{**config.__dict__, "node_id": None})
    async with open_node(config) as node:
        import os
        import socket

        assert node.cluster.node_id == f"{socket.gethostname()}-{os.getpid()}"


async def test_a_redis_restart_disconnects_no_client_and_is_logged_once(
    redis_server: RedisServer, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="roomactors.cluster")
    async with open_node(node_config(redis_server, prefix, "a", node_ttl=1.5)) as node:
        cluster = node.cluster
        async with open_python_clients() as clients:
            mia = clients.connect(node.url, "/lobby")
            await mia.wait_connected()
            mia.emit("join_lobby", {"id": 1, "username": "mia", "auth_level": "teacher"})
            assert await mia.next_event("updaterooms") == [[]]
            with trio.fail_after(10):
                await wait_until(lambda: cluster.health.reachable)
            await redis_server.stop()
            with trio.fail_after(10):
                await wait_until(lambda: not cluster.health.reachable)
            assert (await healthz(node))["cluster"]["redis"] == "unreachable"
            # the node keeps serving its own clients while Redis is away
            (ack,) = await mia.call("create_room", {"name": "Fractions", "deck": DECK})
            assert ack["ok"] is True
            await mia.next_event("updaterooms", where=lambda args: len(args[0]) == 1)
            await trio.sleep(1)  # several failed retries of every job: still one log line
            await redis_server.start()
            with trio.fail_after(10):
                await wait_until(lambda: cluster.health.reachable)
            assert (await healthz(node))["cluster"]["redis"] == "reachable"
            assert mia.connected and "disconnect" not in mia.names()
    lines = [r.getMessage() for r in caplog.records if r.name == "roomactors.cluster"]
    assert sum("unreachable" in line for line in lines) == 1, lines
    assert sum("reachable again" in line for line in lines) == 1, lines
