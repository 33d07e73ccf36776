"""What the server logged that a test about hostile or vanishing clients must not see."""

from __future__ import annotations

import logging
from collections.abc import Iterable

#: Loggers of the client libraries the tests drive. Their complaints are about
#: the client side: python-engineio's writer thread, for one, can miss its wake-up
#: after a server close and log "packet queue is empty, aborting" pingInterval + 5 s
#: later, into whatever test runs then. The contract these tests check is the
#: server's: no error and no traceback for a client's behaviour.
CLIENT_LIBRARY_LOGGERS = ("engineio.client", "socketio.client")


def server_errors(records: Iterable[logging.LogRecord]) -> list[tuple[str, str, str]]:
    """(logger, level, message) of every error, and of every warning with a
    traceback, that does not come from a client library."""
    return [
        (r.name, r.levelname, r.getMessage()[:200])
        for r in records
        if (r.levelno >= logging.ERROR or (r.exc_info and r.levelno >= logging.WARNING))
        and not r.name.startswith(CLIENT_LIBRARY_LOGGERS)
    ]
