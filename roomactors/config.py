"""The room server's configuration: one frozen record, checked when it is made.

Every knob of ``roomserver`` lives here so that the CLI, the embedding API and the
tests agree on names, units and defaults. The record is frozen so that a running
server can hand it to every layer without anyone changing it underneath the others.
Validation happens in ``__post_init__`` and raises :class:`ValueError` (or
:class:`TypeError` for a value of the wrong kind) with a message that says what to
write instead, because the message is what an operator sees when the server
refuses to start.
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass, field

__all__ = ("DEFAULT_CLIENT_JS_URL", "LOG_FORMATS", "LOG_LEVELS", "MIN_IDENTITY_SECRET_BYTES", "RoomServerConfig")

DEFAULT_CLIENT_JS_URL = "https://cdn.socket.io/4.8.4/socket.io.min.js"
"""The official CDN build of socket.io-client 4.8.4, the newest 4.x on npm when written."""

LOG_LEVELS: tuple[str, ...] = ("debug", "info", "warning", "error", "critical")
"""The names ``log_level`` accepts, quietest last."""

LOG_FORMATS: tuple[str, ...] = ("text", "json")
"""The names ``log_format`` accepts: lines for people, or one JSON object a line."""

MIN_IDENTITY_SECRET_BYTES = 32
"""RFC 7518 (3.2): an HS256 key must be at least as long as the hash, 256 bits."""

# Browsers and JavaScript engines keep timer delays in a signed 32-bit count of
# milliseconds; a longer ping interval or timeout fires at once in the client.
_MAX_TIMER_SECONDS = (2**31 - 1) / 1000

# A host name (or a leading-dot domain) as allowed_hosts takes it: letters,
# digits, '-', '_' and dots, or an IP address (with ':' for IPv6).
_HOST_NAME = re.compile(r"^\*$|^\.?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$|^\[?[0-9A-Fa-f:.]+\]?$")

# An origin as a browser sends it in the Origin header: scheme://host[:port], no path.
_ORIGIN = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/\s?#]+$")


@dataclass(frozen=True)
class RoomServerConfig:
    """What ``serve_roomserver`` needs to run: network, protocol limits, room limits, logs.

    Times are in seconds (floats), sizes in bytes. The defaults match the reference
    Socket.IO servers, so default clients connect without options.
    """

    host: str = "127.0.0.1"
    """Address to listen on. The default only accepts local clients; use
    ``0.0.0.0`` (or ``::``) to accept clients from other machines."""

    port: int = 8000
    """TCP port to listen on; 0 picks a free port (the server reports which)."""

    path: str = "/socket.io/"
    """URL path of the Engine.IO endpoint; clients pass the same ``path`` option."""

    ping_interval: float = 25.0
    """Seconds between the server's pings (Engine.IO ``pingInterval``)."""

    ping_timeout: float = 20.0
    """Seconds a client has to answer a ping before it counts as gone
    (Engine.IO ``pingTimeout``)."""

    max_payload: int = 1_000_000
    """Bytes of one HTTP POST body or one WebSocket message (Engine.IO ``maxPayload``)."""

    cors_origins: tuple[str, ...] | None = None
    """Origins whose pages may connect: ``None`` only the server's own origin,
    ``("*",)`` any origin, else exact origins such as ``("https://example.org",)``."""

    max_rooms: int = 10_000
    """Rooms that may exist at once; one more ``create_room`` gets ``too_many_rooms``."""

    max_players: int = 50
    """Players a room holds besides its host; one more gets ``room_full``."""

    max_connections: int = 10_000
    """Connections (Engine.IO sessions) open at once; one more handshake gets
    HTTP 503 ``{"code": "too_many_connections", ...}``. 0: no limit."""

    max_sessions_per_address: int = 500
    """Connections open at once from one IP address; one more gets HTTP 503
    ``too_many_sessions_per_address``. Behind a reverse proxy every connection comes
    from the proxy: name it in ``forwarded_allow_ips`` so that clients are counted
    by their own addresses."""

    allowed_hosts: tuple[str, ...] = ()
    """Host names clients may reach the server by, besides those always answered
    (any IP address, ``localhost``, the machine's own names). A request for any
    other ``Host`` gets HTTP 400 before anything else: a defence against DNS
    rebinding. ``(".school.example",)`` allows a domain and its subdomains;
    ``("*",)`` any host."""

    forwarded_allow_ips: tuple[str, ...] = ()
    """Reverse proxies (IP addresses or networks such as ``10.0.0.0/8``; ``("*",)``:
    any peer) whose ``X-Forwarded-For``/``-Proto``/``-Host`` and ``Forwarded`` headers
    are believed: the client's address then comes from them (the per-address limit
    counts real clients, not the proxy), and so do the scheme and host the origin
    check compares with. Empty: such headers are ignored."""

    connect_timeout: float = 45.0
    """Seconds a connection may stay open without joining a namespace (Socket.IO
    ``connectTimeout``); then the server closes it."""

    command_rate: float = 20.0
    """Commands per second one client may send, on average (a token bucket);
    beyond it a command gets ``rate_limited``. 0: no limit."""

    command_burst: int = 40
    """Commands one client may send at once before ``rate_limited`` (the bucket's size)."""

    flood_limit: int = 50
    """``rate_limited`` answers one client may collect within ``flood_window``
    seconds; the next one disconnects it (reason ``flooding``). 0: never."""

    flood_window: float = 10.0
    """Seconds over which ``flood_limit`` counts."""

    shutdown_timeout: float = 10.0
    """Seconds a graceful shutdown may take before connections are cut."""

    client_js_url: str = DEFAULT_CLIENT_JS_URL
    """Where the lobby page loads socket.io-client from."""

    client_js_path: str | None = None
    """A local copy of the socket.io-client bundle for the server to serve instead
    of sending browsers to ``client_js_url`` (for machines without internet)."""

    log_level: str = "info"
    """One of ``debug``, ``info``, ``warning``, ``error``, ``critical``."""

    # -- deployment: TLS of its own, metrics, log format (docs/deployment.md) --

    certfile: str | None = None
    """A PEM certificate (chain after it) to serve ``https``/``wss`` with; None: plain HTTP."""

    keyfile: str | None = None
    """The PEM private key of ``certfile``; None when the key is inside ``certfile``
    (ignored without ``certfile``; the command line refuses that)."""

    metrics: bool = False
    """Serve Prometheus metrics at ``/metrics`` (needs the ``metrics`` extra:
    ``pip install 'roomactors[metrics]'``)."""

    log_format: str = "text"
    """``text`` (lines for people) or ``json`` (one object a line, for log collectors)."""

    eio3: bool = True
    """Also serve Engine.IO protocol 3 (socket.io-client 1.x and 2.x, such as the
    2017 game client) in the room protocol's legacy mode; ``False`` refuses those
    clients with Engine.IO error 5 "Unsupported protocol version"."""
    # -- seats and identity (race.md, "Seats that outlive a connection", "Identity")
    reconnect_grace: float = 60.0
    """Seconds a user whose connection dropped (no goodbye: the network went, the
    page reloaded, a missed heartbeat) keeps their place (lobby, room, host seat,
    race progress) to come back to; 0: a drop leaves at once, like a goodbye.
    Engine.IO v3 clients always have 0."""

    identity_secret: str | None = field(default=None, repr=False)
    """The HS256 secret shared with the school's site that signs identities
    (``join_lobby {credential}``); None: open identity (ids are the clients'
    claims, guarded by seat tokens). At least 32 bytes. Never printed."""

    teachers_only_create: bool = False
    """Only users whose role (``auth_level``) is ``teacher`` or ``admin`` may
    create rooms (``forbidden`` otherwise); meaningful with ``identity_secret``."""

    # --- many nodes on Redis (docs/cluster.md) ---
    redis_url: str | None = None
    """``redis://HOST:PORT/DB`` (or ``rediss://``, ``unix://``) of the Redis that joins
    several nodes into one server; ``None`` (the default): one process, in memory,
    and nothing about Redis is imported."""

    node_id: str | None = None
    """This node's name in the cluster, unique among the nodes on one Redis;
    ``None``: the host name and the process id (``host-1234``)."""

    redis_prefix: str = "roomactors:"
    """Prefix of every Redis key the nodes write, so that several clusters (or
    tests) can share one Redis."""

    redis_channel: str = "socketio"
    """The python-socketio pub/sub channel the nodes listen on (``RedisManager``'s
    ``channel``), so Python programs can emit to our clients."""

    node_ttl: float = 10.0
    """Seconds a node stays alive in Redis without refreshing its liveness key: a
    node that died leaves the cluster (and its rooms every list) within this time."""

    def __post_init__(self) -> None:
        _check_host(self.host)
        _check_int("port", self.port, low=0, high=65535, hint="use 0 to pick a free port")
        _check_path(self.path)
        _check_seconds_ms("ping_interval", self.ping_interval)
        _check_seconds_ms("ping_timeout", self.ping_timeout)
        if self.ping_interval + self.ping_timeout > _MAX_TIMER_SECONDS:
            raise ValueError(
                "ping_interval + ping_timeout must be at most "
                f"{_MAX_TIMER_SECONDS:.3f} s (JavaScript timers overflow beyond), "
                f"got {self.ping_interval:g} + {self.ping_timeout:g}"
            )
        _check_int("max_payload", self.max_payload, low=1, hint="a size in bytes, e.g. 1000000")
        _check_cors_origins(self.cors_origins)
        _check_int("max_rooms", self.max_rooms, low=1, hint="e.g. 10000")
        _check_int("max_players", self.max_players, low=1, hint="players besides the host, e.g. 50")
        _check_int("max_connections", self.max_connections, low=0, hint="0 for no limit, e.g. 10000")
        _check_int(
            "max_sessions_per_address", self.max_sessions_per_address, low=0, hint="0 for no limit, e.g. 500"
        )
        _check_allowed_hosts(self.allowed_hosts)
        _check_forwarded_allow_ips(self.forwarded_allow_ips)
        _check_seconds("connect_timeout", self.connect_timeout, allow_zero=False)
        _check_seconds("command_rate", self.command_rate, allow_zero=True, unit="commands per second")
        _check_int("command_burst", self.command_burst, low=1, hint="commands at once, e.g. 40")
        _check_int("flood_limit", self.flood_limit, low=0, hint="0 to never disconnect, e.g. 50")
        _check_seconds("flood_window", self.flood_window, allow_zero=False)
        _check_seconds("shutdown_timeout", self.shutdown_timeout, allow_zero=True)
        _check_client_js_url(self.client_js_url)
        if self.client_js_path is not None:
            if not isinstance(self.client_js_path, str) or not self.client_js_path.strip():
                raise ValueError(
                    "client_js_path must be the path of a socket.io.min.js file, "
                    f"or None to use client_js_url; got {self.client_js_path!r}"
                )
        if not isinstance(self.eio3, bool):
            raise TypeError(f"eio3 must be True (serve socket.io-client 1.x/2.x) or False; got {self.eio3!r}")
        _check_seconds("reconnect_grace", self.reconnect_grace, allow_zero=True)
        _check_identity_secret(self.identity_secret)
        if not isinstance(self.teachers_only_create, bool):
            raise TypeError(f"teachers_only_create must be True or False; got {self.teachers_only_create!r}")
        _check_cluster(self)
        if self.log_level not in LOG_LEVELS:
            raise ValueError(
                f"log_level must be one of {', '.join(LOG_LEVELS)}; got {self.log_level!r}"
            )
        _check_deployment(self)


