"""python-socketio's client, driven from trio tests with the same API as the Node harness.

Why the sync ``socketio.Client``: it is what Python users of the game run, and its
threads keep it out of our trio loop (its ``AsyncClient`` needs asyncio). Blocking
calls (connect, disconnect, shutdown) run in ``trio.to_thread``; everything the
client's threads see is handed to the trio side with ``TrioToken.run_sync_soon``,
which never blocks those threads, so the order of arrival is kept (the client's
read loop delivers messages itself, in order: see ``_InOrderEngineIOClient``).

Works with a server running in the test's own trio loop (the client's sockets are
blocking ones in threads). Don't combine with ``autojump_clock``: the harness's
timeouts are trio time, and a clock that jumps while the client thread works
would expire them at once.

Usage (a test can be parametrized over this and :mod:`support.nodeclient`)::

    async with open_python_clients() as clients:
        sock = clients.connect(url, "/lobby", transports=["websocket"])
        await sock.wait_connected()
        sock.emit("join_lobby", {"id": 1})
        rooms, = await sock.next_event("updaterooms")
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any
from urllib.parse import urlencode

import engineio
import socketio
import trio

from support.clientapi import (
    DEFAULT_TIMEOUT,
    EventLog,
    ReceivedEvent,
    normalize_reason,
    single_errors,
)

logger = logging.getLogger(__name__)


class _InOrderEngineIOClient(engineio.Client):
    """python-engineio's client runs each message's handler in a new thread, so
    two events can reach the test in either order; the tests assert on the order
    the server sent (``roomclosed`` before ``updaterooms``), as socket.io-client
    keeps it. Here the read loop hands every message over itself, in order (our
    handlers only queue, they never block)."""

    def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        if event == "message":
            kwargs["run_async"] = False
        return super()._trigger_event(event, *args, **kwargs)


class _RecordingClient(socketio.Client):
    """A Client that delivers in order and remembers whether the event being
    handled asked for an ack, which the public handler signature does not tell."""

    acked_event = False

    def _engineio_client_class(self) -> type[engineio.Client]:
        return _InOrderEngineIOClient

    def _handle_event(self, namespace: str, ack_id: int | None, data: list[Any]) -> None:
        self.acked_event = ack_id is not None
        super()._handle_event(namespace, ack_id, data)


def _hang_up(client: socketio.Client) -> None:
    """``client.disconnect()`` without waiting for the read loop's pending poll.

    Why: ``Client.disconnect()`` joins the polling read loop, and some servers
    (python-engineio's among them) leave that GET open until the next ping, which
    would stall a test for up to pingInterval. The close packet goes out all the
    same; the read thread ends when its GET returns or the server goes away.
    """
    for namespace in list(client.namespaces):
        client._send_packet(client.packet_class(socketio.packet.DISCONNECT, namespace=namespace))
    client.eio.disconnect(abort=True)


def _end_write_loop(client: socketio.Client) -> None:
    """Wake the write loop python-engineio can leave waiting after the server closed.

    Why: on a close from the server, python-engineio queues the close packet and
    a wake-up (``None``) for its writer thread, but the writer can take both
    before the state leaves "connected"; it then waits in ``queue.get`` for
    pingInterval + 5 s and logs an ERROR ("packet queue is empty, aborting") into
    whatever test runs at that moment. Only for a client that is done: the queue
    outlives the connection, and a reconnection's writer would take the ``None``.
    """
    eio = client.eio
    if eio.state != "connected" and eio.write_loop_task is not None:
        eio.queue.put(None)


class PySocket(EventLog):
    """One namespace of one python-socketio connection."""

    kind = "python"

    def __init__(self, connection: _Connection, namespace: str) -> None:
        super().__init__()
        self._connection = connection
        self.namespace = namespace
        self.id = f"{connection.name}{namespace}"

    def sibling(self, namespace: str) -> PySocket:
        """The socket of another namespace opened on the same connection by ``connect(namespaces=...)``."""
        return self._connection.sockets[namespace]

    def emit(self, event: str, *args: Any) -> None:
        """Send an event without an ack; never blocks (buffered until connected, like
        socket.io-client; dropped once disconnected)."""
        self._connection.submit(lambda client: self._emit(client, event, args, None))

    def _emit(self, client: socketio.Client, event: str, args: tuple[Any, ...], callback: Callable[..., None] | None) -> None:
        try:
            client.emit(event, tuple(args), namespace=self.namespace, callback=callback)
        except socketio.exceptions.BadNamespaceError:
            logger.debug("%s: %r not sent, namespace not connected", self.id, event)

    async def call(self, event: str, *args: Any, timeout: float = DEFAULT_TIMEOUT) -> list[Any]:
        """Send an event with an ack and return the ack's arguments.

        Raises ``trio.TooSlowError`` when no ack arrives within ``timeout``.
        """
        done = trio.Event()
        result: list[Any] = []
        token = trio.lowlevel.current_trio_token()

        def resolve(ack_args: tuple[Any, ...]) -> None:
            result.extend(ack_args)
            done.set()

        def on_ack(*ack_args: Any) -> None:  # on a client thread
            try:
                token.run_sync_soon(resolve, ack_args)
            except trio.RunFinishedError:
                pass

        self._connection.submit(lambda client: self._emit(client, event, args, on_ack))
        with trio.move_on_after(timeout):
            await done.wait()
            return result
        raise trio.TooSlowError(f"no ack for {event!r} within {timeout}s")

    async def wait_connected(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Wait for ``connect``, and for python-socketio's connect() to return (it
        marks the client connected only then; a disconnect before that is lost)."""
        await super().wait_connected(timeout=timeout)
        with trio.fail_after(timeout):
            await self._connection.handshake_done.wait()

    def reply(self, event: str, *args: Any) -> None:
        """Answer the server's future ``event`` requests for an ack with ``args``
        (without a canned reply the ack carries no arguments)."""
        self._connection.replies[(self.namespace, event)] = tuple(args)

    async def transport(self) -> str | None:
        """The Engine.IO transport in use now: ``polling`` or ``websocket``."""
        await self._connection.handshake_done.wait()
        return self._connection.client.transport() or None

    async def disconnect(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Leave the namespace (the connection closes when it was its last one)
        and wait until the client reports it."""
        await self._connection.handshake_done.wait()
        if not self.connected:
            return
        client = self._connection.client
        if set(client.namespaces) - {self.namespace}:
            # python-socketio can only disconnect a whole client; leave one namespace
            # the way socket.io-client does: a DISCONNECT packet for it alone.
            client._send_packet(client.packet_class(socketio.packet.DISCONNECT, namespace=self.namespace))
            client.namespaces.pop(self.namespace, None)
            self.record(ReceivedEvent("disconnect", ["client disconnect"], detail="client disconnect"))
            return
        await trio.to_thread.run_sync(_hang_up, client, abandon_on_cancel=True)
        await self.wait_record("disconnect", timeout=timeout)

    def __repr__(self) -> str:
        return f"<PySocket {self.id} events={self.names()}>"


class _Connection:
    """One socketio.Client and the PySockets of its namespaces."""

    def __init__(self, name: str, client: _RecordingClient, namespaces: Sequence[str]) -> None:
        self.name = name
        self.client = client
        self.sockets = {ns: PySocket(self, ns) for ns in namespaces}
        self.replies: dict[tuple[str, str], tuple[Any, ...]] = {}
        self.backlog: list[Callable[[socketio.Client], None]] | None = []
        self.handshake_done = trio.Event()
        self._token = trio.lowlevel.current_trio_token()
        for ns in namespaces:
            self._install_handlers(ns)

    def submit(self, action: Callable[[socketio.Client], None]) -> None:
        """Run ``action(client)`` now if the connect call returned, else after it, in order."""
        if self.backlog is not None:
            self.backlog.append(action)
        else:
            action(self.client)

    def _deliver(self, namespace: str, item: ReceivedEvent) -> None:  # on a client thread
        try:
            self._token.run_sync_soon(self.sockets[namespace].record, item)
        except trio.RunFinishedError:
            pass

    def _install_handlers(self, namespace: str) -> None:
        client = self.client

        def on_connect() -> None:
            self._deliver(namespace, ReceivedEvent("connect", [], detail=client.get_sid(namespace)))

        def on_connect_error(data: Any = None) -> None:
            if isinstance(data, dict) and "message" in data:
                message, detail = str(data["message"]), data.get("data")
            else:
                message, detail = str(data), data
            self._deliver(namespace, ReceivedEvent("connect_error", [message], detail=detail))

        def on_disconnect(reason: str = "") -> None:
            self._deliver(namespace, ReceivedEvent("disconnect", [normalize_reason(reason)], detail=reason))

        def on_any(event: str, *args: Any) -> Any:
            self._deliver(namespace, ReceivedEvent(event, list(args), ack=client.acked_event))
            canned = self.replies.get((namespace, event))
            return canned if canned else None

        client.on("connect", on_connect, namespace=namespace)
        client.on("connect_error", on_connect_error, namespace=namespace)
        client.on("disconnect", on_disconnect, namespace=namespace)
        client.on("*", on_any, namespace=namespace)

    async def run_connect(self, kwargs: dict[str, Any]) -> None:
        """Connect in a thread, then send what the test emitted meanwhile."""
        try:
            await trio.to_thread.run_sync(partial(self.client.connect, **kwargs), abandon_on_cancel=True)
            if kwargs["transports"] is None and self.client.transport() == "websocket":
                # The client upgraded from polling inside connect(); say so as
                # socket.io-client does, so tests can wait for it on both.
                for sock in self.sockets.values():
                    sock.record(ReceivedEvent("upgrade", ["websocket"]))
        except socketio.exceptions.ConnectionError as exc:
            for sock in self.sockets.values():
                # connect_error handlers ran for refused namespaces; name the rest.
                if not any(e.event in ("connect", "connect_error") for e in sock.events):
                    sock.record(ReceivedEvent("connect_error", [str(exc)], detail=None))
        finally:
            self.handshake_done.set()
            backlog, self.backlog = self.backlog or [], None
            for action in backlog:
                action(self.client)


class PythonClients:
    """Every python-socketio client of one block; made by :func:`open_python_clients`."""

    kind = "python"

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self._connections: list[_Connection] = []

    def connect(
        self,
        url: str,
        namespace: str = "/",
        *,
        namespaces: Sequence[str] = (),
        transports: Sequence[str] | None = None,
        auth: Any = None,
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
        path: str = "/socket.io/",
        reconnection: bool = True,
        **client_options: Any,
    ) -> PySocket:
        """Open a new connection to ``url`` and join ``namespace`` (plus ``namespaces``,
        on the same connection: see :meth:`PySocket.sibling`).

        Returns at once; ``await sock.wait_connected()`` to know the outcome. The
        options mean what socket.io-client's do; others go to ``socketio.Client``.
        """
        # socket.io-client spellings, so one options dict serves both harnesses.
        client_options.pop("forceNew", None)  # every connect() here is a new connection anyway
        client_options.pop("multiplex", None)
        if "extraHeaders" in client_options:
            headers = {**client_options.pop("extraHeaders"), **(headers or {})}
        all_namespaces = [namespace, *(ns for ns in namespaces if ns != namespace)]
        client = _RecordingClient(reconnection=reconnection, logger=False, engineio_logger=False, **client_options)
        connection = _Connection(f"py{len(self._connections) + 1}", client, all_namespaces)
        self._connections.append(connection)
        if query:
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(query)}"
        kwargs: dict[str, Any] = {
            "url": url,
            "headers": headers or {},
            "auth": auth,
            "transports": list(transports) if transports else None,
            "namespaces": all_namespaces,
            "socketio_path": path.strip("/"),
            "wait_timeout": DEFAULT_TIMEOUT,
        }
        self._nursery.start_soon(connection.run_connect, kwargs)
        return connection.sockets[namespace]

    async def _close(self) -> None:
        for connection in self._connections:
            with trio.move_on_after(10.0):
                await connection.handshake_done.wait()
                client = connection.client
                if client.connected:
                    await trio.to_thread.run_sync(_hang_up, client, abandon_on_cancel=True)
                else:  # shutdown() stops a reconnection in progress
                    await trio.to_thread.run_sync(client.shutdown, abandon_on_cancel=True)
                    _end_write_loop(client)


@asynccontextmanager
async def open_python_clients() -> AsyncIterator[PythonClients]:
    """python-socketio clients for the block's duration; all are shut down at its end."""
    with single_errors():
        async with trio.open_nursery() as nursery:
            clients = PythonClients(nursery)
            try:
                yield clients
            finally:
                with trio.CancelScope(shield=True):
                    await clients._close()
                nursery.cancel_scope.cancel()
