"""Fixtures of the cluster tests: a real redis-server per test, a key prefix per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import importlib.util

import pytest
from support.redisserver import RedisServer, open_redis_server, unique_prefix

if importlib.util.find_spec("coredis") is None:  # the `redis` extra is not installed
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture
async def redis_server() -> AsyncIterator[RedisServer]:
    async with open_redis_server() as server:
        yield server


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    return unique_prefix(request.node.name)
