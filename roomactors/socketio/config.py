"""SocketIOConfig: the Socket.IO layer's settings, frozen, with units in the names' docs."""

from __future__ import annotations

from dataclasses import dataclass

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
    """

    connect_timeout: float = 45.0
    max_attachments: int = DEFAULT_MAX_ATTACHMENTS
    max_queued_events: int = 16

    def __post_init__(self) -> None:
        if not self.connect_timeout > 0:
            raise ValueError(f"connect_timeout must be > 0 seconds, got {self.connect_timeout!r}")
        if self.max_attachments < 0:
            raise ValueError(f"max_attachments must be >= 0, got {self.max_attachments!r}")
        if self.max_queued_events < 1:
            raise ValueError(f"max_queued_events must be >= 1, got {self.max_queued_events!r}")
