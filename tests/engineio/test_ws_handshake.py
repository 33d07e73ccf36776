"""The WebSocket opening handshake, decided once from the request h11 parsed
(sans-IO): golden bytes from RFC 6455 §1.3, and every refusal with its status."""

from __future__ import annotations

import pytest

from roomactors.engineio.wshandshake import check_websocket_handshake

GOOD = {
    "host": "server.example.com",
    "upgrade": "websocket",
    "connection": "Upgrade",
    "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
    "sec-websocket-version": "13",
}


def test_accepts_the_rfc_example_with_its_accept_key() -> None:
    handshake = check_websocket_handshake("GET", "1.1", GOOD)
    assert handshake.accepted
    assert handshake.response == (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"  # RFC 6455 §1.3
    )


def test_header_tokens_are_case_insensitive_lists() -> None:
    headers = {**GOOD, "upgrade": "WebSocket", "connection": "keep-alive, Upgrade"}
    assert check_websocket_handshake("GET", "1.1", headers).accepted


@pytest.mark.parametrize(
    ("method", "version", "changes", "status"),
    [
        ("POST", "1.1", {}, 400),
        ("GET", "1.0", {}, 400),
        ("GET", "1.1", {"connection": "keep-alive"}, 400),
        ("GET", "1.1", {"upgrade": "h2c"}, 400),
        ("GET", "1.1", {"sec-websocket-key": ""}, 400),
        ("GET", "1.1", {"sec-websocket-key": "c2hvcnQ="}, 400),  # 5 bytes, not 16
        ("GET", "1.1", {"sec-websocket-key": "not base64 at all!!!!!!!"}, 400),
        ("GET", "1.1", {"sec-websocket-version": "8"}, 426),
        ("GET", "1.1", {"sec-websocket-version": ""}, 426),
    ],
)
def test_refusals(method: str, version: str, changes: dict[str, str], status: int) -> None:
    handshake = check_websocket_handshake(method, version, {**GOOD, **changes})
    assert not handshake.accepted
    assert handshake.status == status
    assert handshake.reason  # says what to change
    assert handshake.response == b""
    if status == 426:
        assert handshake.headers == (("Sec-WebSocket-Version", "13"),)
