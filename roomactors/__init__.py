"""roomactors: the lobby and game-room server of a multiplayer flashcard game.

Three layers, each usable on its own: an Engine.IO v4 server on trio
(:mod:`roomactors.engineio`), a Socket.IO v5 server on top of it
(:mod:`roomactors.socketio`), and the lobby and room actors
(:mod:`roomactors.actors`) that speak the room protocol of ``docs/protocol.md``.
:func:`serve_roomserver` puts them together; the names below are the public API
(each subpackage exports more of its own layer).
"""

import logging as _logging

from .actors import Lobby as Lobby
from .actors import MemoryClient as MemoryClient
from .actors import RoomLimits as RoomLimits
from .actors import open_lobby as open_lobby
from .app import RoomApp as RoomApp
from .app import open_room_app as open_room_app
from .config import RoomServerConfig as RoomServerConfig
from .engineio import EngineIOConfig as EngineIOConfig
from .engineio import EngineIOServer as EngineIOServer
from .engineio import EngineSocket as EngineSocket
from .engineio import serve_engineio as serve_engineio
from .server import RoomServer as RoomServer
from .server import RoomServerStatistics as RoomServerStatistics
from .server import serve_roomserver as serve_roomserver
from .socketio import ConnectionRefused as ConnectionRefused
from .socketio import Socket as Socket
from .socketio import SocketIOConfig as SocketIOConfig
from .socketio import SocketIOServer as SocketIOServer

_logging.getLogger(__name__).addHandler(_logging.NullHandler())

__all__ = (
    "ConnectionRefused",
    "EngineIOConfig",
    "EngineIOServer",
    "EngineSocket",
    "Lobby",
    "MemoryClient",
    "RoomApp",
    "RoomLimits",
    "RoomServer",
    "RoomServerConfig",
    "RoomServerStatistics",
    "Socket",
    "SocketIOConfig",
    "SocketIOServer",
    "open_lobby",
    "open_room_app",
    "serve_engineio",
    "serve_roomserver",
)
