"""EngineIOServer: the session registry, the session lifetimes, and serving.

Every session runs in one task (started in ``handler_nursery``, or the
server's own nursery) that runs the heartbeat and owns the application's handler;
the transports run in the TCP connections' tasks and only touch the session
through its :class:`EngineSocket`. When the session ends, its runner waits for
the close packet to be flushed (server-initiated close), forgets the session,
and gives the handler :data:`HANDLER_GRACE` seconds to return after its
``receive()`` raised :class:`EngineClosed` before cancelling it.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NoReturn
from urllib.parse import urlsplit

import trio

from .config import EngineIOConfig
from .engine_socket import EngineSocket
from .errors import SessionRefused
from .forwarded import TrustedProxies
from .hosts import HostPolicy
from .http import HttpConnection, serve_http_requests
from .httpmessages import HttpRoute, PackedMapping
from .protocol import POLLING, WEBSOCKET, EngineSession
from .websocket import run_websocket_transport
from .wsconnection import WebSocketClosed

__all__ = ["HANDLER_GRACE", "EngineHandler", "EngineIOServer", "EngineIOStatistics", "Reservation", "serve_engineio"]

logger = logging.getLogger(__name__)

EngineHandler = Callable[[EngineSocket], Awaitable[None]]

#: Seconds a handler may keep running after its session ended.
HANDLER_GRACE = 5.0

#: Errors of accept(2) that say the system is short of something for now
#: (descriptors, memory): logged and retried after ACCEPT_RETRY seconds, as
#: trio.serve_listeners does.
_ACCEPT_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
ACCEPT_RETRY = 0.1

#: Shared task names: a name made per task (trio's default, from the
#: function) is a string held per connection for its whole life.
CONNECTION_TASK_NAME = "roomactors.engineio connection"
SESSION_TASK_NAME = "engineio session"
HANDLER_TASK_NAME = "roomactors.engineio handler"

#: TCP connections allowed per allowed session (``max_sessions`` and
#: ``max_sessions_per_address``): a polling client holds two (its GET and its
#: POST) and a third while it upgrades to WebSocket.
TCP_CONNECTIONS_PER_SESSION = 3


@dataclass(frozen=True)
class EngineIOStatistics:
    """A snapshot for monitoring and leak tests."""

    sessions: int            #: sessions registered (open, or flushing their close packet)
    polling_sessions: int
    websocket_sessions: int
    http_connections: int    #: TCP connections open (WebSocket ones included)
    sessions_opened: int     #: since the server was created
    outbox_overflows: int    #: sessions closed because their client could not keep up
    sessions_refused: int = 0   #: handshakes refused by a limit or the shutdown (HTTP 503)
    outbox_messages: int = 0    #: messages queued in all outboxes, not yet taken by a transport
    outbox_bytes: int = 0       #: their size in bytes (what ``outbox_max_bytes`` counts)
    connections_refused: int = 0  #: TCP connections closed at once, over the limits' TCP share
    half_open_evicted: int = 0  #: connections closed before their first request to make room (NAT)


class EngineIOServer:
    """An Engine.IO v4 (and v3, unless ``config.eio3`` is False) server;
    ``handler`` runs once per session, whatever its protocol (``sock.protocol``)."""

    def __init__(
        self,
        handler: EngineHandler,
        config: EngineIOConfig = EngineIOConfig(),
        *,
        http_fallback: HttpRoute | None = None,
        on_open: Callable[[EngineSocket], None] | None = None,
    ) -> None:
        self.handler = handler
        #: Called as each session opens, before its transport can deliver a
        #: message: where an application layer calls ``set_receiver``.
        self.on_open = on_open
        self.config = config
        self.http_fallback = http_fallback
        self._sessions: dict[str, EngineSocket] = {}
        self._session_nursery: trio.Nursery | None = None
        self._connections = 0
        self._sessions_opened = 0
        self._overflows = 0
        self._refused = 0
        #: Sessions per remote address, places reserved by handshakes under way included.
        self._per_address: Counter[str] = Counter()
        #: Places reserved by handshakes that have passed :meth:`admit` and not yet opened or failed.
        self._reserved = 0
        self._tcp_per_address: Counter[str] = Counter()
        self._tcp_refused = 0
        self._accept_scope = trio.CancelScope()
        self._shutting_down = False
        self._session_gone = trio.Event()
        #: One bound method for every session, not one made per session.
        self._on_close_callback = self._on_close
        #: The proxies whose forwarded headers are believed (issue 15).
        self.trusted_proxies = TrustedProxies(config.forwarded_allow_ips)
        self._hosts = HostPolicy(config.allowed_hosts)
        #: Connections still sending their first request, per peer address, oldest
        #: first, with the time each connected.
        self._half_open: dict[str, dict[HttpConnection, float]] = {}
        self._half_open_evicted = 0

    # -- serving ---------------------------------------------------------------

    async def serve(
        self,
        host: str,
        port: int,
        *,
        handler_nursery: trio.Nursery | None = None,
        task_status: trio.TaskStatus[list[tuple[str, int]]] = trio.TASK_STATUS_IGNORED,
    ) -> NoReturn:
        """Listen on ``host``:``port`` (0: any free port) and serve forever;
        ``task_status.started`` gets the bound ``(host, port)`` pairs."""
        self._hosts = HostPolicy(self.config.allowed_hosts, bound_host=host)  # a name to listen on is one to answer
        listeners = await trio.open_tcp_listeners(port, host=host)
        await self.serve_listeners(listeners, handler_nursery=handler_nursery, task_status=task_status)

    async def serve_listeners(
        self,
        listeners: Sequence[trio.abc.Listener[trio.abc.Stream]],
        *,
        handler_nursery: trio.Nursery | None = None,
        task_status: trio.TaskStatus[list[tuple[str, int]]] = trio.TASK_STATUS_IGNORED,
    ) -> NoReturn:
        async with trio.open_nursery() as nursery:
            self._session_nursery = handler_nursery or nursery
            addresses = [_listener_address(listener) for listener in listeners]
            # Connections live in ``nursery``, not in serve_listeners' own one, so
            # that shutdown() can stop accepting and still let them say goodbye.
            await nursery.start(self._accept, list(listeners), nursery)
            task_status.started(addresses)
            await trio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    async def _accept(
        self,
        listeners: list[trio.abc.Listener[trio.abc.Stream]],
        connection_nursery: trio.Nursery,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        # Not trio.serve_listeners: its connection tasks run a wrapper frame
        # (_run_handler) and each gets a name string of its own; ours run
        # _serve_stream directly under one shared name (issue 4).
        with self._accept_scope:
            async with trio.open_nursery() as nursery:
                for listener in listeners:
                    nursery.start_soon(self._accept_from, listener, connection_nursery)
                task_status.started()

    async def _accept_from(self, listener: trio.abc.Listener[trio.abc.Stream], connection_nursery: trio.Nursery) -> None:
        async with listener:
            while True:
                try:
                    stream = await listener.accept()
                except OSError as exc:
                    if exc.errno not in _ACCEPT_CAPACITY_ERRNOS:
                        raise
                    logger.error(
                        "accept failed: %s (%s); retrying in %s s",
                        errno.errorcode.get(exc.errno or 0, exc.errno), os.strerror(exc.errno or 0), ACCEPT_RETRY,
                    )
                else:
                    connection_nursery.start_soon(self._serve_stream, stream, name=CONNECTION_TASK_NAME)
                    continue
                await trio.sleep(ACCEPT_RETRY)  # out of the except: a waiting except holds its exception

    @property
    def shutting_down(self) -> bool:
        """True once :meth:`shutdown` was called: no new session is opened."""
        return self._shutting_down

    async def shutdown(self) -> None:
        """Stop gracefully: stop accepting connections, refuse new sessions
        (503), close every session with a close packet, and return once every
        session is gone (its close packet flushed, or its flush timed out).

        Bound it with a cancel scope (the room server uses its
        ``shutdown_timeout``), then cancel ``serve`` to cut whatever remains:
        idle keep-alive connections, clients that stopped reading.
        """
        self._shutting_down = True
        self._accept_scope.cancel()
        for sock in list(self._sessions.values()):
            sock.close()
        while self._sessions:
            await self._session_gone.wait()

    async def _serve_stream(self, stream: trio.abc.Stream) -> None:
        remote = _remote_address(stream)
        if self.trusted_proxies.trusts(remote):
            per_address_key = None  # a proxy carries everyone: its clients are counted per request
        else:
            per_address_key = remote
        if not self._tcp_allowed(per_address_key) and not self._evict_half_open(per_address_key):
            self._tcp_refused += 1
            logger.info("TCP connection from %s closed at once: too many connections", remote)
            await trio.aclose_forcefully(stream)
            return
        self._connections += 1
        if per_address_key is not None:
            self._tcp_per_address[per_address_key] += 1
        try:
            opened = await serve_http_requests(self, stream, remote)
            if opened is not None:
                sock, ws = opened
                del opened
                # Run here, in the connection task's first frame: every frame
                # on an idle connection's stack is held for its whole life.
                await run_websocket_transport(sock, ws)
        except WebSocketClosed:
            pass  # run_websocket_transport ended the session on its way out
        except Exception:
            logger.exception("connection from %s failed", remote)
        finally:
            self._connections -= 1
            if per_address_key is not None:
                self._tcp_per_address[per_address_key] -= 1
                if self._tcp_per_address[per_address_key] <= 0:
                    del self._tcp_per_address[per_address_key]
            await trio.aclose_forcefully(stream)

    def _tcp_allowed(self, remote: str | None) -> bool:
        """Whether one more TCP connection fits the session limits' TCP share.

        Over it the connection is closed before a byte is read: a flood of
        connections that never send a request costs an accept and a close.
        """
        limit = self.config.max_sessions
        if limit is not None and self._connections >= limit * TCP_CONNECTIONS_PER_SESSION:
            return False
        per_address = self.config.max_sessions_per_address
        return (
            per_address is None
            or remote is None
            or self._tcp_per_address[remote] < per_address * TCP_CONNECTIONS_PER_SESSION
        )

    # -- half-open connections (issue 10, finding 6) -------------------------
    #
    # A connection that has not sent its first request head yet costs little,
    # but a TCP share that idle sockets can fill locks out everyone who shares
    # their address (a school's NAT). So at the address's share, the oldest
    # half-open connection makes room for the newcomer, whatever its age: a
    # real client sends its request at once and leaves the set within a round
    # trip; a socket that sits there is soon the oldest, and goes first. And
    # the half-open ones of an address have a small budget of their own
    # (max_half_open_per_address): beyond it, those older than half_open_grace
    # go, oldest first; younger ones are spared, since a class connecting at
    # once after a restart is a burst of them. Every one goes after
    # first_request_timeout anyway.

    def half_open_started(self, connection: HttpConnection) -> None:
        """``connection`` waits for its first request head."""
        address = connection.remote_address
        if address is None or self.trusted_proxies.trusts(address):
            return
        now = trio.current_time()
        waiting = self._half_open.setdefault(address, {})
        waiting[connection] = now
        budget = self.config.max_half_open_per_address
        spared_since = now - self.config.half_open_grace
        while len(waiting) > budget and next(iter(waiting.values())) <= spared_since:
            self._evict_oldest(waiting)

    def half_open_done(self, connection: HttpConnection) -> None:
        """``connection`` sent its first request head, or ended."""
        address = connection.remote_address
        waiting = self._half_open.get(address) if address is not None else None
        if waiting is not None and waiting.pop(connection, None) is not None and not waiting:
            del self._half_open[address]  # type: ignore[arg-type]

    def _evict_half_open(self, address: str | None) -> bool:
        """Make room for one more connection from ``address`` at its TCP share
        by closing its oldest half-open one; False when it has none."""
        waiting = self._half_open.get(address) if address is not None else None
        if not waiting:
            return False
        self._evict_oldest(waiting)
        return True

    def _evict_oldest(self, waiting: dict[HttpConnection, float]) -> None:
        oldest = next(iter(waiting))
        del waiting[oldest]
        self._half_open_evicted += 1
        logger.debug("half-open connection from %s closed to make room", oldest.remote_address)
        oldest.evict()

    # -- used by the transports ----------------------------------------------

    def lookup(self, sid: str) -> EngineSocket | None:
        return self._sessions.get(sid)

    def admit(self, remote_address: str | None) -> SessionRefused | Reservation:
        """A place for a new session, or the refusal a client is told.

        Checked before anything is set up for the session (for a WebSocket,
        before the handshake is accepted), so a refused client costs one answer.
        The place counts against the limits from now on, while the handshake
        is still under way: handshakes racing each other cannot all pass the
        check before any of them is counted (issue 10, finding 4). Hand it to
        :meth:`open_session`, or :meth:`Reservation.release` it when the
        handshake fails.
        """
        refusal: SessionRefused | None = None
        limit = self.config.max_sessions
        per_address = self.config.max_sessions_per_address
        if self._shutting_down:
            refusal = SessionRefused("shutting_down", "the server is shutting down; connect again in a moment")
        elif limit is not None and len(self._sessions) + self._reserved >= limit:
            refusal = SessionRefused(
                "too_many_connections",
                f"the server holds its limit of {limit} connections; try again later",
            )
        elif (
            per_address is not None
            and remote_address is not None
            and self._per_address[remote_address] >= per_address
        ):
            refusal = SessionRefused(
                "too_many_sessions_per_address",
                f"{per_address} connections from your address are open already; close one (another tab?) "
                "and try again",
            )
        if refusal is not None:
            self._refused += 1
            logger.info(
                "session from %s refused: %s", remote_address, refusal.code,
                extra={"remote_address": remote_address},
            )
            return refusal
        self._reserved += 1
        if remote_address is not None:
            self._per_address[remote_address] += 1
        return Reservation(self, remote_address)

    def _release(self, reservation: Reservation) -> None:
        self._reserved -= 1
        self._forget_address(reservation.remote_address)

    def open_session(
        self,
        transport: str,
        remote_address: str | None,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        reservation: Reservation | None = None,
    ) -> EngineSocket:
        """Register a new session and start its runner (handler + heartbeat).

        ``reservation`` (from :meth:`admit`) becomes the session's place;
        without one the session is counted now, unchecked.
        """
        assert self._session_nursery is not None, "server is not serving"
        if reservation is not None:
            remote_address = reservation.remote_address  # the client's, also behind a proxy
        if reservation is None or not reservation.take():
            if remote_address is not None:
                self._per_address[remote_address] += 1
        else:
            self._reserved -= 1
        sid = secrets.token_urlsafe(15)
        while sid in self._sessions:  # pragma: no cover - 120 random bits
            sid = secrets.token_urlsafe(15)
        # EIO=3 was checked by the HTTP layer (allowed by ``config.eio3``);
        # ``b64=1``: a v3 client that cannot read binary polling payloads.
        session = EngineSession(
            sid, self.config, trio.current_time(), transport,
            protocol=3 if query.get("EIO") == "3" else 4, binary_payloads="b64" not in query,
        )
        sock = EngineSocket(
            session,
            remote_address=remote_address,
            # one string each, not a dict and two strings an entry: held for the session's life
            query=PackedMapping(query),
            headers=PackedMapping(headers),
            on_close=self._on_close_callback,
        )
        self._sessions[sid] = sock
        if self.on_open is not None:
            self.on_open(sock)
        self._sessions_opened += 1
        # One shared name, not one with the sid: a string per session held for its life.
        self._session_nursery.start_soon(self._run_session, sock, name=SESSION_TASK_NAME)
        logger.debug(
            "session %s opened (%s) from %s", sid, transport, remote_address,
            extra={"connection_id": sid, "remote_address": remote_address},
        )
        return sock

    def describe_hosts(self) -> str:
        """The ``Host`` names this server answers, in words (see :mod:`.hosts`)."""
        return self._hosts.describe()

    def host_allowed(self, host: str | None) -> bool:
        """Whether this server answers a request for ``host`` (its ``Host``, or
        a trusted proxy's ``X-Forwarded-Host``): see :mod:`.hosts`."""
        return self._hosts.allows(host)

    def origin_allowed(self, origin: str, host: str | None, scheme: str | None = None) -> bool:
        """Whether a request with this ``Origin`` may use Engine.IO (CORS policy).

        The server's own origin (``scheme://host`` as the client reached it)
        is always allowed: the lobby page it serves must keep working when
        an operator allows other sites too (issue 10, finding 7). ``scheme``
        None: not known (plain HTTP, maybe behind a TLS proxy nobody named),
        so only the host and port are compared.
        """
        if host is not None and _same_origin(origin, scheme, host):
            return True
        allowed = self.config.cors_origins
        if allowed is None:
            return False
        if "*" in allowed:
            return True
        return origin.rstrip("/").lower() in {a.rstrip("/").lower() for a in allowed}

    def statistics(self) -> EngineIOStatistics:
        transports = [sock.transport for sock in self._sessions.values()]
        outboxes = [sock.session.outbox for sock in self._sessions.values()]
        return EngineIOStatistics(
            sessions=len(transports),
            polling_sessions=transports.count(POLLING),
            websocket_sessions=transports.count(WEBSOCKET),
            http_connections=self._connections,
            sessions_opened=self._sessions_opened,
            outbox_overflows=self._overflows,
            sessions_refused=self._refused,
            connections_refused=self._tcp_refused,
            half_open_evicted=self._half_open_evicted,
            outbox_messages=sum(outbox.messages for outbox in outboxes),
            outbox_bytes=sum(outbox.bytes for outbox in outboxes),
        )

    # -- session lifetime ----------------------------------------------------

    def _on_close(self, sock: EngineSocket) -> None:
        if sock.close_reason == "outbox overflow":
            self._overflows += 1
        logger.debug("session %s closing: %s", sock.sid, sock.close_reason, extra={"connection_id": sock.sid})
        if not sock.session.outbox:  # nothing left to flush: gone now, not when the runner next runs
            self._forget(sock)

    async def _run_session(self, sock: EngineSocket) -> None:
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._run_handler, sock, name=HANDLER_TASK_NAME)
                # The runner is the heartbeat: one task fewer per session than a
                # heartbeat task of its own (a task and its frames are KBs each).
                await sock.run_heartbeat()  # returns once the session is closed
                if sock.session.outbox:  # the close packet is still queued: let a transport take it
                    # ... for ping_timeout at most, and never beyond the heartbeat's own
                    # deadline: a client that stopped answering is gone, close packet or not
                    # (a session closed by the connect timeout lingered 20 s more, issue 10)
                    flush_until = trio.current_time() + self.config.ping_timeout
                    with trio.move_on_at(min(flush_until, sock.session.heartbeat_deadline)):
                        while sock.session.outbox:
                            await sock.wait_changed()
                self._forget(sock)
                # Only the handler is left: the nursery's own scope gives it its
                # grace (a scope of its own would be held all the session long).
                scope = nursery.cancel_scope
                scope.deadline = min(scope.deadline, trio.current_time() + HANDLER_GRACE)
            if nursery.cancel_scope.cancelled_caught:
                logger.warning(
                    "handler of session %s cancelled %.1f s after its session ended", sock.sid, HANDLER_GRACE
                )
        finally:
            self._forget(sock)

    async def _run_handler(self, sock: EngineSocket) -> None:
        try:
            await self.handler(sock)
        except Exception:
            logger.exception("handler of session %s failed", sock.sid, extra={"connection_id": sock.sid})
        sock.close()

    def _forget(self, sock: EngineSocket) -> None:
        if self._sessions.get(sock.sid) is sock:
            del self._sessions[sock.sid]
            self._forget_address(sock.remote_address)
            logger.debug("session %s gone: %s", sock.sid, sock.close_reason, extra={"connection_id": sock.sid})
            self._session_gone.set()
            self._session_gone = trio.Event()


    def _forget_address(self, address: str | None) -> None:
        if address is not None:
            self._per_address[address] -= 1
            if self._per_address[address] <= 0:
                del self._per_address[address]


