"""The reference server's HTTP error answers, and the exception the
application sees when its session ends.

Clients (socket.io-client, python-engineio) only look at the status and the
JSON ``code``. Every code is answered with HTTP 400, as the room protocol's
contract (shared/protocol.md) says. The two reference servers differ on code 4:
Node's engine.io answers a refused origin with 403, python-engineio with 400;
we follow the contract.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass

__all__ = ["EngineClosed", "ErrorCode", "error_response"]


class EngineClosed(Exception):
    """The Engine.IO session has ended; ``reason`` says why ("client close",
    "ping timeout", "transport close", "outbox overflow", ...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ErrorCode(enum.IntEnum):
    UNKNOWN_TRANSPORT = 0
    UNKNOWN_SID = 1
    BAD_HANDSHAKE_METHOD = 2
    BAD_REQUEST = 3
    FORBIDDEN = 4
    UNSUPPORTED_PROTOCOL_VERSION = 5

    @property
    def message(self) -> str:
        return _MESSAGES[self]

    @property
    def status(self) -> int:
        return 400


_MESSAGES = {
    ErrorCode.UNKNOWN_TRANSPORT: "Transport unknown",
    ErrorCode.UNKNOWN_SID: "Session ID unknown",
    ErrorCode.BAD_HANDSHAKE_METHOD: "Bad handshake method",
    ErrorCode.BAD_REQUEST: "Bad request",
    ErrorCode.FORBIDDEN: "Forbidden",
    ErrorCode.UNSUPPORTED_PROTOCOL_VERSION: "Unsupported protocol version",
}


def error_response(code: ErrorCode, message: str | None = None) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body the reference server sends for ``code``:
    ``{"code":N,"message":"..."}`` as compact JSON (like ``JSON.stringify``);
    ``message`` replaces the code's own where we can say more."""
    body = json.dumps({"code": int(code), "message": message or code.message}, separators=(",", ":")).encode()
    return code.status, [("Content-Type", "application/json")], body


#: Seconds a refused client is asked to wait (``Retry-After``); socket.io-client
#: ignores the header and retries with its own backoff (1 s growing to 5 s).
RETRY_AFTER_SECONDS = 5


@dataclass(frozen=True)
class SessionRefused:
    """Why a new session is not opened: a server limit, not a protocol error.

    ``code`` is a word, not an Engine.IO error number, because the client did
    nothing wrong and must not treat it like one: HTTP 503 says "come back
    later", which every client does with its reconnection backoff.
    """

    code: str  #: "too_many_connections", "too_many_sessions_per_address", "shutting_down"
    message: str


def refusal_response(refusal: SessionRefused) -> tuple[int, list[tuple[str, str]], bytes]:
    """HTTP 503 with ``{"code": ..., "message": ...}`` and a ``Retry-After``."""
    body = json.dumps({"code": refusal.code, "message": refusal.message}, separators=(",", ":")).encode()
    return 503, [("Content-Type", "application/json"), ("Retry-After", str(RETRY_AFTER_SECONDS))], body
