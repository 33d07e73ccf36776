"""python-engineio's own (sync) client against our server, in a worker thread."""

from __future__ import annotations

import queue

import engineio
import pytest
import trio


@pytest.mark.parametrize(
    ("transports", "expected_transport"),
    [(None, "websocket"), (["websocket"], "websocket"), (["polling"], "polling")],
)
async def test_python_engineio_client_echo(start_server, transports, expected_transport) -> None:
    started = await start_server()
    events: queue.Queue[object] = queue.Queue()

    def run_client() -> tuple[str, list[object]]:
        client = engineio.Client()
        client.on("message", events.put)
        client.connect(f"http://127.0.0.1:{started.port}", transports=transports, engineio_path="socket.io")
        try:
            client.send("hello")
            client.send(b"\x01\x02\x03")
            received = [events.get(timeout=10) for _ in range(2)]
            # python-engineio upgrades inside connect() (probe, then "5"), so the
            # transport is final by now: nothing to wait for.
            return client.transport(), received
        finally:
            client.disconnect()

    with trio.fail_after(30):
        transport, received = await trio.to_thread.run_sync(run_client)
    assert received == ["hello", b"\x01\x02\x03"]
    assert transport == expected_transport
    await started.settled(sessions=0)  # the client's close reached the server
