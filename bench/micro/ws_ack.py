"""Ack round trip micro-benchmark: ``--clients`` Socket.IO clients (Node, raw
WebSocket, on another core) each send ``--acks`` events one at a time and
wait for the handler's ack; prints the round-trip percentiles (µs) and the
server's CPU µs per round trip::

    .venv/bin/python bench/micro/ws_ack.py --clients 1 --acks 5000
    .venv/bin/python bench/micro/ws_ack.py --clients 100 --acks 200
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


async def bench(args: argparse.Namespace) -> dict[str, object]:
    from roomactors.engineio import EngineIOConfig
    from roomactors.socketio import SocketIOServer

    sio = SocketIOServer(engineio=EngineIOConfig(ping_interval=600, ping_timeout=600))

    @sio.on("ping")
    async def ping(socket: object) -> str:
        return "pong"

    async with trio.open_nursery() as nursery:
        (host, port), *_ = await nursery.start(sio.serve, "127.0.0.1", 0)
        command = [
            "taskset", "-c", str(args.client_cpu), "node", str(HERE / "ws_clients.mjs"),
            "--port", str(port), "--clients", str(args.clients), "--socketio", "1", "--acks", str(args.acks),
        ]
        client = await trio.lowlevel.open_process(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            output = b""
            with trio.fail_after(args.timeout):
                while b"READY\n" not in output:
                    output += await client.stdout.receive_some()  # type: ignore[union-attr]
                cpu0, wall0 = time.process_time(), time.perf_counter()
                while b"ACKS" not in output or not output.endswith(b"\n"):
                    output += await client.stdout.receive_some()  # type: ignore[union-attr]
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        finally:
            await client.stdin.aclose()  # type: ignore[union-attr]
            with trio.move_on_after(10):
                await client.wait()
            client.kill()
        nursery.cancel_scope.cancel()
    line = output.decode().split("ACKS ", 1)[1].split()
    fields = dict(item.split("=") for item in line)
    trips = args.clients * args.acks
    return {
        "clients": args.clients,
        "acks_per_client": args.acks,
        **{k: int(v) for k, v in fields.items() if k != "n"},
        "round_trips_per_s": round(trips / wall),
        "server_cpu_us_per_round_trip": round(cpu / trips * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--acks", type=int, default=5000)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--profile", type=int, default=0, help="cProfile: print this many functions")
    parser.add_argument("--sort", default="tottime", help="cProfile sort key")
    parser.add_argument("--src", help="import roomactors from this directory instead")
    args = parser.parse_args()
    if args.src:
        sys.meta_path[:] = [finder for finder in sys.meta_path if "__editable__" not in repr(finder)]
        sys.path.insert(0, args.src)
    os.sched_setaffinity(0, {args.server_cpu})
    if args.profile:
        import cProfile
        import pstats

        profile = cProfile.Profile()
        result = profile.runcall(trio.run, bench, args)
        pstats.Stats(profile, stream=sys.stderr).sort_stats(args.sort).print_stats(args.profile)
    else:
        result = trio.run(bench, args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
