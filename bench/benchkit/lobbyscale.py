"""``bench/run lobby-scale``: the lobby at scale (issue 13), roomactors only.

Four runs, each on a fresh roomserver, with ``load/lobbyscale.mjs`` as the load:

* ``mixed``: R rooms, half the lobby clients on full lists, half on the feed
  with a filter, 50 changes a second (the issue's workload);
* ``full``: the same with only full-list clients (does the server stay under
  half a core, does every watcher have the newest list within a second?);
* ``feed-small`` and ``feed``: only feed clients, at 100 rooms and at R rooms
  (the cost of a change for feed clients should not grow with the rooms: the
  aim is within 1.2x). ``feed-small`` adds R - 100 connections that watch
  nothing, so that both runs hold as many connections (whose heartbeats cost
  the same) and differ in rooms only.

Why no peers: python-socketio and socket.io peers have no feed, so every one of
the R hosts would be sent every full list while the rooms are being opened
(about R^3/3 room objects written: days at 10,000 rooms). What full lists cost
the peers is what the ``fanout`` and ``churn`` scenarios measure.

Prints a Markdown table and writes ``results/lobbyscale-<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import trio

from .__main__ import _cpus, _raise_fd_limit
from .scenarios import check_node_modules, relative
from .targets import BENCH, REPO, Options, roomserver_flags, running

LOAD = BENCH / "load" / "lobbyscale.mjs"
CHURN_HOSTS = 50
"""load/lobbyscale.mjs's --churn default: hosts that create and disband rooms."""


@dataclass(frozen=True)
class Variant:
    name: str
    rooms: int
    full: int
    feed: int
    idle: int = 0
    """Connections that watch nothing: as many connections as the big run, fewer rooms."""


