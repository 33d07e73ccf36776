"""One node of a cluster: its jobs on Redis, owned by the server's nursery.

:class:`ClusterNode` runs, each under :func:`~roomactors.cluster.link.supervise`:

- the liveness key (``liveness.keep_alive``), which also counts the living nodes;
- the room directory's writer and replica (``directory``), which make every
  node's lobby list every node's rooms;
- the user registry (``users``), which keeps one place per user id across nodes;
- the relay of commands and events for rooms held by other nodes (``relay``):
  it queues its messages straight into its :class:`~roomactors.cluster.inbox.Outbox`
  (kept while Redis is away), which the publisher writes into the other nodes'
  inbox streams, a batch (whatever is queued) per script call, without waiting
  for more; the inbox reader reads this node's stream (:mod:`~roomactors.cluster.inbox`);
- the python-socketio listener, which reads ``redis_channel`` (pub/sub: that is
  python-socketio's protocol) with a ``get_message()`` loop (coredis's ``async
  for`` over a pubsub silently ends after a Redis restart) and delivers what
  Python programs emit to this node's own clients.

A Redis outage stops none of this node's own work: the jobs fail, the outage is
logged once, the jobs come back with backoff; relayed messages wait in the
outbox meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket as _socket
from collections.abc import Iterable
from typing import Any, Protocol

import trio
from coredis.retry import NoRetryPolicy

from ..actors import ActorStopped, IdentityPolicy, Lobby
from ..actors.client import Client
from ..config import RoomServerConfig
from ..socketio import Socket, SocketIOServer
from .interop import CloseRoom, Disconnect, Emit, EnterRoom, LeaveRoom, MessageError, PubSubMessage, decode_message
from .directory import ClusterDirectory
from .inbox import InboxReader, Outbox, Queued, held, inbox_ttl, sender_id, write_batch
from .relay import Relay
from .users import UserRegistry
from .link import BACKOFF_MAX, RedisHealth, connect, supervise
from .liveness import REFRESHES_PER_TTL, keep_alive, leave

__all__ = ("ClusterNode", "LocalSockets", "default_node_id")

logger = logging.getLogger("roomactors.cluster")


def default_node_id() -> str:
    """The host name and the process id: unique per process on one network."""
    return f"{_socket.gethostname()}-{os.getpid()}"


class LocalSockets(Protocol):
    """This node's connected sockets (the room app knows them); the node installs
    its relay as the app's command router."""

    router: Any

    def socket(self, namespace: str, sid: str) -> Socket | None: ...

    def client(self, namespace: str, sid: str) -> Client | None: ...

    def sockets(self, namespace: str) -> Iterable[Socket]: ...


