"""What the Python and the Node client harnesses have in common.

Why one module: a test parametrized over ``["python", "node"]`` must see the same
objects from both (the same event records, the same waiting rules, the same
exceptions, the same disconnect reasons), so everything that is not specific to
one client library lives here.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import trio

#: How long the harness waits by default for something the server should send.
#: Generous because CI machines are shared; tests that expect silence pass their own.
DEFAULT_TIMEOUT = 10.0

#: Lifecycle records share the event log with server events. Socket.IO reserves
#: these names, so a server can never send an event that collides with them.
LIFECYCLE_EVENTS = frozenset({"connect", "connect_error", "disconnect", "upgrade"})


@dataclass(frozen=True)
class ReceivedEvent:
    """One thing a client socket saw, in arrival order.

    ``event`` is the server's event name or a lifecycle name (``connect``,
    ``connect_error`` with ``[message]``, ``disconnect`` with ``[reason]``,
    ``upgrade`` with ``[transport]``, Node only). ``ack`` says whether the server
    asked for an ack; ``detail`` keeps what the client library gave beyond that
    (the connect_error data, the library's own disconnect reason).
    """

    event: str
    args: list[Any]
    ack: bool = False
    detail: Any = None


class ConnectRefused(Exception):
    """The namespace connection failed (CONNECT_ERROR or the transport gave up)."""

    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


class AckError(Exception):
    """A client->server call failed in the client (timed out, not connected)."""


# Disconnect reasons differ between the libraries; tests compare the normalized ones.
_REASONS = {
    "io client disconnect": "client disconnect",
    "io server disconnect": "server disconnect",
    "forced close": "client disconnect",
}


def normalize_reason(reason: str) -> str:
    """Map a client library's disconnect reason to one vocabulary for both harnesses:
    ``client disconnect``, ``server disconnect``, ``transport close``,
    ``transport error``, ``ping timeout``, ``parse error``."""
    return _REASONS.get(reason, reason)


def to_wire(value: Any) -> Any:
    """Make a value JSON-safe for the Node client's pipe: bytes become {"$bin": base64}."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bin": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, (list, tuple)):
        return [to_wire(v) for v in value]
    if isinstance(value, dict):
        return {k: to_wire(v) for k, v in value.items()}
    return value


def from_wire(value: Any) -> Any:
    """The inverse of :func:`to_wire`: {"$bin": base64} becomes bytes."""
    if isinstance(value, list):
        return [from_wire(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1 and "$bin" in value:
            return base64.b64decode(value["$bin"])
        return {k: from_wire(v) for k, v in value.items()}
    return value


class EventLog:
    """The ordered log of one client socket, and waiting on it without sleeping.

    Every record is kept in ``events``. ``next_event(name)`` returns the first
    record of that name after the one it returned last time for the same name, so
    an event that arrived before the test started waiting is never missed.
    """

    def __init__(self) -> None:
        self.events: list[ReceivedEvent] = []
        self._cursors: dict[str, int] = {}
        self._arrived = trio.Event()

    @property
    def connected(self) -> bool:
        """Whether the last lifecycle record says connected."""
        for item in reversed(self.events):
            if item.event == "connect":
                return True
            if item.event in ("disconnect", "connect_error"):
                return False
        return False

    def record(self, item: ReceivedEvent) -> None:
        """Append a record and wake every waiter (called on the trio thread)."""
        self.events.append(item)
        self._arrived.set()
        self._arrived = trio.Event()

    def names(self) -> list[str]:
        """The event names seen so far, for assertion messages."""
        return [e.event for e in self.events]

    def received(self, name: str) -> list[list[Any]]:
        """The args of every record of this name so far (does not move the cursor)."""
        return [e.args for e in self.events if e.event == name]

    async def wait_record(
        self,
        name: str,
        *,
        where: Callable[[list[Any]], bool] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        fail_on: Sequence[str] = (),
    ) -> ReceivedEvent:
        """The next record called ``name`` (matching ``where`` if given).

        Raises ``trio.TooSlowError`` naming what did arrive. ``fail_on`` names
        records that end the wait with an AssertionError (say ``disconnect``).
        """
        start = self._cursors.get(name, -1) + 1
        fail_from = len(self.events)
        with trio.move_on_after(timeout if timeout is not None else math.inf):
            while True:
                for index in range(start, len(self.events)):
                    item = self.events[index]
                    if item.event == name and (where is None or where(item.args)):
                        self._cursors[name] = index
                        return item
                for item in self.events[fail_from:]:
                    if item.event in fail_on:
                        raise AssertionError(
                            f"waiting for {name!r}, got {item.event!r} {item.args!r}; log: {self.names()}"
                        )
                fail_from = len(self.events)
                await self._arrived.wait()
        raise trio.TooSlowError(
            f"no {name!r} event{' matching the condition' if where else ''} within {timeout}s;"
            f" received so far: {self.names()}"
        )

    async def next_event(
        self,
        name: str,
        *,
        where: Callable[[list[Any]], bool] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> list[Any]:
        """The args of the next ``name`` event (see :meth:`wait_record`)."""
        return (await self.wait_record(name, where=where, timeout=timeout)).args

    async def wait_connected(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Wait for ``connect``; raise :class:`ConnectRefused` on ``connect_error``."""
        with trio.move_on_after(timeout):
            while True:
                for item in self.events:
                    if item.event == "connect":
                        return
                    if item.event == "connect_error":
                        raise ConnectRefused(item.args[0] if item.args else "", item.detail)
                await self._arrived.wait()
        raise trio.TooSlowError(f"not connected within {timeout}s; received so far: {self.names()}")


async def wait_websocket(sock: Any, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Until ``sock`` (a socket of either harness) is on WebSocket: from the start,
    or by the upgrade, which both harnesses record as an ``upgrade`` event, so the
    wait is on that event, not a polling loop."""
    if await sock.transport() != "websocket":
        await sock.next_event("upgrade", where=lambda args: args == ["websocket"], timeout=timeout)
    assert await sock.transport() == "websocket", sock.names()


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            out.extend(_leaves(exc))
        else:
            out.append(exc)
    return out


@contextmanager
def single_errors() -> Iterator[None]:
    """Re-raise a lone exception out of a nursery's ExceptionGroup as itself.

    Why: the harnesses own a nursery around the test's body; without this, a
    plain ``assert`` failing in a test would reach pytest wrapped in a group.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        leaves = _leaves(group)
        if len(leaves) == 1:
            raise leaves[0] from None
        raise
