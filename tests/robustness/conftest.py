"""Shared fixtures of the robustness tests: hypothesis profiles and a running
room server on 127.0.0.1, port 0.

Hypothesis profiles (pick one with ``ROOMACTORS_HYPOTHESIS_PROFILE``):
``ci`` (the default) is small and derandomized so CI runs are reproducible and
quick on two shared cores; ``dev`` runs more examples with a random seed, for
hunting. Deadlines are off in both: timing on a shared machine is not a bug.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, settings

from roomactors import RoomServerConfig, serve_roomserver

settings.register_profile(
    "ci",
    max_examples=25,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "dev",
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("ROOMACTORS_HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def start_roomserver(nursery: trio.Nursery) -> Any:
    """``await start_roomserver(**config_fields)`` -> a running ``RoomServer``
    on 127.0.0.1 with a free port; it stops with the test's nursery."""

    async def start(**fields: Any) -> Any:
        config = RoomServerConfig(host="127.0.0.1", port=0, **fields)
        return await nursery.start(serve_roomserver, config)

    return start


@pytest.fixture
async def roomserver(start_roomserver: Any) -> AsyncIterator[Any]:
    """A room server with the default configuration."""
    yield await start_roomserver()
