"""bench/run's command line: sizes and choices from flags, then one run (runner.py).

Why a Python entry point behind a shell script: the script installs what is
missing; everything that measures lives here, on trio, so that a cancelled run
(Ctrl-C, SIGTERM) kills every server it started on the way out.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import trio

from . import cluster
from .runner import Setup, document, measure, summary, write
from .scenarios import Sizes, check_node_modules, plan, relative
from .source import roomactors_source
from .targets import BENCH, TARGETS, Options, roomserver_flags

# Under a per-connection rate limit that cannot be turned off, every load connection
# stays under this many commands per second (roomactors' default limit is 20/s).
_PACED_RATE = 18.0
_PACED_CREATORS = 8
_QUICK_SCENARIOS = "fanout,churn,connections,ack,race"
_ALL_SCENARIOS = f"{_QUICK_SCENARIOS},cluster"


def _raise_fd_limit() -> int:
    """10,000 WebSockets and 1,000 polling clients need about 12,000 descriptors on each
    side; the servers and the load client inherit this process's limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _cpus(arg: str | None) -> tuple[str | None, str | None]:
    """The server's and the load client's cores: different cores when there are two or more."""
    if arg == "none" or not shutil.which("taskset"):
        return None, None
    if arg:
        server, _, load = arg.partition(":")
        return server or None, load or None
    n = len(os.sched_getaffinity(0))
    if n < 2:
        return None, None
    ordered = sorted(os.sched_getaffinity(0))
    return str(ordered[0]), ",".join(str(c) for c in ordered[1:])


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes for CI (about a minute for all three servers)")
    p.add_argument("--targets", default=",".join(TARGETS), help="comma-separated: roomactors,node,pysocketio")
    p.add_argument("--scenarios", help="comma-separated subset to run, of fanout,churn,connections,ack,race,cluster "
                   "(cluster: the multi-node workload on Redis, benchkit/cluster.py); default all, and all but "
                   "cluster with --quick (`--quick --scenarios cluster` is its CI size, about 30 s)")
    p.add_argument("--fanout-clients", help="comma-separated N, e.g. 1000,5000")
    p.add_argument("--fanout-seconds", type=float)
    p.add_argument("--churn-seconds", type=float)
    p.add_argument("--churn-watchers", type=int)
    p.add_argument("--churn-players", type=int)
    p.add_argument("--websockets", type=int, help="idle WebSocket connections to ramp to")
    p.add_argument("--polling", type=int, help="idle polling connections on top")
    p.add_argument("--ack-clients", type=int)
    p.add_argument("--ack-seconds", type=float)
    p.add_argument("--race-rooms", type=int, help="rooms racing at once")
    p.add_argument("--race-players", type=int, help="players per room (besides the host)")
    p.add_argument("--race-rate", type=float, help="answers per second per player")
    p.add_argument("--race-warmup", type=float, help="seconds of answering before measuring")
    p.add_argument("--race-seconds", type=float, help="seconds measured at the fixed pace")
    p.add_argument("--race-saturate", type=float, help="seconds of closed-loop answering after (0: none)")
    p.add_argument("--cluster-nodes", type=int, help="cluster: nodes of the multi-node runs (default 2; each workload also runs on 1)")
    p.add_argument("--cluster-fanout-clients", type=int, help="cluster: lobby clients of the fan-out, spread evenly over the nodes")
    p.add_argument("--cluster-fanout-seconds", type=float, help="cluster: seconds measured per fan-out run")
    p.add_argument("--cluster-race-rooms", type=int, help="cluster: rooms racing at once (hosts spread over the nodes)")
    p.add_argument("--cluster-race-players", type=int, help="cluster: players per room, on the room's node and on the others in turn")
    p.add_argument("--cluster-race-rate", type=float, help="cluster: answers per second per player")
    p.add_argument("--cluster-race-warmup", type=float, help="cluster: seconds of answering before measuring")
    p.add_argument("--cluster-race-seconds", type=float, help="cluster: seconds measured")
    p.add_argument("--node-cpus", help="cluster: cpu list, node i pinned to the i-th (default: every core this run may use, e.g. 0,1); 'none' to not pin")
    p.add_argument("--cluster-load-cpus", help="cluster: cpu list for the load client (default: not pinned, it shares the nodes' cores)")
    p.add_argument("--cpus", help="SERVER:LOAD cpu lists for taskset, e.g. 0:1; 'none' to not pin (default: first core for the server, the rest for the load)")
    p.add_argument("--roomactors-ref", metavar="REF", help="run roomactors as committed at this git ref (e.g. HEAD) instead of the working tree")
    p.add_argument("--out", type=Path, default=BENCH / "results", help="directory for the JSON and the PNG")
    return p.parse_args(argv)


