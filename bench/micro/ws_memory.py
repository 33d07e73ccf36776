"""Memory and tasks per idle WebSocket connection.

Starts a server in this process (``--layer engineio``: a bare
:class:`EngineIOServer` whose handler reads; ``socketio``: a
:class:`SocketIOServer` with every client joined to ``/``), opens
``--clients`` WebSocket clients from a Node process on another core, and
once all are idle prints the server's RSS growth per connection, the trio
tasks per connection and, with ``--tracemalloc``, the Python allocations per
connection by source file (tracemalloc slows everything down: use it with a
thousand clients, not ten thousand)::

    .venv/bin/python bench/micro/ws_memory.py --clients 10000 --layer socketio
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tracemalloc
from collections import Counter
from pathlib import Path

import trio

HERE = Path(__file__).resolve().parent


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def count_tasks() -> Counter[str]:
    """Every task under the root, by name (the function it runs)."""
    names: Counter[str] = Counter()
    stack = [trio.lowlevel.current_root_task()]
    while stack:
        task = stack.pop()
        name = task.name  # "module.function", or a name given to start_soon (kept whole)
        names[name if " " in name else name.rsplit(".", 1)[-1]] += 1
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return names


async def bench(args: argparse.Namespace) -> dict[str, object]:
    from roomactors.engineio import EngineIOConfig, EngineIOServer, EngineSocket
    from roomactors.socketio import SocketIOServer

    config = EngineIOConfig(ping_interval=600, ping_timeout=600)
    if args.layer == "engineio":

        async def handler(sock: EngineSocket) -> None:
            async for _ in sock:
                pass

        server = EngineIOServer(handler, config)
        serve = server.serve
        stats = server.statistics
    else:
        sio = SocketIOServer(engineio=config)
        serve = sio.serve
        stats = sio.engineio.statistics

    async with trio.open_nursery() as nursery:
        (host, port), *_ = await nursery.start(serve, "127.0.0.1", 0)
        await trio.sleep(0.2)
        gc.collect()
        tasks_before = count_tasks()
        rss_before = rss_bytes()
        if args.tracemalloc:
            tracemalloc.start(1)
            snap_before = tracemalloc.take_snapshot()
        command = [
            "taskset", "-c", str(args.client_cpu), "node", str(HERE / "ws_clients.mjs"),
            "--port", str(port), "--clients", str(args.clients), "--messages", "0",
            "--socketio", "1" if args.layer == "socketio" else "0", "--eio", str(args.eio),
        ]
        client = await trio.lowlevel.open_process(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            with trio.move_on_after(args.timeout) as waiting:
                line = await client.stdout.receive_some()  # type: ignore[union-attr]
                assert line.startswith(b"READY"), line
                while stats().websocket_sessions < args.clients:
                    await trio.sleep(0.05)
            if waiting.cancelled_caught:
                raise SystemExit(f"clients not all open after {args.timeout} s: {stats()}")
            await trio.sleep(0.5)
            gc.collect()
            rss_after = rss_bytes()
            tasks = count_tasks() - tasks_before
            result: dict[str, object] = {
                "layer": args.layer,
                "eio": args.eio,
                "clients": args.clients,
                "rss_bytes_per_connection": round((rss_after - rss_before) / args.clients),
                "tasks_per_connection": round(sum(tasks.values()) / args.clients, 2),
                "tasks": {name: round(n / args.clients, 2) for name, n in tasks.most_common()},
            }
            if args.tracemalloc:
                snap_after = tracemalloc.take_snapshot()
                diff = snap_after.compare_to(snap_before, "filename")
                result["python_bytes_per_connection"] = round(sum(d.size_diff for d in diff) / args.clients)
                result["by_file"] = {
                    d.traceback[0].filename.split("site-packages/")[-1].split("/work/main/")[-1]: round(
                        d.size_diff / args.clients
                    )
                    for d in diff[:12]
                }
                if args.lines:
                    for stat in snap_after.compare_to(snap_before, "lineno")[: args.lines]:
                        print(f"{stat.size_diff / args.clients:8.0f} B {stat.traceback[0]}", file=sys.stderr)
        finally:
            await client.stdin.aclose()  # type: ignore[union-attr]
            with trio.move_on_after(10):
                await client.wait()
            client.kill()
        nursery.cancel_scope.cancel()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--layer", choices=["engineio", "socketio"], default="socketio")
    parser.add_argument("--eio", type=int, choices=[3, 4], default=4,
                        help="Engine.IO protocol of the clients (3: socket.io-client 1.x/2.x)")
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--lines", type=int, default=0, help="with --tracemalloc: top source lines to stderr")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--src", help="import roomactors from this directory instead")
    args = parser.parse_args()
    if args.src:
        sys.meta_path[:] = [finder for finder in sys.meta_path if "__editable__" not in repr(finder)]
        sys.path.insert(0, args.src)
    os.sched_setaffinity(0, {args.server_cpu})
    print(json.dumps(trio.run(bench, args)))


if __name__ == "__main__":
    main()
