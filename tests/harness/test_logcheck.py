"""support.logcheck: server errors count, the client libraries' own complaints do not."""

from __future__ import annotations

import logging
import sys

from support.logcheck import server_errors


def record(name: str, level: int, message: str, *, traceback: bool = False) -> logging.LogRecord:
    exc_info = None
    if traceback:
        try:
            raise ValueError("boom")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord(name, level, __file__, 1, message, None, exc_info)


def test_server_errors_and_tracebacks_count_client_library_noise_does_not() -> None:
    records = [
        record("roomactors.actors.lobby", logging.ERROR, "lobby broke"),
        record("roomactors.engineio.http", logging.WARNING, "with a traceback", traceback=True),
        record("roomactors.engineio.http", logging.WARNING, "a plain warning"),
        record("trio", logging.ERROR, "trio complained"),
        record("engineio.client", logging.ERROR, "packet queue is empty, aborting"),
        record("socketio.client", logging.ERROR, "client side"),
    ]
    assert server_errors(records) == [
        ("roomactors.actors.lobby", "ERROR", "lobby broke"),
        ("roomactors.engineio.http", "WARNING", "with a traceback"),
        ("trio", "ERROR", "trio complained"),
    ]
