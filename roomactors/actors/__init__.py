"""The lobby and room actors: the room protocol of ``protocol.md``, with no network.

Embed with :func:`open_lobby`; the Socket.IO binding lives in ``roomactors.app``.
"""

from .api import Lobby as Lobby
from .api import open_lobby as open_lobby
from .client import DETACH_FLOODING as DETACH_FLOODING
from .client import DETACH_REPLACED as DETACH_REPLACED
from .client import Client as Client
from .client import RoomList as RoomList
from .client import SharedEvent as SharedEvent
from .clock import ServerClock as ServerClock
from .commands import COMMANDS as COMMANDS
from .commands import REGISTRY as REGISTRY
from .commands import CommandSpec as CommandSpec
from .identity import IdentityPolicy as IdentityPolicy
from .limits import LobbySnapshot as LobbySnapshot
from .limits import LobbyStatistics as LobbyStatistics
from .limits import RoomLimits as RoomLimits
from .mailbox import ActorRef as ActorRef
from .mailbox import ActorStopped as ActorStopped
from .mailbox import MailboxFull as MailboxFull
from .mailbox import open_mailbox as open_mailbox
from .memory_client import MemoryClient as MemoryClient
from .records import Card as Card
from .records import Deck as Deck
from .records import DeckInfo as DeckInfo
from .records import RoomSummary as RoomSummary
from .records import User as User
from .room import SUPERVISION as SUPERVISION
from .routes import DIRECT_COMMANDS as DIRECT_COMMANDS
from .routes import CommandBucket as CommandBucket
from .routes import DirectReply as DirectReply
from .routes import RoomRoute as RoomRoute
from .routes import RoutedClient as RoutedClient
from .routes import direct_request as direct_request
from .routes import post_direct as post_direct
from .validation import ProtocolError as ProtocolError

__all__ = (
    "COMMANDS",
    "DETACH_FLOODING",
    "DIRECT_COMMANDS",
    "DETACH_REPLACED",
    "REGISTRY",
    "SUPERVISION",
    "ActorRef",
    "ActorStopped",
    "Card",
    "Client",
    "CommandBucket",
    "CommandSpec",
    "Deck",
    "DeckInfo",
    "DirectReply",
    "IdentityPolicy",
    "Lobby",
    "LobbySnapshot",
    "LobbyStatistics",
    "MailboxFull",
    "MemoryClient",
    "ProtocolError",
    "RoomLimits",
    "RoomList",
    "RoomRoute",
    "RoomSummary",
    "RoutedClient",
    "ServerClock",
    "SharedEvent",
    "User",
    "direct_request",
    "open_lobby",
    "open_mailbox",
    "post_direct",
)
