"""A WebSocket ping flood from a client that never reads (issue 10, finding 1).

The attacker opens a WebSocket with a 4 KiB receive buffer, never reads, and
sends WebSocket pings with the largest payload a control frame may carry, plus
an Engine.IO pong now and then (what a script does to survive the heartbeat).
The server owed one pong per ping and kept appending them to an unbounded
buffer (quadratic copying, the whole event loop lagging, fresh clients timing
out). What must hold now, through real sockets on 127.0.0.1:

* a fresh client from the same address joins the lobby and receives its
  ``updaterooms`` within 2 s, while the attack runs;
* the attacker, whose pongs pile up unwritten, is closed by the server long
  before it has sent all its pings; the server logs no error.
"""

from __future__ import annotations

import logging

import pytest
import trio
from robustness.rawclients import RawWebSocket
from robustness.serving import running_server
from robustness.test_fuzz_wire import assert_no_errors_logged
from support.waiting import wait_until
from wsproto.events import Pong

from roomactors.config import RoomServerConfig
from roomactors.engineio.wsconnection import MAX_UNANSWERED_PINGS

PINGS = 200_000  # the most the attacker sends (26 MB); the server closes it long before
BATCH = 500  # pings per write; an Engine.IO pong after each batch


def masked_frame(first: int, payload: bytes) -> bytes:
    mask = b"\x5a\x17\xc3\x08"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes((first, 0x80 | len(payload))) + mask + masked


async def test_a_ping_flood_without_reading_is_cut_off_and_others_still_join(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    batch = masked_frame(0x89, b"p" * 125) * BATCH + masked_frame(0x81, b"3")
    async with running_server(RoomServerConfig(port=0, shutdown_timeout=1)) as running:
        attacker = await RawWebSocket.open(running.port, rcvbuf=4096)
        await attacker.connect_namespace("/lobby")
        sent = 0
        cut_off = trio.Event()
        biting = trio.Event()

        async def flood() -> None:
            nonlocal sent
            try:
                while sent < PINGS:
                    await attacker.stream.send_all(batch)
                    sent += BATCH
                    if sent >= 20 * BATCH:
                        biting.set()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                cut_off.set()  # the server closed the connection
            biting.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(flood)
            with trio.move_on_after(10):  # a bound, not a pause: the flood is well under way or over
                await biting.wait()
            fresh = await RawWebSocket.open(running.port)
            with trio.fail_after(2):
                await fresh.connect_namespace("/lobby")
                await fresh.emit("join_lobby", {"id": 7}, ack=1)
                seen = set()
                while seen != {"ack", "list"}:  # the list may come before the ack or after it
                    message = await fresh.receive()
                    if isinstance(message, str) and message.startswith('42/lobby,["updaterooms",[]'):
                        seen.add("list")
                    elif isinstance(message, str) and message.startswith("43/lobby,1["):
                        assert '"ok":true' in message.replace(" ", ""), message
                        seen.add("ack")
            with trio.fail_after(20):
                await cut_off.wait()
        assert MAX_UNANSWERED_PINGS < sent < PINGS
        await wait_until(lambda: running.statistics().connections == 1, timeout=5, state=running.statistics)  # the fresh client's alone
        await fresh.aclose()
        await attacker.aclose()
    assert "too many pings while not reading" in caplog.text
    assert_no_errors_logged(caplog)


async def test_a_client_that_reads_may_ping_as_often_as_it_likes() -> None:
    """The bound is on pongs left unwritten, not on pings: a client that reads
    gets a pong for its latest ping (at least) and stays connected."""
    async with running_server(RoomServerConfig(port=0, shutdown_timeout=1)) as running:
        client = await RawWebSocket.open(running.port)
        await client.connect_namespace("/lobby")
        pings = 20 * MAX_UNANSWERED_PINGS
        await client.stream.send_all(b"".join(masked_frame(0x89, f"{n:08}".encode()) for n in range(pings)))
        pongs: list[bytes] = []
        with trio.fail_after(10):
            while f"{pings - 1:08}".encode() not in pongs:
                await client._read_more()
                pongs += [bytes(event.payload) for event in client._pump_events() if isinstance(event, Pong)]
        assert pongs == sorted(pongs)  # in order, the latest among them
        with trio.fail_after(5):
            assert (await client.call("join_lobby", {"id": 8}))["ok"] is True
        await client.aclose()