def sizes_from(args: argparse.Namespace) -> Sizes:
    base = Sizes.quick() if args.quick else Sizes()
    overrides: dict[str, object] = {}
    if args.fanout_clients:
        overrides["fanout_clients"] = tuple(int(n) for n in args.fanout_clients.split(","))
    for name in ("fanout_seconds", "churn_seconds", "churn_watchers", "churn_players", "websockets", "polling", "ack_clients", "ack_seconds",
                 "race_rooms", "race_players", "race_rate", "race_warmup", "race_seconds", "race_saturate",
                 "cluster_nodes", "cluster_fanout_clients", "cluster_fanout_seconds", "cluster_race_rooms",
                 "cluster_race_players", "cluster_race_rate", "cluster_race_warmup", "cluster_race_seconds"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    return Sizes(**{**base.__dict__, **overrides})


async def amain(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    node = shutil.which("node")
    if node is None:
        raise SystemExit("bench/run: node is not on PATH")
    check_node_modules(node)
    targets = tuple(t for t in args.targets.split(",") if t)
    for t in targets:
        if t not in TARGETS:
            raise SystemExit(f"bench/run: unknown target {t!r}; use {', '.join(TARGETS)}")
    wanted = set((args.scenarios or (_QUICK_SCENARIOS if args.quick else _ALL_SCENARIOS)).split(","))
    if unknown := wanted - set(_ALL_SCENARIOS.split(",")):
        raise SystemExit(f"bench/run: unknown scenario(s) {', '.join(sorted(unknown))}; use {_ALL_SCENARIOS}")
    sizes = sizes_from(args)
    if sizes.cluster_nodes < 2:
        raise SystemExit("bench/run: --cluster-nodes must be 2 or more (the cluster workload also runs on 1 node)")
    fd_limit = _raise_fd_limit()
    server_cpus, load_cpus = _cpus(args.cpus)
    with tempfile.TemporaryDirectory(prefix="bench-roomactors-") as tmp:
        src, source = roomactors_source(args.roomactors_ref, Path(tmp))
        available = frozenset(roomserver_flags(src))
        # Without --command-rate in roomserver, every server keeps its default limit
        # and the load client paces each connection under it instead.
        rate_limit_off = "--command-rate" in available or "roomactors" not in targets
        pacing = {"client_rate": 0.0 if rate_limit_off else _PACED_RATE, "creators": 1 if rate_limit_off else _PACED_CREATORS}
        scenarios = [*plan(sizes, **pacing), *cluster.plan(sizes, **pacing)]
        setup = Setup(
            options=Options(node=node, server_cpus=server_cpus, rate_limit_off=rate_limit_off, roomactors_src=src),
            available=available,
            targets=targets,
            scenarios=tuple(s for s in scenarios if s.name.split("-")[0] in wanted),
            sizes=sizes,
            load_cpus=load_cpus,
            fd_limit=fd_limit,
            source=source,
            quick=args.quick,
            node_cpus=cluster.node_cpus(args.node_cpus),
            cluster_load_cpus=args.cluster_load_cpus,
        )
        print(
            f"bench/run: {len(setup.scenarios)} scenarios × {len(targets)} servers; servers on cpu "
            f"{server_cpus or 'any'}, load on cpu {load_cpus or 'any'}; fd limit {fd_limit}; "
            f"rate limit {'off' if rate_limit_off else 'on (paced)'}; roomactors from {source}"
            + (f"; cluster nodes on cpu {','.join(setup.node_cpus) or 'any'}, its load on cpu "
               f"{setup.cluster_load_cpus or 'any'}" if "cluster" in wanted else ""),
            file=sys.stderr,
        )
        started = time.time()
        results, cluster_info = await measure(setup)
        doc = document(setup, results, started, cluster_info)
    json_path, png_path = write(doc, setup, results, args.out, started)
    for line in summary(doc, setup, results):
        print(line)
    print(f"results: {relative(json_path)}" + (f", plot: {relative(png_path)}" if png_path else ""))
    print(f"took {doc['seconds']} s")
    return 1 if any("failed" in r for by in results.values() for r in by.values()) else 0


async def _until_signalled(argv: Sequence[str]) -> int:
    """SIGTERM or SIGHUP (a CI timeout, a closed terminal) cancels the run the way
    Ctrl-C does, so that every server started so far is killed on the way out."""
    status = 1
    async with trio.open_nursery() as nursery:

        async def watch() -> None:
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGHUP) as signals:
                async for signum in signals:
                    print(f"bench/run: {signal.Signals(signum).name}: stopping", file=sys.stderr)
                    nursery.cancel_scope.cancel()

        async def run() -> None:
            nonlocal status
            status = await amain(argv)
            nursery.cancel_scope.cancel()

        nursery.start_soon(watch)
        nursery.start_soon(run)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return trio.run(_until_signalled, list(sys.argv[1:] if argv is None else argv))
    except BaseExceptionGroup as group:
        # A usage error (SystemExit) from inside the nursery: say it plainly.
        exits = group.subgroup(SystemExit)
        if exits is None:
            raise
        first: BaseException = exits
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None


if __name__ == "__main__":
    sys.exit(main())
