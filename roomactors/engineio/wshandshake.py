"""The WebSocket opening handshake (RFC 6455 §4.2), decided once, sans-IO.

The HTTP layer has already parsed the upgrade request with h11; this module
looks at that request (method, HTTP version, headers) and says accept or
refuse in one place, as hypercorn's ``Handshake`` does: no second parser and
no rebuilt request bytes. Accepting gives the exact ``101 Switching
Protocols`` bytes to write; refusing gives the status and headers to answer
with (400, or 426 with ``Sec-WebSocket-Version: 13`` for a version we do not
speak, as RFC 6455 §4.4 asks).

No subprotocol and no extension is ever accepted: frames go out exactly as
:mod:`.wsframes` makes them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["WEBSOCKET_VERSION", "WebSocketHandshake", "check_websocket_handshake"]

#: The only version of the protocol spoken (RFC 6455).
WEBSOCKET_VERSION = "13"
_ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@dataclass(frozen=True, slots=True)
class WebSocketHandshake:
    """The verdict on one upgrade request.

    ``status`` is 101 when accepted (``response`` is then the whole response
    to write), else the HTTP status to refuse with, ``headers`` to add to that
    refusal and ``reason`` saying what the client must change.
    """

    status: int
    reason: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    response: bytes = b""

    @property
    def accepted(self) -> bool:
        return self.status == 101


def check_websocket_handshake(method: str, http_version: str, headers: Mapping[str, str]) -> WebSocketHandshake:
    """Accept or refuse a WebSocket upgrade request.

    ``headers`` maps lower-case names to values (repeated fields joined with
    ", ", as the HTTP layer keeps them).
    """
    connection = {token.strip().lower() for token in headers.get("connection", "").split(",")}
    if method != "GET":
        return _refuse(400, "a WebSocket handshake is a GET request")
    if http_version in ("1.0", "0.9"):
        return _refuse(400, "a WebSocket handshake needs HTTP/1.1")
    if headers.get("upgrade", "").strip().lower() != "websocket" or "upgrade" not in connection:
        return _refuse(400, "send 'Upgrade: websocket' and 'Connection: Upgrade'")
    key = headers.get("sec-websocket-key", "").strip()
    if not _valid_key(key):
        return _refuse(400, "Sec-WebSocket-Key must be 16 random bytes in base64")
    if headers.get("sec-websocket-version", "").strip() != WEBSOCKET_VERSION:
        return _refuse(426, f"use WebSocket version {WEBSOCKET_VERSION} (Sec-WebSocket-Version: 13)",
                       (("Sec-WebSocket-Version", WEBSOCKET_VERSION),))
    accept = base64.b64encode(hashlib.sha1(key.encode("ascii") + _ACCEPT_GUID).digest())
    response = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )
    return WebSocketHandshake(101, response=response)


def _valid_key(key: str) -> bool:
    """RFC 6455 §4.2.1: the key is a base64-encoded 16-byte value."""
    if len(key) != 24:
        return False
    try:
        return len(base64.b64decode(key.encode("ascii"), validate=True)) == 16
    except (binascii.Error, UnicodeEncodeError):
        return False


def _refuse(status: int, reason: str, headers: tuple[tuple[str, str], ...] = ()) -> WebSocketHandshake:
    return WebSocketHandshake(status, reason, headers)
