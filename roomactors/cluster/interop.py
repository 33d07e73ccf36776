"""python-socketio's Redis messages, understood (sans-IO: bytes in, typed messages out).

python-socketio's ``RedisManager``/``AsyncRedisManager`` publish one JSON object per
operation on their channel (``socketio`` by default; JSON since python-socketio
5.14, pickle before). An ordinary Python program can therefore reach our clients
with ``socketio.RedisManager(url, write_only=True).emit(...)``. The fields, as in
``socketio/pubsub_manager.py``:

- ``emit``: ``event``, ``data`` (the list of arguments), ``binary`` (attachments
  base64-encoded after the first element), ``namespace``, ``room`` (None for
  everyone, a sid, or a room name), ``skip_sid``, ``callback``, ``host_id``;
- ``disconnect``: ``sid``, ``namespace``;
- ``enter_room``/``leave_room``: ``sid``, ``namespace``, ``room``;
- ``close_room``: ``room``, ``namespace``;
- ``callback``: an ack travelling back to the emitting host (ignored here: we
  never emit with a callback).

This module only decodes; :mod:`roomactors.cluster.node` applies the messages.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from socketio.packet import Packet

__all__ = ("CloseRoom", "Disconnect", "Emit", "EnterRoom", "LeaveRoom", "PubSubMessage", "decode_message")


@dataclass(frozen=True)
class Emit:
    event: str
    args: tuple[Any, ...]
    namespace: str
    room: str | None
    skip_sids: frozenset[str]
    wants_callback: bool


@dataclass(frozen=True)
class Disconnect:
    sid: str
    namespace: str


@dataclass(frozen=True)
class EnterRoom:
    sid: str
    namespace: str
    room: str


@dataclass(frozen=True)
class LeaveRoom:
    sid: str
    namespace: str
    room: str


@dataclass(frozen=True)
class CloseRoom:
    namespace: str
    room: str


PubSubMessage = Emit | Disconnect | EnterRoom | LeaveRoom | CloseRoom


class MessageError(ValueError):
    """A message on the channel that is not python-socketio's (it is skipped)."""


def _namespace(message: dict[str, Any]) -> str:
    namespace = message.get("namespace") or "/"
    if not isinstance(namespace, str):
        raise MessageError(f"namespace must be a string, got {namespace!r}")
    return namespace


def _text(message: dict[str, Any], field: str) -> str:
    value = message.get(field)
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise MessageError(f"{field} must be a string, got {value!r}")
    return str(value)


def _args(message: dict[str, Any]) -> tuple[Any, ...]:
    data = message.get("data")
    if message.get("binary"):
        if not isinstance(data, list) or not data:
            raise MessageError("a binary emit's data must be a list")
        try:
            attachments = [base64.b64decode(a) for a in data[1:]]
        except (TypeError, ValueError) as exc:
            raise MessageError(f"bad binary attachment: {exc}") from None
        data = Packet.reconstruct_binary(data[0], attachments)
    if isinstance(data, list):
        return tuple(data)
    return (data,)  # pragma: no cover - python-socketio always sends a list


def decode_message(raw: bytes | str, own_host_id: str | None = None) -> PubSubMessage | None:
    """The operation ``raw`` asks for; None for what needs no action here (a callback,
    our own message). Raises :class:`MessageError` for anything else."""
    try:
        message = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise MessageError("not JSON (python-socketio before 5.14 sent pickle; upgrade it)") from None
    if not isinstance(message, dict) or not isinstance(message.get("method"), str):
        raise MessageError("not an object with a 'method'")
    if own_host_id is not None and message.get("host_id") == own_host_id:
        return None
    method = message["method"]
    if method == "emit":
        skip = message.get("skip_sid")
        if skip is None:
            skip_sids: frozenset[str] = frozenset()
        elif isinstance(skip, str):
            skip_sids = frozenset((skip,))
        elif isinstance(skip, list) and all(isinstance(s, str) for s in skip):
            skip_sids = frozenset(skip)
        else:
            raise MessageError(f"skip_sid must be a sid or a list of them, got {skip!r}")
        room = message.get("room")
        if room is not None:
            room = _text(message, "room")
        return Emit(
            event=_text(message, "event"),
            args=_args(message),
            namespace=_namespace(message),
            room=room,
            skip_sids=skip_sids,
            wants_callback=message.get("callback") is not None,
        )
    if method == "disconnect":
        return Disconnect(_text(message, "sid"), _namespace(message))
    if method == "enter_room":
        return EnterRoom(_text(message, "sid"), _namespace(message), _text(message, "room"))
    if method == "leave_room":
        return LeaveRoom(_text(message, "sid"), _namespace(message), _text(message, "room"))
    if method == "close_room":
        return CloseRoom(_namespace(message), _text(message, "room"))
    if method == "callback":
        return None
    raise MessageError(f"unknown method {method!r}")