def variants(rooms: int, clients: int) -> list[Variant]:
    return [
        Variant("mixed", rooms, clients // 2, clients - clients // 2),
        Variant("full", rooms, clients // 2, 0),
        Variant("feed-small", min(100, rooms), 0, clients // 2, idle=rooms - min(100, rooms)),
        Variant("feed", rooms, 0, clients // 2),
    ]


async def run_variant(variant: Variant, args: argparse.Namespace, options: Options, available: set[str],
                      load_cpus: str | None, node: str) -> dict[str, object]:
    # Room for the churn's rooms on top of the open ones (roomserver reads it from the environment).
    os.environ["ROOMSERVER_MAX_ROOMS"] = str(variant.rooms + CHURN_HOSTS)
    async with running("roomactors", options, available) as server:
        pin = ["taskset", "-c", load_cpus] if load_cpus else []
        argv = [
            *pin, node, str(LOAD), "--url", server.url, "--server-pid", str(server.pid),
            "--clk-tck", str(os.sysconf("SC_CLK_TCK")), "--rooms", str(variant.rooms), "--full", str(variant.full),
            "--feed", str(variant.feed), "--idle", str(variant.idle), "--rate", str(args.rate), "--duration", str(args.duration),
        ]
        bound = 300 + variant.rooms / 20 + args.duration * 2
        with trio.move_on_after(bound) as scope:
            done = await trio.run_process(argv, capture_stdout=True, capture_stderr=True, check=False, cwd=str(REPO))
        if scope.cancelled_caught:
            return {"failed": f"overran its time bound of {bound:.0f} s"}
        lines = done.stdout.decode(errors="replace").strip().splitlines()
        try:
            result: dict[str, object] = json.loads(lines[-1])
        except (IndexError, json.JSONDecodeError):
            result = {"failed": f"load client exited {done.returncode} without a result",
                      "stderr": done.stderr.decode(errors="replace")[-1500:]}
        return result


def _cell(result: dict[str, object], *path: str) -> str:
    value: object = result
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return "—"
        value = value[key]
    return "—" if value is None else str(value)


def table(results: dict[str, dict[str, object]]) -> list[str]:
    rows = [
        ("rooms", ("rooms",)),
        ("idle connections", ("idle_connections",)),
        ("full-list / feed clients", None),
        ("changes per second", ("changes_per_second",)),
        ("server CPU share (of one core)", ("server_cpu_share",)),
        ("server CPU ms per change", ("server_cpu_ms_per_change",)),
        ("load client CPU share (near 1.0: it set the pace)", ("loadgen_cpu_share",)),
        ("server bytes written per change", ("server_bytes_per_change",)),
        ("size of the last full list (bytes)", ("last_list_bytes",)),
        ("full-list watchers' lag p50 / p99 (ms)", ("lag_full",)),
        ("feed watchers' lag p50 / p99 (ms)", ("lag_feed",)),
        ("errors", ("errors",)),
    ]
    names = list(results)
    lines = ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for label, path in rows:
        cells = []
        for name in names:
            r = results[name]
            if "failed" in r:
                cells.append(f"failed: {r['failed']}")
            elif path is None:
                cells.append(f"{_cell(r, 'full_clients')} / {_cell(r, 'feed_clients')}")
            elif path[0].startswith("lag_"):
                cells.append(f"{_cell(r, path[0], 'p50_ms')} / {_cell(r, path[0], 'p99_ms')}")
            else:
                cells.append(_cell(r, *path))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def aims(results: dict[str, dict[str, object]]) -> list[str]:
    out = []
    small, big, full = results.get("feed-small", {}), results.get("feed", {}), results.get("full", {})
    a, b = small.get("server_cpu_ms_per_change"), big.get("server_cpu_ms_per_change")
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a > 0:
        out.append(f"feed: CPU per change at {big.get('rooms')} rooms / at {small.get('rooms')} rooms = "
                   f"{b / a:.2f} (aim <= 1.2: {'met' if b / a <= 1.2 else 'NOT met'})")
    share = full.get("server_cpu_share")
    if isinstance(share, (int, float)):
        out.append(f"full lists: server CPU share {share} (aim < 0.5: {'met' if share < 0.5 else 'NOT met'})")
    lag = full.get("lag_full")
    if isinstance(lag, dict) and isinstance(lag.get("p99_ms"), (int, float)):
        out.append(f"full lists: watchers' lag p99 {lag['p99_ms']} ms (aim < 1000: "
                   f"{'met' if lag['p99_ms'] < 1000 else 'NOT met'})")
    return out


async def amain(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="bench/run lobby-scale", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="1,000 rooms, 100 clients, 5 s each (CI size)")
    p.add_argument("--rooms", type=int, help="rooms open during the measurement (default 10000)")
    p.add_argument("--clients", type=int, help="lobby clients (default 1000)")
    p.add_argument("--rate", type=float, default=50.0, help="room changes per second (default 50)")
    p.add_argument("--duration", type=float, help="seconds measured per run (default 20)")
    p.add_argument("--variants", default="mixed,full,feed-small,feed", help="comma-separated subset")
    p.add_argument("--cpus", help="SERVER:LOAD cpu lists for taskset, or 'none'")
    p.add_argument("--out", type=Path, default=BENCH / "results")
    args = p.parse_args(argv)
    rooms = args.rooms or (1000 if args.quick else 10_000)
    clients = args.clients or (100 if args.quick else 1000)
    args.duration = args.duration or (5.0 if args.quick else 20.0)
    node = shutil.which("node")
    if node is None:
        raise SystemExit("bench/run lobby-scale: node is not on PATH")
    check_node_modules(node)
    fd_limit = _raise_fd_limit()
    server_cpus, load_cpus = _cpus(args.cpus)
    options = Options(node=node, server_cpus=server_cpus, rate_limit_off=True)
    available = roomserver_flags(None)
    wanted = set(args.variants.split(","))
    started = time.time()
    results: dict[str, dict[str, object]] = {}
    for variant in variants(rooms, clients):
        if variant.name not in wanted:
            continue
        t0 = time.monotonic()
        results[variant.name] = await run_variant(variant, args, options, available, load_cpus, node)
        status = results[variant.name].get("failed", "ok")
        print(f"  lobby-scale {variant.name:<11} {time.monotonic() - t0:6.1f} s  {status}", file=sys.stderr)
    doc = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "rooms": rooms, "clients": clients, "rate": args.rate, "duration": args.duration, "fd_limit": fd_limit,
        "pinning": {"server_cpus": server_cpus, "load_cpus": load_cpus},
        "results": results, "aims": aims(results),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"lobbyscale-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(started))}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    shutil.copyfile(path, args.out / "lobbyscale-latest.json")
    for line in [*table(results), "", *aims(results), f"results: {relative(path)}"]:
        print(line)
    return 1 if any("failed" in r for r in results.values()) else 0


def main(argv: Sequence[str] | None = None) -> int:
    return trio.run(amain, list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
