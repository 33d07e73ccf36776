"""Pick a client harness by name, so one test runs against both real clients.

    @pytest.mark.parametrize("client_kind", CLIENT_KINDS)
    async def test_x(client_kind):
        async with open_clients(client_kind) as clients:
            sock = clients.connect(url, "/lobby")

Tests parametrized this way should also carry the ``node`` marker (or use
:func:`client_params`, which marks the Node case only).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

import pytest

from support.clientapi import ReceivedEvent
from support.nodeclient import open_node_clients
from support.pyclient import open_python_clients

CLIENT_KINDS = ("python", "node")


def client_params() -> list[Any]:
    """``CLIENT_KINDS`` as pytest params, the Node one marked ``node``."""
    return [pytest.param("python", id="python"), pytest.param("node", id="node", marks=pytest.mark.node)]


class ClientSocket(Protocol):
    """What both harnesses' sockets offer (NodeSocket, PySocket)."""

    kind: str
    namespace: str
    events: list[ReceivedEvent]

    @property
    def connected(self) -> bool: ...
    def sibling(self, namespace: str) -> ClientSocket: ...
    def emit(self, event: str, *args: Any) -> None: ...
    async def call(self, event: str, *args: Any, timeout: float = ...) -> list[Any]: ...
    def reply(self, event: str, *args: Any) -> None: ...
    async def transport(self) -> str | None: ...
    async def disconnect(self, *, timeout: float = ...) -> None: ...
    async def wait_connected(self, *, timeout: float = ...) -> None: ...
    async def next_event(self, name: str, *, where: Any = None, timeout: float = ...) -> list[Any]: ...
    def received(self, name: str) -> list[list[Any]]: ...
    def names(self) -> list[str]: ...


class Clients(Protocol):
    """What both harnesses' pools offer (NodeClients, PythonClients)."""

    kind: str

    def connect(self, url: str, namespace: str = "/", **opts: Any) -> ClientSocket: ...


@asynccontextmanager
async def open_clients(kind: str) -> AsyncIterator[Clients]:
    """``open_python_clients()`` or ``open_node_clients()`` by name."""
    if kind == "python":
        async with open_python_clients() as clients:
            yield clients
    elif kind == "node":
        async with open_node_clients() as clients:
            yield clients
    else:
        raise ValueError(f"unknown client kind {kind!r}; expected one of {CLIENT_KINDS}")
