"""``--log-format json``: the real ``roomserver`` process, its stderr read line by line.

Every line must be one JSON object; the lines about a connection, a user or a
room carry their ids; and no line ever holds a token or an answer, although
the script sends both (a deck's answers, a ``token`` in ``join_lobby``, an
``answer`` command) at debug level, where the server says the most.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from functools import partial

import trio
from support.pyclient import open_python_clients
from support.processlog import StderrLog

from roomactors.cli import client_js_notice
from roomactors.config import RoomServerConfig
from roomactors.logformat import JsonLogFormatter

SECRET_ANSWER = "SECRET-ANSWER-31415"
SECRET_TOKEN = "SECRET-TOKEN-27182"
DECK = {"name": "Week 3", "flashcards": [{"id": 1, "problem": "1/2+1/4", "answer": SECRET_ANSWER}]}
URL = re.compile(r"clients connect to (http://127\.0\.0\.1:\d+)")


async def test_json_lines_with_ids_and_no_secrets() -> None:
    command = [
        sys.executable, "-m", "roomactors.cli", "--port", "0", "--shutdown-timeout", "5",
        "--log-format", "json", "--log-level", "debug",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOMSERVER_")}
    env["PYTHONUNBUFFERED"] = "1"
    log = StderrLog()
    async with trio.open_nursery() as nursery:
        process: trio.Process = await nursery.start(
            partial(trio.run_process, command, stderr=subprocess.PIPE, check=False, env=env)
        )
        assert process.stderr is not None
        nursery.start_soon(log.drain, process.stderr)
        try:
            with trio.fail_after(30):
                url = (await log.wait_for(URL)).group(1)
            async with open_python_clients() as clients:
                host = clients.connect(url, "/lobby", reconnection=False)
                player = clients.connect(url, "/", reconnection=False)
                await host.wait_connected()
                await player.wait_connected()
                (joined,) = await host.call("join_lobby", {"id": 1, "username": "mia", "token": SECRET_TOKEN})
                issued = joined.get("token")  # the seat's token (race.md, "Identity")
                (created,) = await host.call("create_room", {"name": "Fractions", "deck": DECK})
                room_id = created["room"]["id"]
                await player.call("join_lobby", {"id": 2, "username": "sam"})
                await player.call("join_room", {"id": room_id})
                # An answer, whether or not the race is there to take it.
                player.emit("answer", {"id": room_id, "race_id": 1, "card": 0, "answer": SECRET_ANSWER})
                await host.call("leave_room", {"id": room_id})  # closes the room
                with trio.fail_after(10):
                    await log.wait_for(re.compile(r"room \d+ closed"))
        finally:
            process.send_signal(2)
            with trio.fail_after(15):
                await process.wait()

    objects = [json.loads(line) for line in log.lines if line]  # every line is JSON
    assert all({"time", "level", "logger", "message"} <= set(obj) for obj in objects)
    text = "\n".join(log.lines)
    assert SECRET_ANSWER not in text and SECRET_TOKEN not in text
    assert issued is None or issued not in text
    assert any("connection_id" in obj for obj in objects)
    created_line = next(obj for obj in objects if "created by user" in obj["message"])
    assert created_line["room_id"] == room_id and created_line["user_id"] == 1
    closed_line = next(obj for obj in objects if re.search(r"room \d+ closed", obj["message"]))
    assert closed_line["room_id"] == room_id
    assert any("socket.io-client" in obj["message"] for obj in objects)  # where the page gets its client


def test_formatter_masks_secrets_a_message_would_leak() -> None:
    formatter = JsonLogFormatter()
    record = logging.LogRecord(
        "roomactors.test", logging.INFO, __file__, 1, "payload %s token=%s", ({"answer": "3/4"}, "abc"), None
    )
    record.user_id = 7
    record.token = "never"  # a field named like a secret is not written
    line = json.loads(formatter.format(record))
    assert "3/4" not in line["message"] and "abc" not in line["message"]
    assert line["user_id"] == 7 and "token" not in line
    assert line["level"] == "info" and line["logger"] == "roomactors.test"


def test_startup_notice_says_how_to_serve_the_client_locally(tmp_path: object) -> None:
    default = client_js_notice(RoomServerConfig())
    assert "https://cdn.socket.io/" in default and "--client-js-path" in default
    local = client_js_notice(RoomServerConfig(client_js_path="/srv/socket.io.min.js"))
    assert "/srv/socket.io.min.js" in local and "without internet" in local
