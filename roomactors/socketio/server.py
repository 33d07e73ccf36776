"""SocketIOServer: handler registry, broadcast, and serving on top of EngineIOServer.

The server itself holds only what is shared by all connections (the handlers
and the Engine.IO server); each Engine.IO session gets a
:class:`~.session.SocketIOSession` in the session's own nursery, so a failing
connection takes nothing else down.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, NoReturn, TypeVar

import trio

from ..engineio import EngineIOConfig, EngineIOServer, EngineSocket, HttpRoute
from .config import SocketIOConfig
from .session import SocketIOSession
from .sockets import EncodedEvent, Socket, encode_event

__all__ = ("SocketIOServer", "Handler")

logger = logging.getLogger(__name__)

Handler = Callable[..., Awaitable[Any]]
H = TypeVar("H", bound=Handler)


class SocketIOServer:
    """A Socket.IO v5 server on trio.

    Register handlers with :meth:`on` (``connect``, ``disconnect`` and event
    names, per namespace), then run :meth:`serve`. The main namespace ``/``
    always exists, as in every Socket.IO server; any other must be declared
    (by a handler or :meth:`namespace`) or clients get "Invalid namespace".
    """

    def __init__(
        self,
        config: SocketIOConfig = SocketIOConfig(),
        engineio: EngineIOConfig = EngineIOConfig(),
        *,
        http_fallback: HttpRoute | None = None,
    ) -> None:
        self.config = config
        self._handlers: dict[str, dict[str, Handler]] = {"/": {}}
        #: (namespace, event) of the handlers registered with ``inline=True``.
        self._inline: set[tuple[str, str]] = set()
        self.engineio = EngineIOServer(
            self._run_session, engineio, http_fallback=http_fallback, on_open=self._open_session
        )

    def namespace(self, name: str) -> None:
        """Declare a namespace clients may join, with or without handlers."""
        if not isinstance(name, str) or not name.startswith("/") or "," in name:
            raise ValueError(f"a namespace starts with '/' and has no ',': {name!r}")
        self._handlers.setdefault(name, {})

    def on(self, event: str, namespace: str = "/", *, inline: bool = False) -> Callable[[H], H]:
        """Decorator registering ``handler`` for ``event`` on ``namespace``.

        ``connect``: ``async (socket, auth) -> None``; raise
        :class:`ConnectionRefused` to refuse. ``disconnect``:
        ``async (socket, reason) -> None``. Any other event:
        ``async (socket, *args)``, whose return value is the ack
        (None -> no args, tuple -> several args, anything else -> one arg).

        ``inline=True`` (events only) lets the connection's reading task run
        the handler itself when nothing else of that connection is queued or
        running, which saves a task switch per event (latency, issue 4). Order
        and one-at-a-time still hold. The price: the client is not read while
        the handler runs, so such a handler must not wait for that client
        (``Socket.call`` raises ``RuntimeError`` there), and it is cancelled if
        the connection's transport ends while it waits.
        """
        self.namespace(namespace)
        if inline and event in ("connect", "disconnect"):
            raise ValueError(f"only event handlers can be inline, not {event!r}")

        def register(handler: H) -> H:
            self._handlers[namespace][event] = handler
            if inline:
                self._inline.add((namespace, event))
            else:
                self._inline.discard((namespace, event))
            return handler

        return register

    def encode_event(self, event: str, *args: Any, namespace: str = "/") -> EncodedEvent:
        """Encode an event once, for ``Socket.send_encoded`` to any number of sockets."""
        return encode_event(event, *args, namespace=namespace)

    def emit(self, event: str, *args: Any, to: Socket | Iterable[Socket], namespace: str = "/") -> None:
        """Send one event to several sockets of ``namespace``, encoded once; never blocks."""
        encoded = encode_event(event, *args, namespace=namespace)
        targets = [to] if isinstance(to, Socket) else list(to)
        strays = [socket for socket in targets if socket.namespace != namespace]
        if strays:
            raise ValueError(f"emit to {namespace} given sockets of other namespaces: {strays}")
        for socket in targets:
            socket.send_encoded(encoded)

    async def serve(
        self,
        host: str,
        port: int,
        *,
        handler_nursery: trio.Nursery | None = None,
        task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
    ) -> NoReturn:
        """Listen and serve forever; ``task_status.started`` gets the bound addresses."""
        await self.engineio.serve(host, port, handler_nursery=handler_nursery, task_status=task_status)
        raise AssertionError("EngineIOServer.serve returned")  # pragma: no cover

    async def serve_listeners(
        self,
        listeners: Any,
        *,
        handler_nursery: trio.Nursery | None = None,
        task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
    ) -> NoReturn:
        """Serve on listeners made by the caller (see ``EngineIOServer.serve_listeners``)."""
        await self.engineio.serve_listeners(listeners, handler_nursery=handler_nursery, task_status=task_status)
        raise AssertionError("EngineIOServer.serve_listeners returned")  # pragma: no cover

    def _open_session(self, eio: EngineSocket) -> None:
        eio.set_receiver(SocketIOSession(self, eio))

    async def _run_session(self, eio: EngineSocket) -> None:
        session = eio.receiver
        assert isinstance(session, SocketIOSession), session
        await session.run()
