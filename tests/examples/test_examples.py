"""The programs in examples/ run, and do what their docstrings say, with real clients."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio
from support.clients import open_clients

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@asynccontextmanager
async def running(script: str, *args: str) -> AsyncIterator[str]:
    """Start an example, yield the URL it prints, kill it at the end."""
    async with trio.open_nursery() as nursery:
        process: trio.Process = await nursery.start(
            lambda task_status: trio.run_process(
                [sys.executable, str(EXAMPLES / script), *args],
                stdout=subprocess.PIPE,
                check=False,
                task_status=task_status,
            )
        )
        assert process.stdout is not None
        output = b""
        with trio.fail_after(20):
            while (match := re.search(rb"http://127\.0\.0\.1:\d+", output)) is None:
                chunk = await process.stdout.receive_some()
                assert chunk, f"{script} exited without printing its URL: {output!r}"
                output += chunk
        try:
            yield match.group().decode()
        finally:
            process.kill()


async def test_embed_lobby_prints_the_whole_story() -> None:
    result = await trio.run_process([sys.executable, str(EXAMPLES / "embed_lobby.py")], capture_stdout=True)
    lines = result.stdout.decode().splitlines()
    assert lines[0] == "created: Tables id 1"
    assert "'ok': True" in lines[1] and "'players': [{'id': 2" in lines[1]
    assert "42" not in result.stdout.decode()  # the deck's answer never leaves the room
    assert lines[2] == "the student sees: [('Tables', ['sam'])]"
    assert lines[3] == "the student was told: {'id': 1, 'reason': 'host_left'}"


async def test_embed_server_serves_clients() -> None:
    async with running("embed_server.py") as url, open_clients("python") as clients:
        sock = clients.connect(url, "/lobby")
        await sock.wait_connected()
        (ack,) = await sock.call("join_lobby", {"id": 7, "username": "eve"})
        assert isinstance(ack.pop("token"), str)  # the seat's token
        assert ack == {"ok": True, "user": {"id": 7, "username": "eve", "auth_level": None}, "room": None}
        assert await sock.next_event("updaterooms") == [[]]


async def test_socketio_echo_answers_acks() -> None:
    async with running("socketio_echo.py", "--port", "0") as url, open_clients("python") as clients:
        sock = clients.connect(url, "/")
        await sock.wait_connected()
        (welcome,) = await sock.next_event("welcome")
        assert isinstance(welcome["sid"], str) and welcome["sid"]
        assert await sock.call("echo", "hi", {"n": 1}) == ["hi", {"n": 1}]


async def test_signed_identity_prints_links_whose_credentials_sign_in() -> None:
    async with trio.open_nursery() as nursery:
        process: trio.Process = await nursery.start(
            lambda task_status: trio.run_process(
                [sys.executable, str(EXAMPLES / "signed_identity.py")], stdout=subprocess.PIPE, check=False,
                task_status=task_status,
            )
        )
        assert process.stdout is not None
        output = b""
        try:
            with trio.fail_after(20):
                while output.count(b"#credential=") < 2:
                    chunk = await process.stdout.receive_some()
                    assert chunk, f"signed_identity.py exited early: {output!r}"
                    output += chunk
            lines = output.decode().splitlines()
            url = lines[0].removeprefix("room server at ")
            links = {line.split(" ", 1)[0]: line.rsplit("#credential=", 1)[1] for line in lines[1:3]}
            async with open_clients("python") as clients:
                teacher = clients.connect(url, "/lobby")
                student = clients.connect(url, "/")
                await teacher.wait_connected()
                await student.wait_connected()
                (ack,) = await teacher.call("join_lobby", {"credential": links["teacher"]})
                assert ack["user"] == {"id": "t-1", "username": "Ms Rivera", "auth_level": "teacher"}
                (ack,) = await student.call("join_lobby", {"credential": links["student"]})
                assert ack["user"]["auth_level"] == "student"
                deck = {"name": "d", "flashcards": [{"id": 1, "problem": "1+1", "answer": "2"}]}
                (ack,) = await student.call("create_room", {"name": "mine", "deck": deck})
                assert ack["error"]["code"] == "forbidden"  # teachers_only_create
                (ack,) = await teacher.call("create_room", {"name": "Class", "deck": deck})
                assert ack["ok"] is True
                (ack,) = await student.call("join_lobby", {"credential": links["student"][:-2] + "xx"})
                assert ack["error"]["code"] == "unauthenticated"
        finally:
            process.kill()
