"""Node liveness: a key per node with a TTL, refreshed while the node runs.

``{prefix}node:{node_id}`` holds the time the node started; it expires ``ttl``
seconds after the last refresh, so a node that died (``kill -9``) disappears from
Redis within ``ttl`` without anyone cleaning up after it. A graceful stop deletes
the key at once. Counting the keys is how ``/healthz`` knows how many nodes are
alive, and (later) how the room directory knows whose rooms to drop.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import trio

from .link import RedisHealth, connect, logger

__all__ = ("alive_nodes", "keep_alive", "leave", "node_key")

REFRESHES_PER_TTL = 3
"""Refreshes within one TTL: two refreshes may be lost before the node counts as dead."""


def node_key(prefix: str, node_id: str) -> str:
    return f"{prefix}node:{node_id}"


async def alive_nodes(client: object, prefix: str) -> list[str]:
    """The ids of the nodes whose liveness key exists now."""
    pattern = node_key(prefix, "*")
    found: list[str] = []
    async for key in client.scan_iter(match=pattern, count=500):  # type: ignore[attr-defined]
        raw = key.decode() if isinstance(key, bytes) else str(key)
        found.append(raw[len(pattern) - 1 :])
    return sorted(found)


async def keep_alive(
    url: str, prefix: str, node_id: str, ttl: float, health: RedisHealth,
    on_alive: Callable[[frozenset[str], bool], None] | None = None,
    settle: float = 0.0,
) -> None:
    """Refresh this node's liveness key every ``ttl / 3`` s and find the living
    nodes (``on_alive`` gets them, and whether this session has lasted ``settle``
    seconds: before that, a node missing from Redis may just not have refreshed
    since Redis restarted); returns only by cancellation (or raises when Redis
    fails)."""
    key = node_key(prefix, node_id)
    ttl_ms = max(1, round(ttl * 1000))
    async with connect(url) as client:
        session_start = trio.current_time()
        while True:
            await client.set(key, str(time.time()), px=ttl_ms)
            nodes = await alive_nodes(client, prefix)
            health.alive_nodes = len(nodes)
            if on_alive is not None:
                on_alive(frozenset(nodes), trio.current_time() - session_start >= settle)
            health.job_ok("liveness")
            await trio.sleep(ttl / REFRESHES_PER_TTL)


async def leave(url: str, prefix: str, node_id: str) -> None:
    """Delete this node's liveness key, so it leaves the cluster now, not after its
    TTL; best effort (at most a second; without Redis the TTL does it)."""
    with trio.move_on_after(1):
        try:
            async with connect(url) as client:
                await client.delete([node_key(prefix, node_id)])
        except Exception as exc:  # Redis away: the key expires by itself
            logger.debug("could not delete the liveness key: %s", exc)
