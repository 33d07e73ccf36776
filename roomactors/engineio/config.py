"""Configuration of the Engine.IO server: one frozen record, units in the names' docs."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EngineIOConfig"]


@dataclass(frozen=True)
class EngineIOConfig:
    """Defaults match the reference servers so default clients agree with us.

    Times are seconds (sent in the handshake as exact integer milliseconds).
    """

    #: URL path of the Engine.IO endpoint; other paths go to ``http_fallback``.
    path: str = "/socket.io/"
    #: The server pings every ``ping_interval`` seconds after open / the last pong.
    ping_interval: float = 25.0
    #: A session whose pong is not back ``ping_timeout`` seconds after the ping is gone.
    ping_timeout: float = 20.0
    #: Bytes of one POST body / one WebSocket message; larger ones close the session.
    max_payload: int = 1_000_000
    #: Seconds a WebSocket probe has to finish the upgrade before it is closed.
    upgrade_timeout: float = 10.0
    #: None: same origin only; a tuple of allowed origins; ("*",): any origin.
    cors_origins: tuple[str, ...] | None = None
    #: Per-session outbox limits; exceeding them closes the session ("outbox overflow").
    outbox_max_messages: int = 1024
    outbox_max_bytes: int = 4_000_000
    #: Sessions open at once; a handshake beyond it is refused with HTTP 503
    #: (``{"code": "too_many_connections", ...}``). None: no limit.
    max_sessions: int | None = None
    #: Sessions open at once from one remote address (a school behind one NAT
    #: address counts as one); beyond it HTTP 503 ``too_many_sessions_per_address``.
    #: None: no limit.
    max_sessions_per_address: int | None = None
    #: Serve Engine.IO protocol 3 (``EIO=3``: socket.io-client 1.x and 2.x)
    #: beside v4; False refuses it with error 5 "Unsupported protocol version".
    eio3: bool = True

    # -- HTTP: who may ask, and how long a request may take (issue 10, issue 15) --
    #: ``Host`` names answered besides the machine's own (IP addresses,
    #: ``localhost``, its host names: see :mod:`.hosts`); other hosts get HTTP
    #: 400 before anything else (DNS rebinding). ``("*",)``: every host.
    allowed_hosts: tuple[str, ...] = ()
    #: Proxies (IP addresses, networks, or ``"*"``) whose ``X-Forwarded-*`` /
    #: ``Forwarded`` headers are believed for the client's address, scheme and
    #: host (see :mod:`.forwarded`); from anyone else they are ignored.
    forwarded_allow_ips: tuple[str, ...] = ()
    #: Seconds a new TCP connection has to send its first request head.
    first_request_timeout: float = 10.0
    #: Seconds one whole request (head and body) may take from its first byte,
    #: like Node's ``requestTimeout``; a slower one is answered 408 and closed.
    request_timeout: float = 60.0
    #: Seconds a keep-alive connection may wait for its next request.
    keepalive_timeout: float = 120.0
    #: Bytes of one request head (request line and headers); larger: HTTP 431.
    max_request_head: int = 16384
    #: Connections from one address still sending their first request
    #: ("half-open"); beyond it, the oldest of them that are older than
    #: ``half_open_grace`` are closed, so idle sockets cannot pile up. (At the
    #: address's TCP share the oldest makes room whatever its age, so idle
    #: sockets cannot lock out the other clients of a shared NAT address.)
    max_half_open_per_address: int = 64
    #: Seconds a half-open connection is spared by that budget: a burst of
    #: real clients connecting at once (a class after a restart) is younger.
    half_open_grace: float = 1.0

    def __post_init__(self) -> None:
        for name in ("max_sessions", "max_sessions_per_address"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"{name} must be a whole number of at least 1, or None for no limit; got {value!r}")
        for name in ("first_request_timeout", "request_timeout", "keepalive_timeout", "half_open_grace"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise ValueError(f"{name} must be a number of seconds above 0; got {value!r}")
        for name in ("max_request_head", "max_half_open_per_address"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a whole number of at least 1; got {value!r}")
        for name in ("allowed_hosts", "forwarded_allow_ips"):
            if not isinstance(getattr(self, name), tuple):
                raise TypeError(f"{name} must be a tuple of strings; got {getattr(self, name)!r}")
