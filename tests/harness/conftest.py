"""Fixtures of the harness self-tests: a reference server and a client pool per kind."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from support.clients import Clients, client_params, open_clients
from support.refservers import open_echo_server


@pytest.fixture
async def echo_url() -> AsyncIterator[str]:
    async with open_echo_server() as url:
        yield url


@pytest.fixture(params=client_params())
async def clients(request: pytest.FixtureRequest, echo_url: str) -> AsyncIterator[Clients]:
    # Depends on echo_url so that the clients close before the server stops.
    async with open_clients(request.param) as pool:
        yield pool
