"""Run the load generator against roomactors and the reference peers, one after another.

Why a runner: a comparison is only fair when every server gets the same load from
the same client on the same machine, one at a time; this starts each server on
127.0.0.1 (port 0), runs ``load/loadgen.mjs`` against it, stops it, and writes one
JSON report per server to ``bench/results/`` (not committed).

    .venv/bin/python bench/run.py [--targets roomactors,node,pysocketio] [loadgen flags...]

Anything after the runner's own flags goes to loadgen.mjs unchanged, e.g.
``--clients 500 --rooms 20 --duration 30 --rate 2 --transports websocket``.
Every server runs with its default limits (roomactors: 20 commands/s per
connection); keep ``--rate`` below that.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import trio

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
LOADGEN = BENCH / "load" / "loadgen.mjs"
STARTUP_TIMEOUT = 30.0
_ROOMACTORS_URL = re.compile(rb"clients connect to (http://\S+)")


def server_command(target: str, node: str) -> tuple[list[str], str]:
    """The argv of a target server, and where it announces itself: "port" (first stdout
    line, the peers) or "log" (roomserver's start-up log line on stderr)."""
    if target == "roomactors":
        return [sys.executable, str(REPO / "bin" / "roomserver"), "--port", "0", "--log-level", "info"], "log"
    if target == "node":
        return [node, str(BENCH / "peers" / "node" / "server.mjs"), "--port", "0", "--exit-on-stdin-close"], "port"
    if target == "pysocketio":
        script = BENCH / "peers" / "pysocketio" / "server.py"
        return [sys.executable, str(script), "--port", "0", "--exit-on-stdin-close"], "port"
    raise SystemExit(f"unknown target {target!r}: use roomactors, node or pysocketio")


async def _announced_url(stream: trio.abc.ReceiveStream, how: str) -> str:
    buffer = b""
    async for chunk in stream:
        buffer += chunk
        if how == "port" and b"\n" in buffer:
            port = int(buffer.split(b"\n", 1)[0])
            return f"http://127.0.0.1:{port}"
        if how == "log" and (match := _ROOMACTORS_URL.search(buffer)):
            return match.group(1).decode()
    raise RuntimeError(f"the server exited before announcing itself: {buffer[-2000:]!r}")


async def run_target(target: str, node: str, loadgen_args: Sequence[str]) -> dict[str, object]:
    argv, how = server_command(target, node)
    async with trio.open_nursery() as nursery:
        server: trio.Process = await nursery.start(
            partial(
                trio.run_process,
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE if how == "log" else None,
                check=False,
                cwd=str(REPO),
            )
        )
        stream = server.stderr if how == "log" else server.stdout
        assert stream is not None
        with trio.fail_after(STARTUP_TIMEOUT):
            url = await _announced_url(stream, how)

        async def drain() -> None:  # keep the server from blocking on a full pipe
            async for _ in stream:
                pass

        nursery.start_soon(drain)
        print(f"{target}: {url}", file=sys.stderr)
        result = await trio.run_process(
            [node, str(LOADGEN), "--url", url, *loadgen_args], capture_stdout=True, check=True, cwd=str(BENCH)
        )
        nursery.cancel_scope.cancel()
    report: dict[str, object] = json.loads(result.stdout)
    report["target"] = target
    return report


async def amain(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", default="roomactors,node,pysocketio")
    args, loadgen_args = parser.parse_known_args(argv)
    node = shutil.which("node")
    if node is None:
        raise SystemExit("node is not on PATH")
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for target in args.targets.split(","):
        report = await run_target(target, node, loadgen_args)
        path = RESULTS / f"{stamp}-{target}.json"
        path.write_text(json.dumps(report, indent=2) + "\n")
        print(json.dumps({"target": target, "file": str(path.relative_to(REPO))}))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return trio.run(amain, list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
