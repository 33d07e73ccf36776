"""socket.io-client 4 under Node, remote-controlled from trio tests.

Why a subprocess and not a Python reimplementation: the point is to meet the
server exactly as the game's real clients do. ``tests/js/client.mjs`` maps JSON
lines to socket.io-client calls; this module is the trio side of those pipes.

Usage::

    async with open_node_clients() as clients:
        sock = clients.connect(url, "/lobby")
        await sock.wait_connected()
        sock.emit("join_lobby", {"id": 1})
        rooms, = await sock.next_event("updaterooms")
        reply, = await sock.call("create_room", {...})

One process serves every socket of the block; it is stopped (and killed if it
must be) when the block ends. Timeouts are trio time: don't combine with
``autojump_clock``, which would jump while Node works. The test is skipped when ``tests/js/node_modules``
or ``node`` is missing.
"""

from __future__ import annotations

import itertools
import json
import logging
import shutil
import subprocess
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio

from support.clientapi import (
    DEFAULT_TIMEOUT,
    AckError,
    EventLog,
    ReceivedEvent,
    from_wire,
    normalize_reason,
    single_errors,
    to_wire,
)

logger = logging.getLogger(__name__)

JS_DIR = Path(__file__).resolve().parent.parent / "js"
CLIENT_SCRIPT = JS_DIR / "client.mjs"
#: socket.io-client 1.x/2.x (npm aliases in tests/js/package.json), driven by this script.
LEGACY_SCRIPT = JS_DIR / "legacy_client.cjs"
LEGACY_LIBRARIES = ("socket.io-client-1", "socket.io-client-2")

#: Node starts in well under a second, but the CI machine is shared.
STARTUP_TIMEOUT = 30.0


def node_or_skip(library: str = "socket.io-client") -> str:
    """The node executable, or skip the test saying what to install."""
    if not (JS_DIR / "node_modules" / library).is_dir():
        pytest.skip(f"socket.io-client is not installed: run `npm install --no-package-lock` in {JS_DIR}")
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH")
    return node


class _Reply:
    """A slot for the answer to one request (an ack, a transport name)."""

    def __init__(self) -> None:
        self.done = trio.Event()
        self.value: Any = None
        self.error: str | None = None


