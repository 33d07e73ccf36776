"""Room servers as nodes of one cluster on a test's redis-server, in the test's nursery."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import trio
from support.rawhttp import http
from support.redisserver import RedisServer
from support.waiting import wait_until

from roomactors.config import RoomServerConfig
from roomactors.server import RoomServer, serve_roomserver


def node_config(redis: RedisServer, prefix: str, node_id: str, **more: Any) -> RoomServerConfig:
    """A node on ``redis`` whose keys and python-socketio channel carry ``prefix``."""
    return RoomServerConfig(
        port=0, shutdown_timeout=5, redis_url=redis.url, node_id=node_id,
        redis_prefix=prefix, redis_channel=f"{prefix}socketio", **more,
    )


@asynccontextmanager
async def open_node(config: RoomServerConfig) -> AsyncIterator[RoomServer]:
    async with trio.open_nursery() as nursery:
        server: RoomServer = await nursery.start(serve_roomserver, config)
        try:
            yield server
        finally:
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def open_nodes(
    redis: RedisServer, prefix: str, count: int, *, first: int = 0, **more: Any
) -> AsyncIterator[list[RoomServer]]:
    """``count`` nodes (ids ``n{first}`` on), returned once each has subscribed to the
    python-socketio channel and synced its room directory."""
    async with AsyncExitStack() as stack:
        nodes = [
            await stack.enter_async_context(open_node(node_config(redis, prefix, f"n{i}", **more)))
            for i in range(first, first + count)
        ]
        with trio.fail_after(10):
            await wait_until(
                lambda: all(
                    n.cluster is not None and n.cluster.subscribed.is_set() and n.cluster.directory.synced.is_set()
                    for n in nodes
                )
            )
        yield nodes


async def healthz(server: RoomServer) -> dict[str, Any]:
    reply = await http(server.port, "GET", "/healthz")
    assert reply.status == 200
    return json.loads(reply.body)
