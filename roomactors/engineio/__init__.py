"""Engine.IO v4 server on trio: long-polling (h11) and WebSocket on one port,
with the upgrade between them; Engine.IO v3 (socket.io-client 1.x/2.x) beside
it, chosen by the client's ``EIO`` query parameter (:mod:`.packets_v3`).

The WebSocket side is our own lean connection (:mod:`.wsframes`, :mod:`.wshandshake`,
:mod:`.wsconnection`) rather than trio-websocket's: a broadcast frames its
message once and writes the same bytes to every client, and an idle
connection holds no reader task or buffers (measurements in bench/micro/).
trio-websocket and wsproto remain the tests' independent WebSocket client and
the reference the frame parser is fuzzed against.

python-engineio has no trio server; its packet class serves as a codec only.
See docs/architecture.md for the contract this package implements.
"""

from .coalesce import coalesced_writes as coalesced_writes
from .config import EngineIOConfig as EngineIOConfig
from .engine_socket import EngineReceiver as EngineReceiver
from .engine_socket import EngineSocket as EngineSocket
from .errors import EngineClosed as EngineClosed
from .httpmessages import HttpRequest as HttpRequest
from .httpmessages import HttpResponse as HttpResponse
from .httpmessages import HttpRoute as HttpRoute
from .packets import SharedMessage as SharedMessage
from .server import EngineHandler as EngineHandler
from .server import EngineIOServer as EngineIOServer
from .server import EngineIOStatistics as EngineIOStatistics
from .server import serve_engineio as serve_engineio

__all__ = (
    "EngineClosed",
    "EngineHandler",
    "EngineIOConfig",
    "EngineIOServer",
    "EngineIOStatistics",
    "EngineReceiver",
    "EngineSocket",
    "HttpRequest",
    "HttpResponse",
    "HttpRoute",
    "SharedMessage",
    "coalesced_writes",
    "serve_engineio",
)
