"""HTTP/1.1 connections (trio + h11): long-polling, CORS, errors, routing,
and the hand-over of WebSocket upgrade requests.

One task per TCP connection, requests answered one at a time (keep-alive,
``Connection: close`` and HTTP/1.0 as h11 decides). A pending long-poll GET
also watches its socket, so a client that goes away mid-poll ends its session
at once, as the reference server does, instead of lingering until the ping.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import parse_qsl, unquote, urlsplit

import h11
import trio

from .engine_socket import EngineSocket
from .errors import ErrorCode, SessionRefused, error_response, refusal_response
from .forwarded import request_source
from .httpmessages import HttpRequest, HttpResponse
from .packets import PacketError, decode_payload
from .packets_v3 import BINARY_CONTENT_TYPE, decode_payload_v3
from .routing import (
    OpenSession,
    Poll,
    Preflight,
    Refuse,
    Upgrade,
    is_engineio_path,
    route,
    route_session,
)
from .protocol import POLLING, WEBSOCKET, BadPacket, MessageReceived
from .websocket import accept_websocket, close_websocket, run_upgrade_probe
from .wsconnection import ServerWebSocket, WebSocketClosed
from .wshandshake import WebSocketHandshake, check_websocket_handshake

if TYPE_CHECKING:
    from .server import EngineIOServer, Reservation

__all__ = ["serve_http_requests"]

logger = logging.getLogger(__name__)

RECEIVE_SIZE = 65536
# The time bounds of a request are EngineIOConfig's (first_request_timeout,
# request_timeout, keepalive_timeout): docs/limits.md lists them.
#: The close reason of a session the client closed with a close packet.
CLIENT_CLOSE = "client close"

Headers = list[tuple[str, str]]


class _Abort(Exception):
    """The connection cannot go on (peer gone or protocol broken)."""


class _Timeout(_Abort):
    """The request did not arrive within its deadline, or the connection was
    evicted while still sending its first one (see ``EngineIOServer``)."""


#: Seconds the 408 answer may take to write (a client that does not read gets none).
TIMEOUT_ANSWER_GRACE = 1.0
_TIMEOUT_BODY = b"the request took too long to arrive; send it again, whole"
#: Written as is (not through h11, which may be mid-head): 408, like Node's requestTimeout.
_REQUEST_TIMEOUT_ANSWER = (
    b"HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain\r\nConnection: close\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY)
)


class HttpConnection:
    """One TCP connection: reads requests with h11 and answers them."""

    def __init__(self, server: EngineIOServer, stream: trio.abc.Stream, remote_address: str | None) -> None:
        self.server = server
        self.config = server.config
        self.stream = stream
        #: The peer's address (a proxy's, behind one); each request's client comes from request_source().
        self.remote_address = remote_address
        #: The scheme the peer uses: https once something wrapped the socket in TLS.
        self.scheme = "https" if isinstance(stream, trio.SSLStream) else "http"
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.config.max_request_head)
        #: Set by a WebSocket request: what the connection becomes once ``run`` returns.
        self.upgrade: _Upgrade | None = None
        #: When the request being read must have arrived (trio time).
        self._deadline = math.inf
        #: When its first byte arrived (None: none yet).
        self._request_started: float | None = None
        #: True until the first request head is complete ("half-open").
        self.half_open = True
        #: The scope of the read under way; :meth:`evict` cancels it.
        self._read_scope: trio.CancelScope | None = None
        self._evicted = False

    def evict(self) -> None:
        """Close this connection, still sending its first request, to make room
        (the server's half-open budget of its address is full)."""
        self._evicted = True
        if self._read_scope is not None:
            self._read_scope.cancel()

    # -- h11 plumbing --------------------------------------------------------

    async def _next_event(self) -> type[h11.PAUSED | h11.NEED_DATA] | h11.Event:
        while True:
            try:
                event = self.conn.next_event()
            except h11.RemoteProtocolError as exc:
                logger.debug("%s: bad HTTP: %s", self.remote_address, exc)
                await self._send_simple(exc.error_status_hint, b"", close=True)
                raise _Abort from exc
            if event is not h11.NEED_DATA:
                if isinstance(event, h11.Request):
                    self._head_done()
                return event
            self.conn.receive_data(bytes(await self._receive()))  # bytes() of bytes is itself: no copy

    async def _receive(self) -> bytes | bytearray:
        """Bytes of the request being read, before its deadline (else :class:`_Timeout`)."""
        if self._evicted:
            raise _Timeout
        with trio.move_on_at(self._deadline) as scope:
            self._read_scope = scope
            try:
                data = await self.stream.receive_some(RECEIVE_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise _Abort from exc
            finally:
                self._read_scope = None
        if scope.cancelled_caught:
            raise _Timeout
        if data and self._request_started is None:
            # The request's clock starts at its first byte: the whole of it
            # (head and body) must be in within request_timeout.
            now = trio.current_time()
            self._request_started = now
            until = now + self.config.request_timeout
            self._deadline = min(self._deadline, until) if self.half_open else until
        return data

    def _wait_for_request(self) -> None:
        """A new request may come now: the first within first_request_timeout
        of the connection's start, a later one within keepalive_timeout."""
        timeout = self.config.first_request_timeout if self.half_open else self.config.keepalive_timeout
        self._deadline = trio.current_time() + timeout
        self._request_started = None

    def _head_done(self) -> None:
        """A request head is complete: its body has what is left of request_timeout."""
        if self._request_started is None:  # its bytes came with the previous request's
            self._request_started = trio.current_time()
        self._deadline = self._request_started + self.config.request_timeout
        if self.half_open:
            self.half_open = False
            self.server.half_open_done(self)

    async def _send(self, event: h11.Event) -> None:
        try:
            data = self.conn.send(event)
        except h11.LocalProtocolError as exc:
            raise _Abort from exc
        if data:
            try:
                await self.stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise _Abort from exc

    async def _respond(
        self, status: int, headers: Headers, body: bytes, *, close: bool = False, head: bool = False
    ) -> None:
        """Send a whole response; with ``head``, its headers and length but not its body."""
        headers = [*headers, ("Content-Length", str(len(body)))]
        if close:
            headers.append(("Connection", "close"))
        await self._send(h11.Response(status_code=status, headers=headers))
        if body and not head:
            await self._send(h11.Data(data=body))
        await self._send(h11.EndOfMessage())

    async def _send_simple(self, status: int, body: bytes, *, close: bool = False) -> None:
        if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            try:
                await self._respond(status, [("Content-Type", "text/plain")], body, close=close)
            except _Abort:
                pass

    async def _refuse(self, refusal: SessionRefused, cors: Headers) -> None:
        """A limit says no: 503 and close, so the client's backoff decides when
        to come back and a flood of handshakes cannot hold connections open."""
        status, headers, body = refusal_response(refusal)
        await self._respond(status, [*headers, *cors], body, close=True)

    async def _error(
        self, code: ErrorCode, extra_headers: Headers | None = None, *, close: bool = False, message: str | None = None
    ) -> None:
        status, headers, body = error_response(code, message)
        await self._respond(status, [*headers, *(extra_headers or [])], body, close=close)

    # -- main loop -----------------------------------------------------------

    async def run(self) -> _Upgrade | None:
        """Answer requests until the connection ends or a WebSocket takes it
        over (returned, to be served without this object and its h11 state)."""
        self.server.half_open_started(self)
        try:
            while True:
                self._wait_for_request()
                event = await self._next_event()
                if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                    return None
                assert isinstance(event, h11.Request), event
                if await self._handle(event):
                    return self.upgrade  # None: closed after a refusal
                if self.conn.our_state is h11.MUST_CLOSE or self.conn.their_state is h11.MUST_CLOSE:
                    return None
                if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
                    self.conn.start_next_cycle()
                else:
                    return None
        except _Timeout:
            if self._request_started is not None:  # part of a request came: say why it ends
                logger.info("%s: request not complete within its time; closing", self.remote_address)
                with trio.move_on_after(TIMEOUT_ANSWER_GRACE):
                    try:
                        await self.stream.send_all(_REQUEST_TIMEOUT_ANSWER)
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        pass
            return None
        except _Abort:
            return None
        finally:
            if self.half_open:
                self.half_open = False
                self.server.half_open_done(self)

    async def _read_body(self, limit: int) -> bytes | None:
        """The request body, or None when it exceeds ``limit`` bytes."""
        chunks: list[bytes] = []
        size = 0
        while True:
            event = await self._next_event()  # within the request's deadline
            if isinstance(event, h11.EndOfMessage) or event is h11.PAUSED:
                return b"".join(chunks)
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > limit:
                    return None
                chunks.append(event.data)
            elif isinstance(event, h11.ConnectionClosed):
                raise _Abort

    async def _handle(self, request: h11.Request) -> bool:
        """Answer one request; True when the connection became a WebSocket."""
        target = request.target.decode("latin-1")
        split = urlsplit(target)
        path = unquote(split.path)
        query = dict(reversed(parse_qsl(split.query, keep_blank_values=True)))  # first value wins
        headers = _header_map(request.headers)
        method = request.method.decode("ascii").upper()
        source = request_source(self.remote_address, self.scheme, headers, self.server.trusted_proxies)
        if not self.server.host_allowed(source.host):
            # before anything else: a page on a rebound name gets nothing here
            logger.info("%s: Host %r refused (not an allowed host)", source.client, source.host)
            await self._respond(
                400,
                [("Content-Type", "text/plain; charset=UTF-8")],
                f"this server does not answer to the host {source.host!r}; connect to it by an allowed "
                "name (its operator can add one with --allowed-host)\n".encode("utf-8", "replace"),
                close=True,
            )
            return True
        client = source.client
        if not is_engineio_path(path, self.config.path):
            await self._fallback(request, method, target, path, query, headers, client)
            return False
        is_upgrade = headers.get("upgrade", "").lower() == "websocket"
        handshake = check_websocket_handshake(method, request.http_version.decode("ascii"), headers) if is_upgrade else None
        if handshake is not None and not handshake.accepted:
            # refuse here rather than leave the client waiting for a handshake that cannot succeed
            logger.debug("%s: websocket handshake refused: %s", self.remote_address, handshake.reason)
            await self._read_body(self.config.max_payload)
            if handshake.status == 400:
                await self._error(ErrorCode.BAD_REQUEST, close=True)
            else:
                await self._respond(handshake.status, [*_TEXT, *handshake.headers], handshake.reason.encode(), close=True)
            return False
        body = await self._read_body(self.config.max_payload)

        origin = headers.get("origin")
        scheme = source.scheme if source.scheme_known else None
        if origin is not None and not self.server.origin_allowed(origin, source.host, scheme):
            logger.info(
                "%s: origin %r refused (this server is %s://%s to it; behind a proxy, name it with "
                "--forwarded-allow-ips; another site's pages need --cors-origin)",
                client, origin, source.scheme, source.host,
            )
            await self._error(ErrorCode.FORBIDDEN, close=is_upgrade)
            return False
        cors = _cors_headers(origin)

        decision = route(method, query, is_upgrade=is_upgrade, protocols=_PROTOCOLS[self.config.eio3])
        if isinstance(decision, Preflight):
            await self._respond(204, [*cors, *_preflight_headers(headers)], b"")
            return False
        if isinstance(decision, Refuse):
            await self._error(decision.code, cors, close=decision.close, message=decision.message)
            return False
        if isinstance(decision, OpenSession):
            admitted = self.server.admit(client)
            if isinstance(admitted, SessionRefused):
                await self._refuse(admitted, cors)
                return True
            if decision.transport == WEBSOCKET:
                # the place stays reserved through the handshake (serve_http_requests gives it back)
                return self._take_over(handshake, query, headers, None, admitted)
            sock = self.server.open_session(POLLING, client, query, headers, admitted)
            opened = sock.session.handshake_payload()  # v3: framed, maybe binary
            if isinstance(opened, bytes):
                await self._respond(200, [*cors, *_BINARY], opened)
            else:
                await self._respond(200, [*cors, *_TEXT], opened.encode())
            return False

        found = self.server.lookup(decision.sid)
        step = route_session(
            method,
            decision.transport,
            found.transport if found is not None else None,
            protocol=query.get("EIO"),
            session_protocol=str(found.protocol) if found is not None else None,
        )
        if isinstance(step, Refuse):
            await self._error(step.code, cors, close=step.close, message=step.message)
            return False
        assert found is not None
        if isinstance(step, Upgrade):
            return self._take_over(handshake, query, headers, found)
        if isinstance(step, Poll):
            await self._poll(found, cors)
        elif body is None:  # a POST over maxPayload
            logger.info("session %s: POST over maxPayload", found.sid)
            found.fail("payload too large")
            await self._respond(413, [*cors, ("Content-Type", "text/plain")], b"", close=True)
        else:
            await self._post(found, body, cors)
        return False

    # -- long-polling ----------------------------------------------------------

    async def _poll(self, sock: EngineSocket, cors: Headers) -> None:
        if sock.get_pending:
            logger.info("session %s: overlapping GET; closing", sock.sid)
            sock.fail("transport error")
            await self._error(ErrorCode.BAD_REQUEST, cors)
            return
        session = sock.session
        sock.get_pending = True
        try:
            payload = session.take_polling_payload(final=session.closed)
            if payload is None:
                peer_lost = trio.Event()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._watch_peer, peer_lost, nursery.cancel_scope)
                    while payload is None:
                        changed = sock.wait_changed
                        payload = session.take_polling_payload(final=session.closed)
                        if payload is None:
                            await changed()
                    nursery.cancel_scope.cancel()
                if peer_lost.is_set() and payload is None:
                    logger.debug("session %s: client left a pending GET", sock.sid)
                    sock.fail("transport close")
                    raise _Abort
        finally:
            sock.get_pending = False
        if session.close_reason == CLIENT_CLOSE:
            # The client closed the session itself (a POSTed close packet):
            # its pending GET is released with a noop, as the reference servers do.
            payload = session.noop_payload()
        sock.notify()  # the outbox drained: a closing session may finish
        body, content = (payload, _BINARY) if isinstance(payload, bytes) else (payload.encode(), _TEXT)
        try:
            await self._respond(200, [*cors, *content], body)
        except _Abort:
            # The packets just taken from the outbox are lost with this
            # response: end the session now, so the client learns it on its
            # next request instead of missing them silently until the heartbeat.
            logger.debug("session %s: client left before its poll was answered", sock.sid)
            sock.fail("transport close")
            raise

    async def _watch_peer(self, lost: trio.Event, cancel_scope: trio.CancelScope) -> None:
        """While a GET is pending, notice a client that went away (or buffer
        what it pipelined)."""
        try:
            data = await self.stream.receive_some(RECEIVE_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        if data:
            self.conn.receive_data(bytes(data))
            return
        lost.set()
        cancel_scope.cancel()

    async def _post(self, sock: EngineSocket, body: bytes, cors: Headers) -> None:
        if sock.post_pending:
            logger.info("session %s: overlapping POST; closing", sock.sid)
            sock.fail("transport error")
            await self._error(ErrorCode.BAD_REQUEST, cors)
            return
        try:
            packets = decode_payload(body) if sock.protocol == 4 else decode_payload_v3(body)
        except PacketError as exc:
            logger.info("session %s: bad POST body: %s", sock.sid, exc)
            sock.fail("parse error")
            await self._error(ErrorCode.BAD_REQUEST, cors)
            return
        sock.post_pending = True
        try:
            for packet in packets:
                event = sock.handle_packet(packet)
                if type(event) is MessageReceived:
                    await sock.deliver(event.data)
                elif type(event) is BadPacket:
                    logger.info("session %s: bad packet over polling: %s", sock.sid, event.detail)
                    await self._error(ErrorCode.BAD_REQUEST, cors)
                    return
        finally:
            sock.post_pending = False
        await self._respond(200, [*cors, ("Content-Type", "text/html")], b"ok")

    # -- WebSocket -----------------------------------------------------------

    def _take_over(
        self,
        handshake: WebSocketHandshake | None,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        sock: EngineSocket | None,
        reservation: Reservation | None = None,
    ) -> bool:
        """Hand the connection to a WebSocket: ``run`` returns what it needs."""
        assert handshake is not None  # transport=websocket came with an accepted upgrade
        self.upgrade = _Upgrade(handshake.response, self.conn.trailing_data[0], query, headers, sock, reservation)
        return True

    # -- other paths -----------------------------------------------------------

    async def _fallback(
        self,
        request: h11.Request,
        method: str,
        target: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        client: str | None,
    ) -> None:
        body = await self._read_body(self.config.max_payload)
        if body is None:
            await self._respond(413, [("Content-Type", "text/plain")], b"", close=True)
            return
        response: HttpResponse | None = None
        route = self.server.http_fallback
        if route is not None:
            # A HEAD is answered as its GET would be, without the body (RFC 9110 9.3.2),
            # so every route gets HEAD right, Content-Length included.
            routed_method = "GET" if method == "HEAD" else method
            try:
                response = await route(
                    HttpRequest(routed_method, target, path, query, headers, body, client)
                )
            except Exception:
                logger.exception("http_fallback failed for %s %s", method, target)
                await self._respond(500, [("Content-Type", "text/plain")], b"Internal Server Error")
                return
        if response is None:
            await self._respond(404, [("Content-Type", "text/plain")], b"Not Found")
            return
        payload = response.body.encode("utf-8") if isinstance(response.body, str) else response.body
        out_headers = [(k, v) for k, v in response.headers if k.lower() not in ("content-length", "transfer-encoding")]
        await self._respond(response.status, out_headers, payload, head=method == "HEAD")


_TEXT: Headers = [("Content-Type", "text/plain; charset=UTF-8")]
#: v3 binary polling payloads (socket.io-client 1.x/2.x with XHR2 match it exactly).
_BINARY: Headers = [("Content-Type", BINARY_CONTENT_TYPE)]
#: The ``EIO`` versions served, by ``config.eio3``.
_PROTOCOLS = {True: ("3", "4"), False: ("4",)}


def _header_map(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


def _cors_headers(origin: str | None) -> Headers:
    if origin is None:
        return []
    return [("Access-Control-Allow-Origin", origin), ("Access-Control-Allow-Credentials", "true"), ("Vary", "Origin")]


def _preflight_headers(headers: Mapping[str, str]) -> Headers:
    out = [("Access-Control-Allow-Methods", "GET,HEAD,PUT,PATCH,POST,DELETE")]
    requested = headers.get("access-control-request-headers")
    if requested:
        out.append(("Access-Control-Allow-Headers", requested))
    return out


class _Upgrade(NamedTuple):
    """A WebSocket request, as the HTTP layer read it."""

    response: bytes  #: the accepted opening handshake's ``101`` response
    received: bytes  #: what the client sent after its request (its first frames)
    query: Mapping[str, str]
    headers: Mapping[str, str]
    sock: EngineSocket | None  #: the polling session to upgrade; None opens one
    reservation: Reservation | None = None  #: the new session's place in the limits


async def serve_http_requests(
    server: EngineIOServer, stream: trio.abc.Stream, remote_address: str | None
) -> tuple[EngineSocket, ServerWebSocket] | None:
    """Answer HTTP requests until the connection closes (None) or becomes an
    open WebSocket session: its session and WebSocket, for the caller to run
    with :func:`run_websocket_transport` in its own frame.

    Returned, not run here: an idle WebSocket then holds neither the HTTP
    connection object, its h11 state, the request that opened it, nor this
    coroutine's frame, only its session and its connection (issue 4).
    """
    upgrade = await HttpConnection(server, stream, remote_address).run()
    if upgrade is None:
        return None
    try:
        return await _open_websocket(server, stream, remote_address, upgrade)
    finally:
        if upgrade.reservation is not None:
            upgrade.reservation.release()  # the handshake failed: nothing once the session took it


async def _open_websocket(
    server: EngineIOServer, stream: trio.abc.Stream, remote_address: str | None, upgrade: _Upgrade
) -> tuple[EngineSocket, ServerWebSocket] | None:
    """The opening handshake, then the Engine.IO open (new session) or the
    probe (upgrade); the session and its WebSocket, or None when it failed."""
    ws = await accept_websocket(stream, upgrade.response, upgrade.received, server.config.max_payload)
    if ws is None:
        return None
    sock = upgrade.sock
    try:
        if sock is None:
            sock = server.open_session(WEBSOCKET, remote_address, upgrade.query, upgrade.headers, upgrade.reservation)
            try:
                await ws.send_message(sock.session.handshake_packet())
            except Exception:
                sock.fail("transport close")
                raise
        elif not sock.session.can_probe:
            logger.info("session %s: second websocket refused", sock.sid)
            await close_websocket(ws)
            return None
        elif not await run_upgrade_probe(sock, ws, server.config.upgrade_timeout):
            await close_websocket(ws)
            return None
    except WebSocketClosed:
        _websocket_closed(sock)
        return None
    return sock, ws


def _websocket_closed(sock: EngineSocket | None) -> None:
    if sock is not None and sock.transport == WEBSOCKET:
        sock.fail("transport close")