def _check_deployment(config: RoomServerConfig) -> None:
    """The TLS, metrics and log-format fields (whether the files hold a usable
    certificate is checked when the server starts, see :mod:`roomactors.tls`)."""
    for name in ("certfile", "keyfile"):
        value = getattr(config, name)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ValueError(f"{name} must be the path of a PEM file, or None; got {value!r}")
    if not isinstance(config.metrics, bool):
        raise TypeError(f"metrics must be True or False; got {config.metrics!r}")
    if config.log_format not in LOG_FORMATS:
        raise ValueError(f"log_format must be one of {', '.join(LOG_FORMATS)}; got {config.log_format!r}")


def _check_identity_secret(secret: object) -> None:
    """Says what is wrong without ever showing the secret."""
    if secret is None:
        return
    if not isinstance(secret, str):
        raise TypeError(f"identity_secret must be a string, or None for open identity; got a {type(secret).__name__}")
    size = len(secret.encode())
    if size < MIN_IDENTITY_SECRET_BYTES:
        raise ValueError(
            f"identity_secret must be at least {MIN_IDENTITY_SECRET_BYTES} bytes (an HS256 key as long as its "
            f"hash, RFC 7518), got {size}; make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
_NODE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def _check_cluster(config: RoomServerConfig) -> None:
    url = config.redis_url
    if url is not None and (
        not isinstance(url, str) or not url.startswith(_REDIS_SCHEMES) or any(c.isspace() for c in url)
    ):
        raise ValueError(
            "redis_url must be a Redis URL such as 'redis://127.0.0.1:6379/0' "
            f"(schemes redis://, rediss://, unix://), or None for one node; got {url!r}"
        )
    if config.node_id is not None and (not isinstance(config.node_id, str) or not _NODE_ID.match(config.node_id)):
        raise ValueError(
            "node_id must be 1 to 64 letters, digits or '_.:-' (e.g. 'node-a'), "
            f"or None for the host name and process id; got {config.node_id!r}"
        )
    for name in ("redis_prefix", "redis_channel"):
        value = getattr(config, name)
        if not isinstance(value, str) or any(c.isspace() for c in value) or len(value) > 200:
            raise ValueError(f"{name} must be a string without spaces, at most 200 characters; got {value!r}")
    if not config.redis_channel:
        raise ValueError("redis_channel must not be empty; python-socketio's default is 'socketio'")
    _check_seconds("node_ttl", config.node_ttl, allow_zero=False)
    if config.node_ttl < 0.5:
        raise ValueError(f"node_ttl must be at least 0.5 seconds (e.g. 10); got {config.node_ttl!r}")


def _check_host(host: object) -> None:
    if not isinstance(host, str) or not host or any(c.isspace() for c in host):
        raise ValueError(
            "host must be an address or host name to listen on, "
            f"e.g. '127.0.0.1' or '0.0.0.0'; got {host!r}"
        )


def _check_int(name: str, value: object, *, low: int, high: int | None = None, hint: str) -> None:
    # bool is an int subclass; True as a port number is always a mistake.
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be a whole number ({hint}); got {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ValueError(f"{name} must be {bounds} ({hint}); got {value}")


def _check_seconds(name: str, value: object, *, allow_zero: bool, unit: str = "seconds") -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number of {unit}, e.g. 10 or 2.5; got {value!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        least = "0 or more" if allow_zero else "more than 0"
        raise ValueError(f"{name} must be a finite number of {unit}, {least}; got {value!r}")
    return float(value)


def _check_seconds_ms(name: str, value: object) -> None:
    """Heartbeat times travel in the handshake as whole milliseconds, so they must be one."""
    seconds = _check_seconds(name, value, allow_zero=False)
    millis = seconds * 1000
    if millis < 1 or abs(millis - round(millis)) > 1e-6:
        raise ValueError(
            f"{name} must be a whole number of milliseconds of at least 1 ms, "
            f"written in seconds (e.g. 25 or 0.5); got {value!r}"
        )


def _check_path(path: object) -> None:
    if (
        not isinstance(path, str)
        or not path.startswith("/")
        or not path.endswith("/")
        or any(c in path for c in "?#")
        or any(c.isspace() for c in path)
    ):
        raise ValueError(
            "path must start and end with '/' and hold no '?', '#' or spaces, "
            f"e.g. '/socket.io/'; got {path!r}"
        )


def _check_cors_origins(origins: object) -> None:
    if origins is None:
        return
    if not isinstance(origins, tuple):
        raise TypeError(
            "cors_origins must be None (same origin only), ('*',) (any origin) or a tuple "
            f"of origins such as ('https://example.org',); got {origins!r}"
        )
    if not origins:
        raise ValueError(
            "cors_origins must not be empty: use None for same origin only, or name origins"
        )
    if "*" in origins:
        if len(origins) > 1:
            raise ValueError(
                "cors_origins: '*' already allows every origin; give it alone, "
                f"without other origins; got {origins!r}"
            )
        return
    for origin in origins:
        if not isinstance(origin, str) or not _ORIGIN.match(origin):
            raise ValueError(
                "each of cors_origins must be an origin as browsers send it, "
                "scheme://host[:port] with no path or trailing slash, "
                f"e.g. 'https://example.org:8443'; got {origin!r}"
            )


def _check_allowed_hosts(hosts: object) -> None:
    if not isinstance(hosts, tuple):
        raise TypeError(
            "allowed_hosts must be a tuple of host names such as ('school.example',), "
            f"or ('*',) for any host; got {hosts!r}"
        )
    if "*" in hosts and len(hosts) > 1:
        raise ValueError(f"allowed_hosts: '*' already allows every host; give it alone; got {hosts!r}")
    for host in hosts:
        if not isinstance(host, str) or not _HOST_NAME.match(host):
            raise ValueError(
                "each of allowed_hosts must be a host name as clients type it, without scheme, "
                f"port or path, e.g. 'school.example' or '.school.example' for its subdomains too; got {host!r}"
            )


def _check_forwarded_allow_ips(entries: object) -> None:
    if not isinstance(entries, tuple):
        raise TypeError(
            "forwarded_allow_ips must be a tuple of proxy addresses or networks such as "
            f"('127.0.0.1', '10.0.0.0/8'), or ('*',) for any peer; got {entries!r}"
        )
    for entry in entries:
        if not isinstance(entry, str):
            raise TypeError(f"each of forwarded_allow_ips must be a string; got {entry!r}")
        if entry.strip() != "*":
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"forwarded_allow_ips: {entry!r} is not an IP address or network; give the "
                    "proxy's address (e.g. 127.0.0.1, 10.0.0.0/8, ::1) or '*' to trust any peer"
                ) from None


def _check_client_js_url(url: object) -> None:
    if (
        not isinstance(url, str)
        or not url.startswith(("https://", "http://", "/"))
        or any(c.isspace() for c in url)
    ):
        raise ValueError(
            "client_js_url must be an http(s) URL or a path on this server, e.g. "
            f"{DEFAULT_CLIENT_JS_URL!r} or '/static/socket.io.min.js'; got {url!r}"
        )
