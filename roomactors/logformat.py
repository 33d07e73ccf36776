"""``--log-format json``: one JSON object a line, for log collectors.

Each line holds ``time`` (UTC, ISO 8601 with milliseconds), ``level``,
``logger`` and ``message``, then whichever of ``connection_id`` (the
Engine.IO session), ``client_id`` (a socket in one namespace), ``user_id`` and
``room_id`` the log call knew (passed as ``extra={...}``), and ``exception``
with the traceback when there is one.

Never a token, never an answer: the library does not log payloads, and as a
second line of defence a field named like a secret is dropped and a
``token``/``answer`` written as ``name: value`` or ``name=value`` inside a
message is masked. The CLI installs this formatter; the library only logs.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timezone
from typing import Any

__all__ = ("CONTEXT_FIELDS", "JsonLogFormatter")

#: The ``extra`` fields a line carries when the log call gave them.
CONTEXT_FIELDS: tuple[str, ...] = ("connection_id", "client_id", "user_id", "room_id", "remote_address")

#: Field names never written, whatever a log call passes.
_SECRET_FIELDS = frozenset({"token", "credential", "answer", "answers", "given", "password", "auth"})

#: ``token: 'x'``, ``"answer": "x"``, ``token=x`` inside a message.
_SECRET_IN_TEXT = re.compile(
    r"""(?P<name>['"]?\b(?:token|credential|answer|given)['"]?\s*[:=]\s*)(?P<value>'[^']*'|"[^"]*"|[^\s,;)}\]]+)""",
    re.IGNORECASE,
)


def _mask(text: str) -> str:
    return _SECRET_IN_TEXT.sub(lambda m: m.group("name") + '"<redacted>"', text)


def _plain(value: Any) -> Any:
    """A JSON-ready form of an id (ints and strings stay as they are)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


class JsonLogFormatter(logging.Formatter):
    """Formats a record as one line of JSON (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": _mask(record.getMessage()),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None and name not in _SECRET_FIELDS:
                line[name] = _plain(value)
        if record.exc_info:
            line["exception"] = _mask(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exception"] = _mask(record.exc_text)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        # ensure_ascii: a line is ASCII whatever a user typed (no broken encodings in collectors).
        return json.dumps(line, ensure_ascii=True)