class Reservation:
    """A session's place in the limits, held from :meth:`EngineIOServer.admit`
    until the session opens (:meth:`EngineIOServer.open_session` takes it) or
    its handshake fails (:meth:`release`, safe to call in any case)."""

    __slots__ = ("_held", "_server", "remote_address")

    def __init__(self, server: EngineIOServer, remote_address: str | None) -> None:
        self._server = server
        self.remote_address = remote_address
        self._held = True

    def take(self) -> bool:
        """Hand the place over to the session opening now; False if it was given back already."""
        held, self._held = self._held, False
        return held

    def release(self) -> None:
        """Give the place back (the handshake failed); nothing once taken or released."""
        if self.take():
            self._server._release(self)


async def serve_engineio(
    handler: EngineHandler,
    host: str,
    port: int,
    *,
    config: EngineIOConfig = EngineIOConfig(),
    handler_nursery: trio.Nursery | None = None,
    task_status: trio.TaskStatus[list[tuple[str, int]]] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Convenience: ``EngineIOServer(handler, config).serve(host, port, ...)``."""
    await EngineIOServer(handler, config).serve(host, port, handler_nursery=handler_nursery, task_status=task_status)


def _listener_address(listener: trio.abc.Listener[trio.abc.Stream]) -> tuple[str, int]:
    while isinstance(listener, trio.SSLListener):  # TLS of the server's own: the TCP listener inside
        listener = listener.transport_listener
    sockname = listener.socket.getsockname()  # type: ignore[attr-defined]
    return sockname[0], sockname[1]


def _remote_address(stream: trio.abc.Stream) -> str | None:
    while isinstance(stream, trio.SSLStream):
        stream = stream.transport_stream
    try:
        peer = stream.socket.getpeername()  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        return None
    # Interned: the connections from one address (a proxy, a NAT) share one
    # string instead of holding one each for their whole lives.
    return sys.intern(str(peer[0]) if isinstance(peer, tuple) else str(peer))


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _same_origin(origin: str, scheme: str | None, host: str) -> bool:
    """Whether ``origin`` is ``scheme://host``: the same scheme, name and port
    (a missing port is the scheme's default), as a browser compares them. With
    ``scheme`` None (not known) the origin's own scheme stands in for ours."""
    try:
        theirs = urlsplit(origin.strip())
        their_scheme = theirs.scheme.lower()
        ours = urlsplit(f"{scheme or their_scheme}://{host.strip()}")
        their_port = theirs.port or _DEFAULT_PORTS.get(their_scheme)
        our_port = ours.port or _DEFAULT_PORTS.get(scheme or their_scheme)
    except ValueError:  # a port that is not a number
        return False
    return (
        their_scheme == (scheme or their_scheme)
        and theirs.hostname is not None
        and theirs.hostname == ours.hostname
        and their_port == our_port
    )
