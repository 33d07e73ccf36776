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
