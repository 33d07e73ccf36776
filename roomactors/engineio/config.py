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

    def __post_init__(self) -> None:
        for name in ("max_sessions", "max_sessions_per_address"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"{name} must be a whole number of at least 1, or None for no limit; got {value!r}")
