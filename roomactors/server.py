"""The room server: the room protocol, the lobby page and a health check on one port.

This module only composes the layers: a :class:`~roomactors.socketio.SocketIOServer`
configured from :class:`~roomactors.config.RoomServerConfig`, the room protocol
installed on it (:func:`roomactors.app.open_room_app`), and the plain HTTP routes
(``/healthz``, the lobby page) behind the Engine.IO server's ``http_fallback`` hook.
``serve_roomserver`` follows trio's ``serve_*`` convention, so an embedder writes
``server = await nursery.start(serve_roomserver, config)``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from .actors import ActorStopped, IdentityPolicy, RoomLimits
from .app import RoomApp, open_room_app
from .config import RoomServerConfig
from .engineio import EngineIOConfig, HttpRequest, HttpResponse
from .socketio import SocketIOConfig, SocketIOServer
from .tls import server_ssl_context
from .web import LobbyPageRoutes

if TYPE_CHECKING:
    from .cluster import ClusterNode

__all__ = ("RoomServer", "RoomServerStatistics", "serve_roomserver")

if TYPE_CHECKING:
    from .metrics import MetricsSample, RoomMetrics

logger = logging.getLogger(__name__)

HEALTHZ_PATH = "/healthz"
METRICS_PATH = "/metrics"


@dataclass(frozen=True)
class RoomServerStatistics:
    """A snapshot of a running room server (also what ``GET /healthz`` reports)."""

    connections: int
    """Engine.IO sessions open: one per connected client, whatever its namespaces."""
    clients: int
    """Sockets connected to ``/`` or ``/lobby`` (a client on both counts twice)."""
    users: int
    """Users bound to a connection, in the lobby or in a room."""
    rooms: int
    uptime: float
    """Seconds since the server started listening."""


class RoomServer:
    """A running room server, as ``serve_roomserver`` hands it to ``task_status``."""

    def __init__(self, config: RoomServerConfig) -> None:
        self.config = config
        self._page = LobbyPageRoutes(client_js_url=config.client_js_url, client_js_path=config.client_js_path)
        self.sio = SocketIOServer(socketio_config(config), engineio_config(config), http_fallback=self._route)
        self._app: RoomApp | None = None
        self.cluster: ClusterNode | None = None
        """This node on Redis when ``config.redis_url`` is set (docs/cluster.md)."""
        self.addresses: list[tuple[str, int]] = []
        self._started_at = trio.current_time()
        self._shutdown_requested = trio.Event()
        self._stopped = trio.Event()
        self._shutdown_reason = "shutdown"
        #: The Prometheus metrics (``config.metrics``), else None.
        self.metrics: RoomMetrics | None = None
        if config.metrics:
            from .metrics import RoomMetrics  # prometheus-client: the optional ``metrics`` extra

            self.metrics = RoomMetrics(self._metrics_sample)

    @property
    def port(self) -> int:
        """The bound TCP port (useful with ``port=0``)."""
        return self.addresses[0][1]

    @property
    def url(self) -> str:
        """The URL a client connects to (``io(url)``; ``io(url + "/lobby")`` for the
        lobby namespace); the lobby page is served at this URL too."""
        host = self.addresses[0][0] if self.addresses else self.config.host
        if ":" in host:
            host = f"[{host}]"
        scheme = "https" if self.config.certfile else "http"
        return f"{scheme}://{host}:{self.port}"

    @property
    def app(self) -> RoomApp:
        """The room protocol's handlers and lobby (set while serving)."""
        if self._app is None:
            raise RuntimeError("the room server is not serving yet")
        return self._app

    def statistics(self) -> RoomServerStatistics:
        lobby = self.app.statistics()
        return RoomServerStatistics(
            connections=self.sio.engineio.statistics().sessions,
            clients=lobby.clients,
            users=lobby.users,
            rooms=lobby.rooms,
            uptime=trio.current_time() - self._started_at,
        )

    async def shutdown(self, reason: str = "shutdown") -> None:
        """Stop gracefully and wait until the server has stopped.

        New connections are refused at once; every host and player gets
        ``roomclosed`` with reason ``shutdown``; then every connection is closed
        cleanly, and whatever is still open after ``config.shutdown_timeout``
        seconds is cut. Safe to call more than once.
        """
        self._shutdown_reason = reason
        self._shutdown_requested.set()
        await self._stopped.wait()

    async def _metrics_sample(self) -> MetricsSample:
        from .metrics import RACING_STATES, MetricsSample

        try:
            rooms = (await self.app.lobby.snapshot()).rooms.rooms
        except ActorStopped:  # shutting down: the lobby is gone, the connections not yet
            rooms = ()
        # Rooms before the race have no state: they are all waiting.
        states = Counter(str(getattr(room, "state", "waiting")) for room in rooms)
        return MetricsSample(
            engineio=self.sio.engineio.statistics(),
            namespace_sockets=self.app.sockets_by_namespace(),
            rooms_by_state=dict(states),
            players_seated=sum(len(room.players) for room in rooms),
            races_running=sum(count for state, count in states.items() if state in RACING_STATES),
            users=self.app.statistics().users,
        )

    async def _route(self, request: HttpRequest) -> HttpResponse | None:
        if request.path == HEALTHZ_PATH:
            return self._healthz(request)
        if self.metrics is not None and request.path == METRICS_PATH:
            return await self.metrics.route(request)
        return await self._page.route(request)

    def _healthz(self, request: HttpRequest) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            return HttpResponse(405, (("allow", "GET, HEAD"), ("content-type", "text/plain")), b"use GET\n")
        stats = self.statistics()
        status = "shutting down" if self._shutdown_requested.is_set() else "ok"
        body: dict[str, Any] = {
            "status": status,
            "connections": stats.connections,
            "rooms": stats.rooms,
            "uptime": round(stats.uptime, 3),
        }
        if self.cluster is not None:
            # Still 200 without Redis: this node goes on serving its own clients.
            body["cluster"] = self.cluster.status()
        return HttpResponse(
            200 if status == "ok" else 503,
            (("content-type", "application/json"), ("cache-control", "no-store")),
            json.dumps(body).encode(),
        )


