"""Many roomserver nodes joined on Redis (``roomserver --redis``; docs/cluster.md).

Imported only when a server is configured with ``redis_url``: a single node needs
neither this package nor coredis. The actors never import it either.
"""

from .directory import RemoteRoom, ClusterDirectory, claim_id_block
from .interop import decode_message
from .link import RedisHealth
from .node import ClusterNode, default_node_id
from .users import UserRegistry

__all__ = (
    "ClusterNode",
    "RedisHealth",
    "RemoteRoom",
    "UserRegistry",
    "ClusterDirectory",
    "claim_id_block",
    "decode_message",
    "default_node_id",
)
