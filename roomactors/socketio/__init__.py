"""Socket.IO v5 server on trio, on top of :mod:`roomactors.engineio`; protocol 4
on Engine.IO v3 sessions (socket.io-client 1.x/2.x, ``Socket.legacy``).

Layers, bottom up: :mod:`.packets` (sans-IO codec with validation),
:mod:`.protocol` (sans-IO per-session protocol state), :mod:`.session` and
:mod:`.sockets` (the trio side of one session), :mod:`.server` (handlers,
broadcast, serving).
"""

from __future__ import annotations

from .config import SocketIOConfig as SocketIOConfig
from .errors import ConnectionRefused as ConnectionRefused
from .errors import ProtocolViolation as ProtocolViolation
from .errors import SocketDisconnected as SocketDisconnected
from .server import SocketIOServer as SocketIOServer
from .sockets import Ack as Ack
from .sockets import EncodedEvent as EncodedEvent
from .sockets import Socket as Socket
from .sockets import encode_event as encode_event

__all__ = (
    "Ack",
    "SocketIOServer",
    "SocketIOConfig",
    "Socket",
    "EncodedEvent",
    "encode_event",
    "ConnectionRefused",
    "ProtocolViolation",
    "SocketDisconnected",
)
