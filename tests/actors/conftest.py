"""Fixtures for the actor tests: a running lobby without a rate limit."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from actors.helpers import NO_RATE_LIMIT

from roomactors.actors import Lobby, open_lobby


@pytest.fixture
async def lobby() -> AsyncIterator[Lobby]:
    async with open_lobby(NO_RATE_LIMIT) as lobby:
        yield lobby
