"""What the Engine.IO endpoint does with a request: a decision from the
request's method, query and headers alone (sans-IO).

The trio code in :mod:`.http` reads the request, asks :func:`route`, and acts
on the answer: an error, a CORS preflight, a new session (after the limits
say yes), or a request for an existing session, which :func:`route_session`
splits once the session is looked up. Every rule of the Engine.IO request
layout (which transport, which protocol version, which method where) is here,
tested with plain values (tests/engineio/test_routing.py); none is in the code
that does the I/O.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import dataclass

from .errors import ErrorCode
from .protocol import POLLING, WEBSOCKET

__all__ = (
    "JSONP_REFUSED",
    "OpenSession",
    "Poll",
    "Post",
    "Preflight",
    "Refuse",
    "Route",
    "SessionRoute",
    "Upgrade",
    "UseSession",
    "is_engineio_path",
    "route",
    "route_session",
)


#: Engine.IO v3's JSONP polling (``j=``, for browsers without XHR) is not served.
JSONP_REFUSED = "JSONP polling is not supported; use XHR polling or WebSocket (the default transports)"


@dataclass(frozen=True, slots=True)
class Refuse:
    """Answer with the reference servers' error ``code`` (HTTP 400); ``close``
    the connection after it (a WebSocket request cannot be kept alive);
    ``message`` instead of the code's own where we can say more."""

    code: ErrorCode
    close: bool = False
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Preflight:
    """A CORS preflight (``OPTIONS``): 204 with the allowed methods and headers."""


@dataclass(frozen=True, slots=True)
class OpenSession:
    """A handshake: open a session on ``transport`` if the limits allow it."""

    transport: str


@dataclass(frozen=True, slots=True)
class UseSession:
    """A request for the session ``sid`` over ``transport``: look it up, then :func:`route_session`."""

    sid: str
    transport: str


Route = Refuse | Preflight | OpenSession | UseSession


@dataclass(frozen=True, slots=True)
class Upgrade:
    """A WebSocket for an existing (polling) session: the probe."""


@dataclass(frozen=True, slots=True)
class Poll:
    """A long-polling GET: answer with what the session has queued, or wait."""


@dataclass(frozen=True, slots=True)
class Post:
    """A long-polling POST: the packets of its body go to the session."""


SessionRoute = Refuse | Upgrade | Poll | Post


def is_engineio_path(path: str, engineio_path: str) -> bool:
    """Whether ``path`` (percent-decoded) is the endpoint's, with or without its trailing slash."""
    return path == engineio_path or path.rstrip("/") + "/" == engineio_path


def route(
    method: str, query: Mapping[str, str], *, is_upgrade: bool, protocols: Container[str] = ("4",)
) -> Route:
    """The decision for a request to the Engine.IO path whose origin was allowed.

    ``method`` is upper case; ``query`` has the first value of each parameter;
    ``is_upgrade``: the request asks for a WebSocket (``Upgrade: websocket``);
    ``protocols``: the ``EIO`` versions served.
    """
    if method == "OPTIONS":
        return Preflight()
    transport = query.get("transport")
    if transport not in (POLLING, WEBSOCKET):
        return Refuse(ErrorCode.UNKNOWN_TRANSPORT, close=is_upgrade)
    if query.get("EIO") not in protocols:
        return Refuse(ErrorCode.UNSUPPORTED_PROTOCOL_VERSION, close=is_upgrade)
    if (transport == WEBSOCKET) != is_upgrade:
        return Refuse(ErrorCode.BAD_REQUEST, close=is_upgrade)
    sid = query.get("sid")
    if sid is None and method != "GET":
        return Refuse(ErrorCode.BAD_HANDSHAKE_METHOD)
    if "j" in query:
        return Refuse(ErrorCode.BAD_REQUEST, close=is_upgrade, message=JSONP_REFUSED)
    return OpenSession(transport) if sid is None else UseSession(sid, transport)


def route_session(
    method: str,
    transport: str,
    session_transport: str | None,
    *,
    protocol: str | None = None,
    session_protocol: str | None = None,
) -> SessionRoute:
    """The decision for a :class:`UseSession` request, once the session was
    looked up (``session_transport`` None: no such session). ``protocol`` is
    the request's ``EIO``; a session keeps the one it opened with."""
    is_upgrade = transport == WEBSOCKET
    if session_transport is None:
        return Refuse(ErrorCode.UNKNOWN_SID, close=is_upgrade)
    if protocol != session_protocol:
        return Refuse(ErrorCode.BAD_REQUEST, close=is_upgrade)
    if is_upgrade:
        return Upgrade()
    if session_transport != POLLING:  # upgraded already: polling is over for it
        return Refuse(ErrorCode.BAD_REQUEST)
    if method == "GET":
        return Poll()
    if method == "POST":
        return Post()
    return Refuse(ErrorCode.BAD_REQUEST)