class ClusterNode:
    """This process as a node on Redis; run :meth:`run` in the server's nursery."""

    def __init__(self, config: RoomServerConfig, sio: SocketIOServer, local: LocalSockets, lobby: Lobby) -> None:
        if config.redis_url is None:
            raise ValueError("a cluster node needs redis_url")
        self.config = config
        self.url = config.redis_url
        self.node_id = config.node_id or default_node_id()
        self.prefix = config.redis_prefix
        self.channel = config.redis_channel
        self.health = RedisHealth(self.url)
        self._sio = sio
        self._local = local
        self._lobby = lobby
        self.directory = ClusterDirectory(self.node_id, self.prefix, self.url, self.health, lobby.remote_rooms_changed)
        self.users = UserRegistry(self.node_id, self.prefix, self.url, self.health, config.node_ttl)
        self.relay = Relay(
            self.node_id, self.prefix, lobby, local.socket, self.directory.owner_of, self.directory.room_of_code,
            users=self.users, client_of=local.client,
            identity=IdentityPolicy(secret=config.identity_secret, teachers_only_create=config.teachers_only_create),
            room_of_user=self.directory.room_of_user,
        )
        self.directory.dead_after = max(config.node_ttl, 2 * BACKOFF_MAX + config.node_ttl / REFRESHES_PER_TTL)
        self.users.dead_after = self.directory.dead_after
        #: python-socketio rooms entered by ``enter_room`` messages: (namespace, room) -> sids.
        self._named_rooms: dict[tuple[str, str], set[str]] = {}
        self.outbox: Outbox = self.relay.outbox
        """Relayed messages waiting for Redis (the relay queues them there)."""
        self.inbox = InboxReader(self.relay.inbox, self.relay.handle_inbox)
        """Reads this node's inbox stream."""
        self._sender = sender_id(self.node_id)
        self._inbox_ttl = inbox_ttl(config.node_ttl)
        self._held: list[Queued] | None = None
        self._alive: frozenset[str] = frozenset()
        self._liveness_sessions = 0
        self.subscriptions = 0
        """How often the listener has (re)subscribed (statistics; tests wait on it)."""
        self.subscribed = trio.Event()
        """Set once the python-socketio listener has subscribed (for tests and start-up)."""
        self.delivered = 0
        """Messages from the python-socketio channel acted on (statistics)."""

    def status(self) -> dict[str, Any]:
        """What ``/healthz`` reports about the cluster."""
        return {
            "node_id": self.node_id,
            "redis": "reachable" if self.health.reachable else "unreachable",
            "nodes_alive": self.health.alive_nodes,
            "rooms_version": self.directory.version,
        }

    @property
    def relay_waiting(self) -> int:
        """Relayed messages not yet in Redis (queued, or in the batch being written)."""
        return len(self.outbox) + len(self._held or ())

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The node's jobs, until cancelled. Starts at once, with or without Redis."""
        logger.info("cluster node %s on Redis %s", self.node_id, self.url)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(supervise, self.health, "liveness", self._liveness)
                nursery.start_soon(supervise, self.health, "pubsub", self._listen)
                nursery.start_soon(supervise, self.health, "directory-writer", self.directory.write)
                nursery.start_soon(supervise, self.health, "directory-replica", self.directory.replicate)
                nursery.start_soon(supervise, self.health, "users", self.users.run)
                nursery.start_soon(self.directory.tell_lobby)
                await nursery.start(self.relay.run)
                nursery.start_soon(supervise, self.health, "relay-publisher", self._publish_relayed)
                nursery.start_soon(supervise, self.health, "relay-inbox", self._read_inbox)
                with contextlib.suppress(ActorStopped):  # stopped already: nothing to attach
                    await self._lobby.attach_directory(self.directory, self.users)
                self._local.router = self.relay
                task_status.started()
        finally:
            with trio.CancelScope(shield=True):
                await leave(self.url, self.prefix, self.node_id)

    async def _liveness(self) -> None:
        ttl = self.config.node_ttl
        # A first session trusts what it finds; a reconnection (Redis may have
        # restarted empty) lets the other nodes refresh their keys first.
        settle = ttl / REFRESHES_PER_TTL + 2 * BACKOFF_MAX if self._liveness_sessions else 0.0
        self._liveness_sessions += 1
        await keep_alive(self.url, self.prefix, self.node_id, ttl, self.health, self._nodes_alive, settle=settle)

    def _nodes_alive(self, nodes: frozenset[str], settled: bool) -> None:
        """The living nodes, from a liveness check. Right after this node (re)connected
        (Redis restarted, say), a node may be missing only because it has not
        refreshed its key yet: until the session has settled, nodes are added,
        never removed (no node_lost, no vanishing rooms for a Redis restart)."""
        if not settled:
            nodes = nodes | self._alive
        self._alive = nodes
        self.directory.set_alive(nodes)
        self.users.set_alive(nodes)
        self.relay.nodes_alive(nodes | {self.node_id})

    async def _publish_relayed(self) -> None:
        """Writes the outbox to the other nodes' inbox streams, in order; a batch
        that failed is written again first after the reconnect."""
        async with connect(self.url) as client, held(client) as connection:
            await client.ping()
            self.health.job_ok("relay-publisher")
            while True:
                if self._held is None:
                    await self.outbox.wait()
                    self._held = self.outbox.take()
                await write_batch(connection, self._held, self._sender, self._inbox_ttl)
                self._held = None

    async def _read_inbox(self) -> None:
        async with connect(self.url) as client:
            await self.inbox.read(client, lambda: self.health.job_ok("relay-inbox"))

    async def _listen(self) -> None:
        async with connect(self.url) as client:
            async with client.pubsub(channels=[self.channel], retry_policy=NoRetryPolicy()) as pubsub:
                self.health.job_ok("pubsub")
                self.subscriptions += 1
                self.subscribed.set()
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True)
                    if message is None or message.get("type") != "message":
                        continue
                    data = message["data"]
                    if isinstance(data, (bytes, str)):
                        self.handle_raw(data)

    def handle_raw(self, raw: bytes | str) -> None:
        """One message from the channel; a bad one is logged and skipped."""
        try:
            decoded = decode_message(raw)
        except MessageError as exc:
            logger.warning("skipped a message on Redis channel %r: %s", self.channel, exc)
            return
        if decoded is not None:
            self.apply(decoded)

    def apply(self, message: PubSubMessage) -> None:
        """Act on one python-socketio operation for this node's own sockets."""
        self.delivered += 1
        if isinstance(message, Emit):
            self._emit(message)
        elif isinstance(message, Disconnect):
            target = self._local.socket(message.namespace, message.sid)
            if target is not None:
                target.disconnect()
        elif isinstance(message, EnterRoom):
            if self._local.socket(message.namespace, message.sid) is not None:
                self._named_rooms.setdefault((message.namespace, message.room), set()).add(message.sid)
        elif isinstance(message, LeaveRoom):
            members = self._named_rooms.get((message.namespace, message.room))
            if members is not None:
                members.discard(message.sid)
                if not members:
                    del self._named_rooms[(message.namespace, message.room)]
        elif isinstance(message, CloseRoom):
            self._named_rooms.pop((message.namespace, message.room), None)

    def _targets(self, message: Emit) -> list[Socket]:
        namespace = message.namespace
        if message.room is None:
            candidates: Iterable[Socket] = self._local.sockets(namespace)
        else:
            own = self._local.socket(namespace, message.room)  # every sid is a room of its own
            if own is not None:
                candidates = (own,)
            else:
                members = self._named_rooms.get((namespace, message.room), set())
                found = (self._local.socket(namespace, sid) for sid in list(members))
                candidates = [s for s in found if s is not None]
                members.intersection_update(s.sid for s in candidates)  # forget the departed
        return [s for s in candidates if s.sid not in message.skip_sids and s.connected]

    def _emit(self, message: Emit) -> None:
        if message.wants_callback:
            logger.debug("an emit asked for a callback; our clients' acks are not sent back across Redis")
        targets = self._targets(message)
        if not targets:
            return
        encoded = self._sio.encode_event(message.event, *message.args, namespace=message.namespace)
        for target in targets:
            target.send_encoded(encoded)
