"""Hostile HTTP requests to the Engine.IO endpoint and beside it, on raw TCP.

Long-polling clients reach the server through plain HTTP, so the request line,
the query string and the headers are all client input: hypothesis draws
targets (percent-escapes, bytes above 0x7f, repeated and empty parameters,
sids that exist or not), methods and headers, and mutates well-formed
Engine.IO requests. The server must answer with a status (or close a request
it cannot parse), log no ERROR or traceback, and leave the bystanders alone.
"""

from __future__ import annotations

import logging

import pytest
import trio
from hypothesis import example, given
from hypothesis import strategies as st
from robustness.test_fuzz_wire import assert_no_errors_logged, bystanders, check_bystanders, open_roomserver
from support.soak import open_lean_client

query_parts = st.sampled_from(
    ["EIO=4", "EIO=3", "EIO=", "EIO=4%00", "transport=polling", "transport=websocket", "transport=%ff",
     "sid=", "sid=SID", "sid=SID&sid=other", "t=abc", "j=0", "b64=1", "%", "%zz", "=", "&&", "EIO=4\x7f"]
)
targets = st.one_of(
    st.lists(query_parts, max_size=5).map(lambda parts: "/socket.io/?" + "&".join(parts)),
    st.sampled_from(["/socket.io", "/socket.io/x", "//socket.io/", "/socket.io/%2e%2e/", "*", "/healthz?x=%ff", "/"]),
    st.binary(min_size=1, max_size=40).map(lambda raw: "/socket.io/?" + raw.decode("latin-1")),
)
headers = st.lists(
    st.tuples(
        st.sampled_from(["Origin", "Upgrade", "Connection", "Content-Type", "Cookie", "X-Forwarded-For", "Sec-WebSocket-Key"]),
        st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=20),
    ),
    max_size=3,
)


def request_bytes(method: str, target: str, header_list: list[tuple[str, str]], body: bytes, port: int) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in header_list]
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body


async def send_raw(port: int, raw: bytes) -> bytes:
    """Send one request, read until the server closes (we asked it to)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    received = b""
    try:
        await stream.send_all(raw)
        with trio.fail_after(10):
            try:
                while chunk := await stream.receive_some(65536):
                    received += chunk
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
    finally:
        await stream.aclose()
    return received


@given(
    method=st.sampled_from(["GET", "POST", "PUT", "OPTIONS", "HEAD", "DELETE", "BREW"]),
    target=targets,
    header_list=headers,
    body=st.sampled_from([b"", b"40", b"4\xff", b"1", b"\x1e\x1e", b"6\x1e6"]),
    use_sid=st.booleans(),
)
@example(method="GET", target="/socket.io/?EIO=4&transport=polling&sid=SID&sid=other", header_list=[], body=b"", use_sid=True)
@example(method="POST", target="/socket.io/?EIO=4&transport=polling&sid=SID", header_list=[], body=b"4\xff", use_sid=True)
@example(method="GET", target="/socket.io/?EIO=4&transport=websocket&sid=SID", header_list=[("Upgrade", "websocket")], body=b"", use_sid=True)
@example(method="GET", target="/socket.io/?EIO=4&transport=polling", header_list=[("Origin", "http://\xff")], body=b"", use_sid=False)
async def test_hostile_http_requests_get_an_answer_and_hurt_nobody(
    caplog: pytest.LogCaptureFixture, method: str, target: str, header_list: list[tuple[str, str]], body: bytes, use_sid: bool
) -> None:
    caplog.clear()
    caplog.set_level(logging.INFO)
    async with open_roomserver() as server, bystanders(server) as by, open_lean_client(
        server.port, transport="polling", name="attacker"
    ) as attacker:
        lists_before = by.quiet_lists()
        if use_sid:  # the attacker's own live session (a sid is all it takes to speak for one)
            target = target.replace("sid=SID", f"sid={attacker.sid}")
        answer = await send_raw(server.port, request_bytes(method, target, header_list, body, server.port))
        if answer:
            status = int(answer.split(b" ", 2)[1])
            assert 100 <= status < 600 and status != 500, answer[:300]
        await check_bystanders(server, by, lists_before)
    assert_no_errors_logged(caplog)
