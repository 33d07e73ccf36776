"""The Engine.IO endpoint's routing decision, sans-IO: plain values in, a
decision out (the HTTP tests check that the trio code acts on each)."""

from __future__ import annotations

import pytest

from roomactors.engineio.errors import ErrorCode
from roomactors.engineio.routing import (
    JSONP_REFUSED,
    OpenSession,
    Poll,
    Post,
    Preflight,
    Refuse,
    Upgrade,
    UseSession,
    is_engineio_path,
    route,
    route_session,
)


def query(text: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in text.split("&") if part)


@pytest.mark.parametrize(
    ("method", "q", "upgrade", "expected"),
    [
        ("GET", "EIO=4&transport=polling", False, OpenSession("polling")),
        ("GET", "EIO=4&transport=websocket", True, OpenSession("websocket")),
        ("GET", "EIO=4&transport=polling&sid=abc", False, UseSession("abc", "polling")),
        ("POST", "EIO=4&transport=polling&sid=abc", False, UseSession("abc", "polling")),
        ("GET", "EIO=4&transport=websocket&sid=abc", True, UseSession("abc", "websocket")),
        ("OPTIONS", "", False, Preflight()),
        ("GET", "EIO=4", False, Refuse(ErrorCode.UNKNOWN_TRANSPORT)),
        ("GET", "EIO=4&transport=carrier-pigeon", True, Refuse(ErrorCode.UNKNOWN_TRANSPORT, close=True)),
        ("GET", "EIO=3&transport=polling", False, Refuse(ErrorCode.UNSUPPORTED_PROTOCOL_VERSION)),
        ("GET", "transport=polling", False, Refuse(ErrorCode.UNSUPPORTED_PROTOCOL_VERSION)),
        ("GET", "EIO=4&transport=websocket", False, Refuse(ErrorCode.BAD_REQUEST)),
        ("GET", "EIO=4&transport=polling", True, Refuse(ErrorCode.BAD_REQUEST, close=True)),
        ("POST", "EIO=4&transport=polling", False, Refuse(ErrorCode.BAD_HANDSHAKE_METHOD)),
        ("PUT", "EIO=4&transport=polling", False, Refuse(ErrorCode.BAD_HANDSHAKE_METHOD)),
        ("GET", "EIO=4&transport=polling&j=0", False, Refuse(ErrorCode.BAD_REQUEST, message=JSONP_REFUSED)),
        ("POST", "EIO=4&transport=polling&sid=abc&j=0", False, Refuse(ErrorCode.BAD_REQUEST, message=JSONP_REFUSED)),
    ],
)
def test_route(method: str, q: str, upgrade: bool, expected: object) -> None:
    assert route(method, query(q), is_upgrade=upgrade) == expected


def test_route_serves_the_protocols_it_is_given() -> None:
    assert route("GET", query("EIO=3&transport=polling"), is_upgrade=False, protocols=("3", "4")) == OpenSession(
        "polling"
    )


@pytest.mark.parametrize(
    ("method", "transport", "session", "expected"),
    [
        ("GET", "polling", None, Refuse(ErrorCode.UNKNOWN_SID)),
        ("GET", "websocket", None, Refuse(ErrorCode.UNKNOWN_SID, close=True)),
        ("GET", "websocket", "polling", Upgrade()),
        ("GET", "polling", "polling", Poll()),
        ("POST", "polling", "polling", Post()),
        ("PUT", "polling", "polling", Refuse(ErrorCode.BAD_REQUEST)),
        ("GET", "polling", "websocket", Refuse(ErrorCode.BAD_REQUEST)),
    ],
)
def test_route_session(method: str, transport: str, session: str | None, expected: object) -> None:
    assert route_session(method, transport, session, protocol="4", session_protocol="4") == expected


def test_a_session_keeps_the_protocol_it_opened_with() -> None:
    assert route_session("GET", "polling", "polling", protocol="3", session_protocol="4") == Refuse(
        ErrorCode.BAD_REQUEST
    )
    assert route_session("GET", "websocket", "polling", protocol="4", session_protocol="3") == Refuse(
        ErrorCode.BAD_REQUEST, close=True
    )


def test_is_engineio_path() -> None:
    assert is_engineio_path("/socket.io/", "/socket.io/") and is_engineio_path("/socket.io", "/socket.io/")
    assert not is_engineio_path("/socket.io/x", "/socket.io/") and not is_engineio_path("/", "/socket.io/")
