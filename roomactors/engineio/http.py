"""HTTP/1.1 connections (trio + h11): long-polling, CORS, errors, routing,
and the hand-over of WebSocket upgrade requests.

One task per TCP connection, requests answered one at a time (keep-alive,
``Connection: close`` and HTTP/1.0 as h11 decides). A pending long-poll GET
also watches its socket, so a client that goes away mid-poll ends its session
at once, as the reference server does, instead of lingering until the ping.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import parse_qsl, unquote, urlsplit

import h11
import trio

from .engine_socket import EngineSocket
from .errors import ErrorCode, SessionRefused, error_response, refusal_response
from .httpmessages import HttpRequest, HttpResponse
from .packets import PacketError, decode_payload
from .session import POLLING, WEBSOCKET
from .wsconnection import ServerWebSocket, WebSocketClosed
from .websocket import accept_websocket, close_websocket, run_upgrade_probe
from .wshandshake import WebSocketHandshake, check_websocket_handshake

if TYPE_CHECKING:
    from .server import EngineIOServer

__all__ = ["serve_http_requests"]

logger = logging.getLogger(__name__)

RECEIVE_SIZE = 65536
#: Seconds an idle keep-alive connection (or a slow request head) may stay open.
IDLE_TIMEOUT = 120.0
#: Seconds a new connection has to send its first request head: a connection
#: that never speaks must not hold a task (and a file descriptor) for long.
FIRST_REQUEST_TIMEOUT = 10.0
#: Seconds a client may take to send a request body.
BODY_TIMEOUT = 60.0
MAX_HEAD_SIZE = 16384

Headers = list[tuple[str, str]]


class _Abort(Exception):
    """The connection cannot go on (peer gone or protocol broken)."""


class HttpConnection:
    """One TCP connection: reads requests with h11 and answers them."""

    def __init__(self, server: EngineIOServer, stream: trio.abc.Stream, remote_address: str | None) -> None:
        self.server = server
        self.config = server.config
        self.stream = stream
        self.remote_address = remote_address
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_SIZE)
        #: Set by a WebSocket request: what the connection becomes once ``run`` returns.
        self.upgrade: _Upgrade | None = None

    # -- h11 plumbing --------------------------------------------------------

    async def _next_event(self) -> h11.Event | type[h11.PAUSED] | type[h11.NEED_DATA]:
        while True:
            try:
                event = self.conn.next_event()
            except h11.RemoteProtocolError as exc:
                logger.debug("%s: bad HTTP: %s", self.remote_address, exc)
                await self._send_simple(exc.error_status_hint, b"", close=True)
                raise _Abort from exc
            if event is not h11.NEED_DATA:
                return event
            try:
                data = await self.stream.receive_some(RECEIVE_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise _Abort from exc
            self.conn.receive_data(data)

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

    async def _error(self, code: ErrorCode, extra_headers: Headers | None = None, *, close: bool = False) -> None:
        status, headers, body = error_response(code)
        await self._respond(status, [*headers, *(extra_headers or [])], body, close=close)

    # -- main loop -----------------------------------------------------------

    async def run(self) -> _Upgrade | None:
        """Answer requests until the connection ends or a WebSocket takes it
        over (returned, to be served without this object and its h11 state)."""
        try:
            timeout = FIRST_REQUEST_TIMEOUT
            while True:
                with trio.move_on_after(timeout) as idle:
                    event = await self._next_event()
                timeout = IDLE_TIMEOUT
                if idle.cancelled_caught:
                    return
                if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                    return
                assert isinstance(event, h11.Request), event
                if await self._handle(event):
                    return self.upgrade  # None: closed after a refusal
                if self.conn.our_state is h11.MUST_CLOSE or self.conn.their_state is h11.MUST_CLOSE:
                    return
                if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
                    self.conn.start_next_cycle()
                else:
                    return
        except _Abort:
            return

    async def _read_body(self, limit: int) -> bytes | None:
        """The request body, or None when it exceeds ``limit`` bytes."""
        chunks: list[bytes] = []
        size = 0
        while True:
            with trio.move_on_after(BODY_TIMEOUT) as slow:
                event = await self._next_event()
            if slow.cancelled_caught:
                raise _Abort
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
        if path != self.config.path and path.rstrip("/") + "/" != self.config.path:
            await self._fallback(request, method, target, path, query, headers)
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
        if origin is not None and not self.server.origin_allowed(origin, headers.get("host")):
            logger.info("%s: origin %r refused", self.remote_address, origin)
            await self._error(ErrorCode.FORBIDDEN, close=is_upgrade)
            return False
        cors = _cors_headers(origin)
        if method == "OPTIONS":
            await self._respond(204, [*cors, *_preflight_headers(headers)], b"")
            return False

        transport = query.get("transport")
        if transport not in (POLLING, WEBSOCKET):
            await self._error(ErrorCode.UNKNOWN_TRANSPORT, cors, close=is_upgrade)
            return False
        if query.get("EIO") != "4":
            await self._error(ErrorCode.UNSUPPORTED_PROTOCOL_VERSION, cors, close=is_upgrade)
            return False
        sid = query.get("sid")
        if transport == WEBSOCKET and not is_upgrade or transport == POLLING and is_upgrade:
            await self._error(ErrorCode.BAD_REQUEST, cors, close=is_upgrade)
            return False
        if sid is None:
            if method != "GET":
                await self._error(ErrorCode.BAD_HANDSHAKE_METHOD, cors)
                return False
            refusal = self.server.admit(self.remote_address)
            if refusal is not None:
                await self._refuse(refusal, cors)
                return True
            if transport == WEBSOCKET:
                return self._take_over(handshake, query, headers, None)
            sock = self.server.open_session(POLLING, self.remote_address, query, headers)
            await self._respond(200, [*cors, *_TEXT], sock.session.handshake_packet().encode())
            return False
        sock = self.server.lookup(sid)
        if sock is None:
            await self._error(ErrorCode.UNKNOWN_SID, cors, close=is_upgrade)
            return False
        if transport == WEBSOCKET:
            return self._take_over(handshake, query, headers, sock)
        if sock.transport != POLLING:
            await self._error(ErrorCode.BAD_REQUEST, cors)
            return False
        if method == "GET":
            await self._poll(sock, cors)
        elif method == "POST":
            if body is None:
                logger.info("session %s: POST over maxPayload", sid)
                sock.fail("payload too large")
                await self._respond(413, [*cors, ("Content-Type", "text/plain")], b"", close=True)
                return False
            await self._post(sock, body, cors)
        else:
            await self._error(ErrorCode.BAD_REQUEST, cors)
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
        sock.notify()  # the outbox drained: a closing session may finish
        try:
            await self._respond(200, [*cors, *_TEXT], payload.encode())
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
            self.conn.receive_data(data)
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
            packets = decode_payload(body)
        except PacketError as exc:
            logger.info("session %s: bad POST body: %s", sock.sid, exc)
            sock.fail("parse error")
            await self._error(ErrorCode.BAD_REQUEST, cors)
            return
        sock.post_pending = True
        try:
            for packet in packets:
                try:
                    data = sock.handle_packet(packet)
                except PacketError as exc:
                    logger.info("session %s: bad packet over polling: %s", sock.sid, exc)
                    await self._error(ErrorCode.BAD_REQUEST, cors)
                    return
                if data is not None:
                    await sock.deliver(data)
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
    ) -> bool:
        """Hand the connection to a WebSocket: ``run`` returns what it needs."""
        assert handshake is not None  # transport=websocket came with an accepted upgrade
        self.upgrade = _Upgrade(handshake.response, self.conn.trailing_data[0], query, headers, sock)
        return True

    # -- other paths -----------------------------------------------------------

    async def _fallback(
        self, request: h11.Request, method: str, target: str, path: str, query: dict[str, str], headers: dict[str, str]
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
                    HttpRequest(routed_method, target, path, query, headers, body, self.remote_address)
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


def _header_map(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
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
    return await _open_websocket(server, stream, remote_address, upgrade)


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
            sock = server.open_session(WEBSOCKET, remote_address, upgrade.query, upgrade.headers)
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
