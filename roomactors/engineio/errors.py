"""The reference server's HTTP error answers, and the exception the
application sees when its session ends.

Clients (socket.io-client, python-engineio) only look at the status and the
JSON ``code``, but matching the reference JS server byte for byte keeps
debugging tools and existing client error handling meaningful. The reference
(engine.io ``server.ts``, ``abortRequest``) answers 403 for code 4 "Forbidden"
and 400 for every other code; we do the same.
"""

from __future__ import annotations

import enum
import json

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
        return 403 if self is ErrorCode.FORBIDDEN else 400


_MESSAGES = {
    ErrorCode.UNKNOWN_TRANSPORT: "Transport unknown",
    ErrorCode.UNKNOWN_SID: "Session ID unknown",
    ErrorCode.BAD_HANDSHAKE_METHOD: "Bad handshake method",
    ErrorCode.BAD_REQUEST: "Bad request",
    ErrorCode.FORBIDDEN: "Forbidden",
    ErrorCode.UNSUPPORTED_PROTOCOL_VERSION: "Unsupported protocol version",
}


def error_response(code: ErrorCode) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body the reference server sends for ``code``:
    ``{"code":N,"message":"..."}`` as compact JSON (like ``JSON.stringify``)."""
    body = json.dumps({"code": int(code), "message": code.message}, separators=(",", ":")).encode()
    return code.status, [("Content-Type", "application/json")], body