class NodeSocket(EventLog):
    """One socket.io-client Socket (one namespace of one connection) in the Node process."""

    kind = "node"

    def __init__(self, clients: NodeClients, sid: str, namespace: str) -> None:
        super().__init__()
        self._clients = clients
        self.id = sid
        self.namespace = namespace
        self._siblings: dict[str, NodeSocket] = {namespace: self}

    def sibling(self, namespace: str) -> NodeSocket:
        """The socket of another namespace opened on the same connection by ``connect(namespaces=...)``."""
        return self._siblings[namespace]

    def emit(self, event: str, *args: Any) -> None:
        """Send an event without an ack; never blocks (socket.io-client buffers until connected)."""
        self._clients._send({"op": "emit", "id": self.id, "event": event, "args": to_wire(list(args))})

    async def call(self, event: str, *args: Any, timeout: float = DEFAULT_TIMEOUT) -> list[Any]:
        """Send an event with an ack and return the ack's arguments.

        Raises ``trio.TooSlowError`` when no ack arrives within ``timeout``.
        """
        reply = await self._clients._request(
            {"op": "call", "id": self.id, "event": event, "args": to_wire(list(args)), "timeout": int(timeout * 1000)},
            timeout=timeout + 5.0,
        )
        if reply.error is not None:
            if "timed out" in reply.error:
                raise trio.TooSlowError(f"no ack for {event!r} within {timeout}s")
            raise AckError(reply.error)
        return from_wire(reply.value)

    def reply(self, event: str, *args: Any) -> None:
        """Answer the server's future ``event`` requests for an ack with ``args``.

        Without a canned reply the ack is sent with no arguments, as
        python-socketio does when a handler returns None.
        """
        self._clients._send({"op": "reply", "id": self.id, "event": event, "args": to_wire(list(args))})

    async def transport(self) -> str | None:
        """The Engine.IO transport in use now: ``polling`` or ``websocket``."""
        reply = await self._clients._request({"op": "transport", "id": self.id}, timeout=DEFAULT_TIMEOUT)
        if reply.error is not None:
            raise AckError(reply.error)
        return reply.value

    async def disconnect(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Leave the namespace (the connection closes when it was its last one)
        and wait until the client reports it."""
        was_connected = self.connected
        self._clients._send({"op": "disconnect", "id": self.id})
        if was_connected:
            await self.wait_record("disconnect", timeout=timeout)

    def __repr__(self) -> str:
        return f"<NodeSocket {self.id} {self.namespace} events={self.names()}>"


class NodeClients:
    """The Node process and every socket in it; made by :func:`open_node_clients`."""

    kind = "node"

    def __init__(self, process: trio.Process) -> None:
        self._process = process
        self._outbox_send, self._outbox_receive = trio.open_memory_channel[bytes](float("inf"))
        self._sockets: dict[str, NodeSocket] = {}
        self._pending: dict[int, _Reply] = {}
        self._ids = itertools.count(1)
        self._seqs = itertools.count(1)
        self._ready = trio.Event()
        self._exited = trio.Event()
        #: Errors the Node side reported that belong to no request (a harness misuse).
        self.errors: list[str] = []

    def connect(
        self,
        url: str,
        namespace: str = "/",
        *,
        namespaces: Sequence[str] = (),
        **opts: Any,
    ) -> NodeSocket:
        """Open a new connection to ``url`` and join ``namespace`` (plus ``namespaces``,
        on the same connection: see :meth:`NodeSocket.sibling`).

        Returns at once; ``await sock.wait_connected()`` to know the outcome.
        ``opts`` are socket.io-client options (``transports``, ``auth``, ``query``,
        ``reconnection``, ...); ``headers`` is accepted for ``extraHeaders``. Each
        call makes its own connection (``forceNew``), like one python-socketio
        Client, unless ``forceNew``/``multiplex`` is passed.
        """
        options = dict(opts)
        if "headers" in options:
            options["extraHeaders"] = options.pop("headers")
        if "forceNew" not in options and "multiplex" not in options:
            options["forceNew"] = True
        main = self._new_socket(namespace)
        self._send({"op": "connect", "id": main.id, "url": url, "namespace": namespace, "opts": to_wire(options)})
        for other in namespaces:
            if other == namespace:
                continue
            sock = self._new_socket(other)
            sub_opts = {"auth": options["auth"]} if "auth" in options else {}
            self._send({"op": "connect", "id": sock.id, "share": main.id, "namespace": other, "opts": to_wire(sub_opts)})
            main._siblings[other] = sock
        for sock in main._siblings.values():
            sock._siblings = main._siblings
        return main

    def _new_socket(self, namespace: str) -> NodeSocket:
        sock = NodeSocket(self, f"s{next(self._ids)}", namespace)
        self._sockets[sock.id] = sock
        return sock

    # -- the pipes ---------------------------------------------------------------

    def _send(self, command: dict[str, Any]) -> None:
        if self._exited.is_set():
            raise AckError("the Node client process has exited")
        self._outbox_send.send_nowait((json.dumps(command) + "\n").encode())

    async def _request(self, command: dict[str, Any], *, timeout: float) -> _Reply:
        seq = next(self._seqs)
        reply = self._pending[seq] = _Reply()
        try:
            self._send({**command, "seq": seq})
            with trio.fail_after(timeout):
                await reply.done.wait()
        finally:
            self._pending.pop(seq, None)
        return reply

    async def _write_loop(self) -> None:
        assert self._process.stdin is not None
        async for line in self._outbox_receive:
            try:
                await self._process.stdin.send_all(line)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
        await self._process.stdin.aclose()

    async def _read_loop(self) -> None:
        assert self._process.stdout is not None
        buffer = b""
        try:
            async for chunk in self._process.stdout:
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        self._dispatch(json.loads(line))
        finally:
            self._exited.set()
            for reply in self._pending.values():
                reply.error = "the Node client process has exited"
                reply.done.set()

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        logger.debug("node client: %s", message)
        if kind == "ready":
            self._ready.set()
            return
        if kind in ("ack", "transport") or (kind == "error" and message.get("seq") in self._pending):
            reply = self._pending.get(message.get("seq"))  # type: ignore[arg-type]
            if reply is None:
                return  # the waiter gave up already
            reply.value = message.get("args") if kind == "ack" else message.get("name")
            reply.error = message.get("error") if kind == "ack" else message.get("message")
            reply.done.set()
            return
        if kind == "error":
            self.errors.append(message.get("message", ""))
            logger.error("node client error: %s", message)
            return
        sock = self._sockets.get(message.get("id", ""))
        if sock is None:
            return
        if kind == "event":
            sock.record(ReceivedEvent(message["event"], from_wire(message["args"]), bool(message.get("ack"))))
        elif kind == "connect":
            sock.record(ReceivedEvent("connect", [], detail=message.get("sid")))
        elif kind == "connect_error":
            sock.record(ReceivedEvent("connect_error", [message.get("message")], detail=from_wire(message.get("data"))))
        elif kind == "disconnect":
            raw = message.get("reason", "")
            sock.record(ReceivedEvent("disconnect", [normalize_reason(raw)], detail=raw))
        elif kind == "upgrade":
            sock.record(ReceivedEvent("upgrade", [message.get("transport")]))

    async def _close(self) -> None:
        """Ask the process to disconnect everything and exit; the caller kills it if it lingers."""
        if not self._exited.is_set():
            try:
                self._send({"op": "exit"})
            except AckError:
                pass
        self._outbox_send.close()
        with trio.move_on_after(5.0):
            await self._exited.wait()
            await self._process.wait()


@asynccontextmanager
async def open_node_clients(library: str | None = None) -> AsyncIterator[NodeClients]:
    """Start ``node tests/js/client.mjs`` for the block's duration (see the module doc).

    ``library``: one of :data:`LEGACY_LIBRARIES` runs that old socket.io-client
    (Engine.IO v3) through ``legacy_client.cjs`` instead, with the same API.
    """
    node = node_or_skip(library or "socket.io-client")
    command = [node, str(CLIENT_SCRIPT)] if library is None else [node, str(LEGACY_SCRIPT), library]
    with single_errors():
        async with trio.open_nursery() as nursery:
            process: trio.Process = await nursery.start(
                partial(
                    trio.run_process,
                    command,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    check=False,
                    cwd=str(JS_DIR),
                )
            )
            clients = NodeClients(process)
            nursery.start_soon(clients._read_loop)
            nursery.start_soon(clients._write_loop)
            with trio.fail_after(STARTUP_TIMEOUT):
                await clients._ready.wait()
            try:
                yield clients
            finally:
                with trio.CancelScope(shield=True):
                    await clients._close()
                # run_process terminates (then kills) the process if it is still there.
                nursery.cancel_scope.cancel()
            if clients.errors:
                raise AssertionError(f"the Node client reported errors: {clients.errors}")
