"""Fan-out micro-benchmark: one broadcast loop to many WebSocket sessions.

The server (this process, pinned to ``--server-cpu``) runs an
:class:`EngineIOServer` whose sessions just wait; once the clients
(``ws_clients.mjs``, Node, or ``ws_clients.py``, another process pinned to ``--client-cpu``) are all open,
it sends ``--messages`` broadcasts, each one :class:`SharedMessage` handed to
every session, yielding to the writers after each broadcast and pausing when
outboxes run more than ``--window`` messages deep (so no client overflows).

Prints deliveries per second (clients x messages over the clients' wall time
from first to last byte) and the server's CPU microseconds per delivery
(process CPU time over the broadcast, divided by the deliveries)::

    .venv/bin/python bench/micro/ws_fanout.py --clients 1000 --messages 300

``--src DIR`` measures another checkout's ``roomactors`` (e.g. one made with
``git archive <commit> roomactors | tar -x -C DIR``): before/after numbers
from the same machine in the same minute.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import trio

HERE = Path(__file__).resolve().parent


async def bench(args: argparse.Namespace) -> dict[str, float]:
    from roomactors.engineio import EngineIOConfig, EngineIOServer, EngineSocket
    from roomactors.engineio.packets import SharedMessage

    sockets: set[EngineSocket] = set()  # noqa: F821

    async def handler(sock: EngineSocket) -> None:  # noqa: F821
        sockets.add(sock)
        try:
            async for _ in sock:
                pass
        finally:
            sockets.discard(sock)

    config = EngineIOConfig(ping_interval=600, ping_timeout=600)
    server = EngineIOServer(handler, config)
    async with trio.open_nursery() as nursery:
        (host, port), *_ = await nursery.start(server.serve, "127.0.0.1", 0)
        client_program = [sys.executable, str(HERE / "ws_clients.py")] if args.python_client else [
            "node", str(HERE / "ws_clients.mjs")
        ]
        command = [
            "taskset", "-c", str(args.client_cpu), *client_program,
            "--port", str(port), "--clients", str(args.clients),
            "--messages", str(args.messages), "--size", str(args.size),
        ]
        client = await trio.lowlevel.open_process(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            lines = _lines(client.stdout)
            assert await lines.__anext__() == "READY"
            with trio.fail_after(10):
                while len(sockets) < args.clients:
                    await trio.sleep(0.01)
            targets = list(sockets)
            payload = "x" * args.size
            cpu0, wall0 = time.process_time(), time.perf_counter()
            for i in range(args.messages):
                message = SharedMessage(payload)
                for sock in targets:
                    sock.send(message)
                await trio.sleep(0)
                if i % 8 == 7:
                    while max(len(sock.session.outbox) for sock in targets) > args.window:
                        await trio.sleep(0.0005)
            while any(sock.session.outbox for sock in targets):
                await trio.sleep(0.0005)
            cpu = time.process_time() - cpu0
            server_wall = time.perf_counter() - wall0
            done = await lines.__anext__()
        finally:
            await client.stdin.aclose()  # type: ignore[union-attr]
            with trio.move_on_after(10):
                await client.wait()
            client.kill()
        nursery.cancel_scope.cancel()
    assert done.startswith("DONE"), done
    client_wall = float(done.split()[1])
    deliveries = args.clients * args.messages
    return {
        "clients": args.clients,
        "messages": args.messages,
        "deliveries_per_s": round(deliveries / client_wall),
        "server_cpu_us_per_delivery": round(cpu / deliveries * 1e6, 2),
        "server_cpu_share": round(cpu / server_wall, 2),
        "lost": int(done.split("lost=")[1]),
    }


async def _lines(stream: trio.abc.ReceiveStream | None):  # type: ignore[no-untyped-def]
    assert stream is not None
    buffer = b""
    while True:
        while b"\n" not in buffer:
            chunk = await stream.receive_some()
            if not chunk:
                return
            buffer += chunk
        line, buffer = buffer.split(b"\n", 1)
        yield line.decode().strip()


def _import_from(src: str) -> None:
    """Bypass the editable install's import hook so ``src`` wins."""
    sys.meta_path[:] = [finder for finder in sys.meta_path if "__editable__" not in repr(finder)]
    sys.path.insert(0, src)
    import roomactors

    assert Path(roomactors.__file__).is_relative_to(src), roomactors.__file__


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--window", type=int, default=32, help="outbox depth that pauses the broadcaster")
    parser.add_argument("--python-client", action="store_true", help="asyncio clients instead of Node's")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--src", help="import roomactors from this directory instead")
    args = parser.parse_args()
    if args.src:
        _import_from(args.src)
    os.sched_setaffinity(0, {args.server_cpu})
    print(json.dumps(trio.run(bench, args)))


if __name__ == "__main__":
    main()
