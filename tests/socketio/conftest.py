"""Shared fixtures of the Socket.IO tests. FakeEngineSocket: a stand-in for roomactors.engineio.EngineSocket, for driving a SocketIOServer's
session logic in the test's own trio loop (and under autojump_clock) without
sockets. It records exactly what the Socket.IO layer hands to Engine.IO,
including the SharedMessage objects themselves, so tests can check identity."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any

import pytest
import trio

from roomactors.engineio.errors import EngineClosed
from roomactors.engineio.packets import SharedMessage


class FakeEngineSocket:
    def __init__(self, sid: str = "eio") -> None:
        self.sid = sid
        self.transport = "websocket"
        self.remote_address: str | None = "127.0.0.1"
        self.query: dict[str, str] = {}
        self.headers: dict[str, str] = {}
        self.close_reason: str | None = None
        #: Everything sent, one entry per send()/send_many(): (items, replace_key).
        self.outbox: list[tuple[tuple[Any, ...], Hashable | None]] = []
        self._send, self._recv = trio.open_memory_channel[str | bytes](math.inf)

    @property
    def closed(self) -> bool:
        return self.close_reason is not None

    # -- the EngineSocket API the Socket.IO layer uses --------------------

    def send(self, data: str | bytes | SharedMessage, *, replace_key: Hashable | None = None) -> None:
        if not self.closed:
            self.outbox.append(((data,), replace_key))

    def send_many(self, items: Sequence[str | bytes | SharedMessage]) -> None:
        if not self.closed:
            self.outbox.append((tuple(items), None))

    def close(self) -> None:
        self.end("server close")

    async def receive(self) -> str | bytes:
        try:
            return await self._recv.receive()
        except trio.EndOfChannel:
            raise EngineClosed(self.close_reason or "closed") from None

    # -- test side ------------------------------------------------------------

    def feed(self, *messages: str | bytes) -> None:
        for message in messages:
            self._send.send_nowait(message)

    def end(self, reason: str) -> None:
        if self.close_reason is None:
            self.close_reason = reason
            self._send.close()

    def texts(self) -> list[str | bytes]:
        """Every message sent, flattened, as the data it carries."""
        return [
            item.data if isinstance(item, SharedMessage) else item
            for items, _ in self.outbox
            for item in items
        ]


@pytest.fixture
def fake_engine() -> type[FakeEngineSocket]:
    """The FakeEngineSocket class (conftest modules are not importable by name)."""
    return FakeEngineSocket
