"""SocketIOConfig: the Socket.IO layer's settings, frozen, with units in the names' docs."""

from __future__ import annotations

from dataclasses import dataclass

from .protocol import DEFAULT_CONNECT_BURST, DEFAULT_CONNECT_RATE
from .packets import DEFAULT_MAX_ATTACHMENTS

__all__ = ("SocketIOConfig",)


@dataclass(frozen=True)
class SocketIOConfig:
    """Settings of a :class:`~roomactors.socketio.SocketIOServer`.

    connect_timeout: seconds an Engine.IO session may stay without joining any
        namespace before it is closed (45 s, as Node's socket.io ``connectTimeout``);
        stops clients that open a transport and never speak Socket.IO.
    max_attachments: most binary attachments one packet may announce; a larger
        count is a protocol violation, refused before anything is buffered.
    max_queued_events: packets of one connection read ahead of its handlers;
        past it the connection's transport stops reading (back-pressure on
        that client only, like the Engine.IO layer's).
    connect_burst, connect_rate: namespace joins one connection may make at
        once, and per second after that; one more is answered CONNECT_ERROR
        "Too many namespace connections; slow down" without the application
        hearing of it (leaving and rejoining must not reset per-socket limits).
    """

    connect_timeout: float = 45.0
    max_attachments: int = DEFAULT_MAX_ATTACHMENTS
    max_queued_events: int = 16
    connect_burst: int = DEFAULT_CONNECT_BURST
    connect_rate: float = DEFAULT_CONNECT_RATE

    def __post_init__(self) -> None:
        if not self.connect_timeout > 0:
            raise ValueError(f"connect_timeout must be > 0 seconds, got {self.connect_timeout!r}")
        if self.max_attachments < 0:
            raise ValueError(f"max_attachments must be >= 0, got {self.max_attachments!r}")
        if self.connect_burst < 1 or not self.connect_rate > 0:
            raise ValueError(
                f"connect_burst must be >= 1 and connect_rate > 0, got {self.connect_burst!r}, {self.connect_rate!r}"
            )
        if self.max_queued_events < 1:
            raise ValueError(f"max_queued_events must be >= 1, got {self.max_queued_events!r}")
