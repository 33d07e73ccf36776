"""Raw WebSocket clients for the fan-out micro-benchmark (asyncio, one process).

Opens ``--clients`` Engine.IO WebSocket sessions on 127.0.0.1, prints
``READY`` once every client got its open packet, then counts the bytes each
receives (cheaper than parsing frames: every message of a run has the same
size) and prints ``DONE <seconds from the first byte to the last>`` once each
client received ``--messages`` frames. Run it pinned to another core than the
server (``taskset -c 1``), so the server's CPU figures are its own.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sys
import time

REQUEST = (
    "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
    "Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def frame_length(payload: int) -> int:
    """Bytes of one unmasked server frame carrying ``payload`` bytes."""
    if payload < 126:
        return 2 + payload
    if payload < 65536:
        return 4 + payload
    return 10 + payload


class Client(asyncio.Protocol):
    def __init__(self, run: Run) -> None:
        self.run = run
        self.buffer = b""
        self.state = "handshake"
        self.received = 0

    def data_received(self, data: bytes) -> None:
        if self.state == "counting":
            self.received += len(data)
            run = self.run
            if run.first is None:
                run.first = time.perf_counter()
            if self.received >= run.expected:
                self.state = "done"
                run.client_done(self.received)
            return
        self.buffer += data
        if self.state == "handshake":
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            assert head.startswith(b"HTTP/1.1 101"), head[:80]
            self.buffer, self.state = rest, "open"
        if self.state == "open" and len(self.buffer) >= 2:
            length = self.buffer[1] & 0x7F
            offset = 2
            if length == 126:
                if len(self.buffer) < 4:
                    return
                length, offset = int.from_bytes(self.buffer[2:4], "big"), 4
            if len(self.buffer) < offset + length:
                return
            assert self.buffer[offset : offset + 1] == b"0", self.buffer[:40]
            rest = self.buffer[offset + length :]
            self.buffer, self.state = b"", "counting"
            self.run.client_ready()
            if rest:
                self.data_received(rest)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.state != "done":
            self.run.lost += 1


class Run:
    def __init__(self, clients: int, expected: int) -> None:
        self.clients = clients
        self.expected = expected
        self.ready = 0
        self.done = 0
        self.lost = 0
        self.first: float | None = None
        self.all_ready = asyncio.Event()
        self.all_done = asyncio.Event()

    def client_ready(self) -> None:
        self.ready += 1
        if self.ready == self.clients:
            self.all_ready.set()

    def client_done(self, received: int) -> None:
        self.done += 1
        if self.done == self.clients:
            self.all_done.set()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--size", type=int, default=100, help="bytes of each message's data")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    loop = asyncio.get_running_loop()
    run = Run(args.clients, args.messages * frame_length(1 + args.size))
    transports = []
    for start in range(0, args.clients, 100):
        batch = []
        for _ in range(start, min(start + 100, args.clients)):
            batch.append(loop.create_connection(lambda: Client(run), "127.0.0.1", args.port))
        for transport, _protocol in await asyncio.gather(*batch):
            key = base64.b64encode(os.urandom(16)).decode()
            transport.write(REQUEST.format(port=args.port, key=key).encode())
            transports.append(transport)
    await asyncio.wait_for(run.all_ready.wait(), args.timeout)
    print("READY", flush=True)
    try:
        await asyncio.wait_for(run.all_done.wait(), args.timeout)
    except asyncio.TimeoutError:
        print(f"TIMEOUT done={run.done} lost={run.lost}", flush=True)
        return
    assert run.first is not None
    print(f"DONE {time.perf_counter() - run.first:.6f} lost={run.lost}", flush=True)
    sys.stdin.readline()  # keep the connections until the server is done measuring
    for transport in transports:
        transport.close()


if __name__ == "__main__":
    asyncio.run(main())
