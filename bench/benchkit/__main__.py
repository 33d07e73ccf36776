"""bench/run: every scenario against roomactors and the peers, in one run, side by side.

Why scenario-major order (each scenario on every server, then the next scenario):
a slow drift of the machine (another job, thermal limits) then spreads over all
servers instead of landing on one of them.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import trio

from . import report
from .scenarios import Sizes, check_node_modules, plan, relative, run_load
from .targets import BENCH, REPO, TARGETS, Options, roomserver_flags, running, server_argv

# Under a per-connection rate limit that cannot be turned off, every load connection
# stays under this many commands per second (roomactors' default limit is 20/s).
_PACED_RATE = 18.0
_PACED_CREATORS = 8


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
    p.add_argument("--scenarios", default="fanout,churn,connections,ack", help="comma-separated subset to run")
    p.add_argument("--fanout-clients", help="comma-separated N, e.g. 1000,5000")
    p.add_argument("--fanout-seconds", type=float)
    p.add_argument("--churn-seconds", type=float)
    p.add_argument("--churn-watchers", type=int)
    p.add_argument("--churn-players", type=int)
    p.add_argument("--websockets", type=int, help="idle WebSocket connections to ramp to")
    p.add_argument("--polling", type=int, help="idle polling connections on top")
    p.add_argument("--ack-clients", type=int)
    p.add_argument("--ack-seconds", type=float)
    p.add_argument("--cpus", help="SERVER:LOAD cpu lists for taskset, e.g. 0:1; 'none' to not pin (default: first core for the server, the rest for the load)")
    p.add_argument("--roomactors-ref", metavar="REF", help="run roomactors as committed at this git ref (e.g. HEAD) instead of the working tree")
    p.add_argument("--out", type=Path, default=BENCH / "results", help="directory for the JSON and the PNG")
    return p.parse_args(argv)


def sizes_from(args: argparse.Namespace) -> Sizes:
    base = Sizes.quick() if args.quick else Sizes()
    overrides: dict[str, object] = {}
    if args.fanout_clients:
        overrides["fanout_clients"] = tuple(int(n) for n in args.fanout_clients.split(","))
    for name in ("fanout_seconds", "churn_seconds", "churn_watchers", "churn_players", "websockets", "polling", "ack_clients", "ack_seconds"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    return Sizes(**{**base.__dict__, **overrides})


async def amain(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    node = shutil.which("node")
    if node is None:
        raise SystemExit("bench/run: node is not on PATH")
    check_node_modules(node)
    targets = [t for t in args.targets.split(",") if t]
    for t in targets:
        if t not in TARGETS:
            raise SystemExit(f"bench/run: unknown target {t!r}; use {', '.join(TARGETS)}")
    wanted = set(args.scenarios.split(","))
    sizes = sizes_from(args)
    fd_limit = _raise_fd_limit()
    server_cpus, load_cpus = _cpus(args.cpus)
    with tempfile.TemporaryDirectory(prefix="bench-roomactors-") as tmp:
        src, source = _roomactors_source(args.roomactors_ref, Path(tmp))
        return await _run(args, node, targets, wanted, sizes, fd_limit, server_cpus, load_cpus, src, source)


def _git(*argv: str) -> str:
    return subprocess.run(["git", *argv], cwd=REPO, capture_output=True, text=True, check=True, timeout=60).stdout.strip()


def _roomactors_source(ref: str | None, tmp: Path) -> tuple[Path | None, str]:
    """Where roomactors runs from, and how the JSON names it (commit, and whether the
    working tree had uncommitted changes to it)."""
    try:
        if ref is None:
            dirty = bool(_git("status", "--porcelain", "--", "roomactors", "bin"))
            return None, f"working tree at {_git('rev-parse', '--short', 'HEAD')}" + (" + uncommitted changes" if dirty else "")
        commit = _git("rev-parse", "--verify", f"{ref}^{{commit}}")
    except (OSError, subprocess.SubprocessError) as exc:
        if ref is not None:
            raise SystemExit(f"bench/run: cannot resolve --roomactors-ref {ref!r}: {exc}") from exc
        return None, "working tree (not a git checkout)"
    archive = subprocess.run(["git", "archive", commit, "roomactors", "bin"], cwd=REPO, capture_output=True, check=True, timeout=60)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(tmp, filter="data")
    return tmp, f"{ref} = {commit[:12]}"


async def _run(
    args: argparse.Namespace, node: str, targets: list[str], wanted: set[str], sizes: Sizes, fd_limit: int,
    server_cpus: str | None, load_cpus: str | None, src: Path | None, source: str,
) -> int:
    available = roomserver_flags(src)
    rate_limit_off = "--command-rate" in available or "roomactors" not in targets
    options = Options(node=node, server_cpus=server_cpus, rate_limit_off=rate_limit_off, roomactors_src=src)
    scenarios = [
        s
        for s in plan(
            sizes,
            client_rate=0.0 if rate_limit_off else _PACED_RATE,
            creators=1 if rate_limit_off else _PACED_CREATORS,
        )
        if s.name.split("-")[0] in wanted
    ]
    fanout_clients = sizes.fanout_clients if "fanout" in wanted else ()

    started = time.time()
    print(
        f"bench/run: {len(scenarios)} scenarios × {len(targets)} servers; servers on cpu {server_cpus or 'any'}, "
        f"load on cpu {load_cpus or 'any'}; fd limit {fd_limit}; rate limit {'off' if rate_limit_off else 'on (paced)'}; "
        f"roomactors from {source}",
        file=sys.stderr,
    )
    results: dict[str, dict[str, dict[str, object]]] = {}
    for scenario in scenarios:
        for target in targets:
            t0 = time.monotonic()
            try:
                async with running(target, options, available) as server:
                    outcome = await run_load(scenario, node=node, url=server.url, server_pid=server.pid, load_cpus=load_cpus)
                    if "failed" in outcome.result:
                        tail = b"".join(server.output).decode(errors="replace")[-1500:]
                        outcome.result["server_output"] = tail
                        outcome.result["load_stderr"] = outcome.stderr[-1500:]
            except Exception as exc:  # one server failing must not hide the others' numbers
                outcome_result: dict[str, object] = {"failed": f"{type(exc).__name__}: {exc}"}
            else:
                outcome_result = outcome.result
            results.setdefault(scenario.name, {})[target] = outcome_result
            status = "FAILED " + str(outcome_result["failed"]) if "failed" in outcome_result else "ok"
            print(f"  {scenario.name:<14} {target:<11} {time.monotonic() - t0:6.1f} s  {status}", file=sys.stderr)

    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started))
    table = report.render_table(results, targets, fanout_clients)
    document = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 1),
        "quick": args.quick,
        "machine": report.machine(),
        "versions": report.versions(node),
        "pinning": {"server_cpus": server_cpus, "load_cpus": load_cpus},
        "rate_limit_off": rate_limit_off,
        "sizes": sizes.__dict__,
        "roomactors_source": source,
        "servers": {t: " ".join(server_argv(t, options, available)[0]) for t in targets},
        "metrics": report.metric_table(results, targets, fanout_clients),
        "results": results,
        "failures": report.failures(results),
        "interference": report.interference(results, server_cpus),
    }
    json_path = args.out / f"bench-{stamp}.json"
    json_path.write_text(json.dumps(document, indent=2, default=list) + "\n")
    png_path = args.out / f"fanout-{stamp}.png"
    if fanout_clients:
        report.plot_fanout(results, targets, fanout_clients, png_path)
    for name, path in (("bench-latest.json", json_path), ("fanout-latest.png", png_path)):
        if path.exists():
            shutil.copyfile(path, args.out / name)

    m, v = document["machine"], document["versions"]
    print(
        f"{document['started']}, {m['nproc']} × {m['cpu_model']}, {m['ram_gib']} GiB RAM, Linux {m['kernel']}; "
        f"Python {m['python']} (trio {v.get('trio')}, python-socketio {v.get('python-socketio')} on aiohttp {v.get('aiohttp')}); "
        f"Node {v.get('node')} (socket.io {v.get('socket.io')}, ws {v.get('ws')})"
    )
    print()
    print(table)
    print()
    print("cores busy (" + "/".join(sorted(report.machine_cores())) + ") during each measurement:")
    for line in report.core_lines(results, targets):
        print(f"  {line}")
    for line in document["failures"]:
        print(f"! {line}")
    for line in document["interference"]:
        print(f"~ other work on the server's core: {line}")
    print(f"results: {relative(json_path)}" + (f", plot: {relative(png_path)}" if png_path.exists() else ""))
    print(f"took {document['seconds']} s")
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
