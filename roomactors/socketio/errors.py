"""The errors of the Socket.IO layer, split by blame like h11's.

``ProtocolViolation`` means the *client* broke the Socket.IO protocol; the only
answer the specification allows is to close that client's connection.
``ConnectionRefused`` is raised *by the application* in a connect handler to
answer CONNECT_ERROR instead of accepting. ``SocketDisconnected`` tells a
server-side caller that the socket it waits on went away.
"""

from __future__ import annotations

from typing import Any

__all__ = ("ProtocolViolation", "ConnectionRefused", "SocketDisconnected")


class ProtocolViolation(Exception):
    """The peer sent something the Socket.IO v5 protocol does not allow.

    The message says what was wrong, for the DEBUG log of the connection that
    gets closed because of it.
    """


class ConnectionRefused(Exception):
    """Raise in a ``connect`` handler to refuse the namespace connection.

    The client receives CONNECT_ERROR ``{"message": message}`` or, when
    ``data`` is given, ``{"message": message, "data": data}``; its Engine.IO
    connection and its other namespaces stay as they are.
    """

    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


class SocketDisconnected(Exception):
    """The socket disconnected while the server waited on it (``Socket.call``).

    A distinct type (not a builtin's name) so callers can tell "the client
    left" from "the client was too slow" (``trio.TooSlowError``).
    """