def engineio_config(config: RoomServerConfig) -> EngineIOConfig:
    """The Engine.IO part of a room server configuration."""
    return EngineIOConfig(
        path=config.path,
        ping_interval=config.ping_interval,
        ping_timeout=config.ping_timeout,
        max_payload=config.max_payload,
        cors_origins=config.cors_origins,
        max_sessions=config.max_connections or None,
        max_sessions_per_address=config.max_sessions_per_address or None,
        allowed_hosts=config.allowed_hosts,
        forwarded_allow_ips=config.forwarded_allow_ips,
        eio3=config.eio3,
    )


def socketio_config(config: RoomServerConfig) -> SocketIOConfig:
    """The Socket.IO part of a room server configuration."""
    return SocketIOConfig(connect_timeout=config.connect_timeout)


def room_limits(config: RoomServerConfig) -> RoomLimits:
    """The lobby's part of a room server configuration."""
    return RoomLimits(
        max_rooms=config.max_rooms,
        max_players=config.max_players,
        command_rate=config.command_rate or None,
        command_burst=config.command_burst,
        flood_limit=config.flood_limit or None,
        flood_window=config.flood_window,
        reconnect_grace=config.reconnect_grace,
    )


def identity_policy(config: RoomServerConfig) -> IdentityPolicy:
    """Who may speak for a user id: open identity, or signed with the secret."""
    return IdentityPolicy(secret=config.identity_secret, teachers_only_create=config.teachers_only_create)


async def serve_roomserver(
    config: RoomServerConfig = RoomServerConfig(),
    *,
    task_status: trio.TaskStatus[RoomServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the room server until :meth:`RoomServer.shutdown` is called.

    ``task_status.started`` gets the :class:`RoomServer` once it listens. Cancel
    the surrounding scope to stop at once; call ``shutdown()`` to stop gracefully.
    """
    server = RoomServer(config)
    sio = server.sio
    limits = room_limits(config)
    if config.redis_url is not None:
        from .cluster import claim_id_block, default_node_id  # only here: one node needs no Redis

        node_id = config.node_id or default_node_id()
        first = await claim_id_block(config.redis_url, config.redis_prefix, node_id)
        limits = dataclasses.replace(limits, first_room_id=first)
    async with open_room_app(sio, limits, metrics=server.metrics, identity=identity_policy(config)) as app:
        server._app = app
        try:
            async with trio.open_nursery() as nursery:
                listeners = await open_listeners(config)
                server.addresses = await nursery.start(sio.serve_listeners, listeners)
                server._started_at = trio.current_time()
                if server.metrics is not None:
                    nursery.start_soon(server.metrics.run_lag_probe)
                if config.redis_url is not None:
                    from .cluster import ClusterNode  # only here: one node needs no Redis

                    server.cluster = ClusterNode(config, sio, app, app.lobby)
                    await nursery.start(server.cluster.run)
                if config.cors_origins == ("*",):
                    logger.warning("CORS: pages from ANY origin may connect (--cors-origin '*')")
                logger.info(
                    "answering requests for %s (add a name clients use with --allowed-host)",
                    sio.engineio.describe_hosts(),
                )
                logger.debug("listening on %s (Socket.IO path %s)", server.url, config.path)
                task_status.started(server)
                await server._shutdown_requested.wait()
                await _shut_down(server)
                nursery.cancel_scope.cancel()
        finally:
            server._stopped.set()


async def open_listeners(config: RoomServerConfig) -> list[trio.abc.Listener[trio.abc.Stream]]:
    """TCP listeners on ``config.host``:``config.port``, wrapped in TLS when
    ``config.certfile`` is set (the handshake then runs in each connection's
    task, under the first request's timeout, never in the accept loop)."""
    tcp = await trio.open_tcp_listeners(config.port, host=config.host)
    if config.certfile is None:
        return list(tcp)
    context = server_ssl_context(config.certfile, config.keyfile)
    return [trio.SSLListener(listener, context, https_compatible=True) for listener in tcp]


async def _shut_down(server: RoomServer) -> None:
    """Tell everyone, close every connection, and give it ``shutdown_timeout``."""
    timeout = server.config.shutdown_timeout
    logger.info("shutting down (%s): telling every room, closing connections", server._shutdown_reason)
    with trio.move_on_after(timeout) as scope:
        await server.app.shutdown()
        await server.sio.engineio.shutdown()
    if scope.cancelled_caught:
        logger.warning("shutdown took longer than %.1f s; cutting the remaining connections", timeout)
