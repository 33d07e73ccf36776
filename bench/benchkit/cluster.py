"""The multi-node workload (issue 16): the fan-out and the race on 1 node and on K
nodes sharing one Redis, behind the same load client.

Why 1 node *with* Redis as the baseline: the scaling factor should say what a second
node adds, not what leaving Redis out saves; a single node with `--redis` runs the
same code (the directory writer, the replica) as each node of a cluster.

Each sub-run (a scenario on a target with k nodes) starts fresh nodes with their own
key prefix on one redis-server this run started (redisserver.py), each node pinned to
its own core (`--node-cpus`), and stops them at its end. The load client spreads its
connections over the nodes (rawload.mjs with several URLs: watchers round-robin, the
fan-out's creator on the first node; in the race, each room has players on its own
node and on the other ones). python-socketio with `AsyncRedisManager` runs the
fan-out as context: its processes share emits through Redis, not the lobby, so each
process's lists show its own rooms (there is one creator, so every list is
complete); the race needs rooms shared across processes, which python-socketio does
not have, so it runs on roomactors only.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import replace
from typing import TYPE_CHECKING

import trio

from .redisserver import RedisServer, open_redis_server
from .scenarios import Scenario, Sizes, run_load
from .targets import RunningServer, running

if TYPE_CHECKING:
    from .runner import Results, Setup

READY_TIMEOUT = 30.0
WORKLOADS: dict[str, tuple[str, ...]] = {"fanout": ("roomactors", "pysocketio"), "race": ("roomactors",)}
"""Which servers run each cluster workload (Node's peer has no Redis adapter here)."""


def plan(sizes: Sizes, *, client_rate: float, creators: int) -> list[Scenario]:
    """The cluster scenarios: "cluster-fanout-N" and "cluster-race"; each runs on 1
    node and then on `sizes.cluster_nodes`, so its time bound is per sub-run."""
    pacing = ("--client-rate", str(client_rate)) if client_rate else ()
    connect_budget = 60.0
    n = sizes.cluster_fanout_clients
    race_clients = sizes.cluster_race_rooms * (sizes.cluster_race_players + 1)
    return [
        Scenario(
            f"cluster-fanout-{n}",
            ("--scenario", "fanout", "--clients", str(n), "--duration", str(sizes.cluster_fanout_seconds),
             "--commands", str(sizes.fanout_commands), "--creators", str(creators), *pacing),
            connect_budget + sizes.cluster_fanout_seconds * 3 + n / 50,
        ),
        Scenario(
            "cluster-race",
            ("--scenario", "race", "--rooms", str(sizes.cluster_race_rooms),
             "--race-players", str(sizes.cluster_race_players), "--race-rate", str(sizes.cluster_race_rate),
             "--race-warmup", str(sizes.cluster_race_warmup), "--duration", str(sizes.cluster_race_seconds),
             "--race-saturate", "0", "--observers", "3", *pacing),
            connect_budget + race_clients / 25 + sizes.cluster_race_warmup + sizes.cluster_race_seconds * 2 + 30,
        ),
    ]


def workload(scenario: Scenario) -> str:
    """"cluster-fanout-1000" -> "fanout"."""
    return scenario.name.split("-")[1]


def node_cpus(arg: str | None) -> tuple[str, ...]:
    """One core per node, in order (node i on the i-th, wrapping around): `--node-cpus`
    ("0,1"; "none": unpinned), by default the cores this process may use."""
    if arg == "none" or not shutil.which("taskset"):
        return ()
    if arg:
        return tuple(c for c in arg.split(",") if c)
    return tuple(str(c) for c in sorted(os.sched_getaffinity(0)))


def _flags(target: str, redis: RedisServer, prefix: str, index: int) -> list[str]:
    if target == "roomactors":
        return ["--redis", redis.url, "--node-id", f"n{index}", "--redis-prefix", prefix,
                "--redis-channel", f"{prefix}socketio"]
    return ["--redis", redis.url, "--redis-channel", f"{prefix}socketio"]


async def _healthz(url: str) -> Mapping[str, object]:
    """GET /healthz over a plain socket (HTTP/1.0: the server closes when done)."""
    host, _, port = url.removeprefix("http://").partition(":")
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        await stream.send_all(f"GET /healthz HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    return json.loads(data.split(b"\r\n\r\n", 1)[1])


async def _cluster_ready(nodes: Sequence[RunningServer]) -> None:
    """Every roomactors node reaches Redis and counts every node alive (else the first
    lists would race the nodes' start-up)."""

    def ready(health: Mapping[str, object]) -> bool:
        cluster = health.get("cluster")
        return (isinstance(cluster, Mapping) and cluster.get("redis") == "reachable"
                and cluster.get("nodes_alive") == len(nodes))  # fmt: skip

    health: Mapping[str, object] = {}
    with trio.move_on_after(READY_TIMEOUT):
        for node in nodes:
            while not ready(health := await _healthz(node.url)):
                await trio.sleep(0.1)
        return
    raise RuntimeError(f"the nodes did not all see Redis and each other within {READY_TIMEOUT:.0f} s: "
                       f"{node.url}/healthz says {health}")


async def _sub_run(
    setup: Setup, scenario: Scenario, target: str, k: int, redis: RedisServer, cpus: Sequence[str],
    load_cpus: str | None,
) -> dict[str, object]:
    """One scenario on one target with k fresh nodes (their own key prefix)."""
    if target == "roomactors" and "--redis" not in setup.available:
        return {"failed": "this roomserver has no --redis option (issue 16): nothing to measure"}
    prefix = f"bench{os.getpid()}-{time.time_ns()}-{target}-{k}:"
    async with AsyncExitStack() as stack:
        nodes: list[RunningServer] = []
        for i in range(k):
            options = replace(setup.options, server_cpus=cpus[i % len(cpus)] if cpus else None)
            nodes.append(
                await stack.enter_async_context(
                    running(target, options, set(setup.available), _flags(target, redis, prefix, i))
                )
            )
        if target == "roomactors":
            await _cluster_ready(nodes)
        outcome = await run_load(
            scenario, node=setup.options.node, url=",".join(n.url for n in nodes),
            server_pid=",".join(str(n.pid) for n in nodes), load_cpus=load_cpus,
        )
        result = outcome.result
        result["node_cpus"] = [cpus[i % len(cpus)] if cpus else None for i in range(k)]
        if "failed" in result:
            result["server_output"] = [b"".join(n.output).decode(errors="replace")[-1500:] for n in nodes]
            result["load_stderr"] = outcome.stderr[-1500:]
        return result


def _combine(scenario: Scenario, k: int, runs: Mapping[int, dict[str, object]]) -> dict[str, object]:
    """The sub-runs side by side ("nodes_1", "nodes_K"), the derived figures, and any
    failure or error of either at the top (where the runner and the report look)."""
    out: dict[str, object] = {"nodes": k, **{f"nodes_{n}": r for n, r in runs.items()}}
    failed = [f"{n} node(s): {r['failed']}" for n, r in runs.items() if "failed" in r]
    if failed:
        out["failed"] = "; ".join(failed)
    errors = {
        f"{n} node(s): {code}": count
        for n, r in runs.items()
        if isinstance(r.get("errors"), Mapping)
        for code, count in r["errors"].items()  # type: ignore[union-attr]
    }
    out["errors"] = errors
    one, many = runs.get(1, {}), runs.get(k, {})
    if workload(scenario) == "fanout":
        a, b = one.get("deliveries_per_second"), many.get("deliveries_per_second")
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a:
            out["scaling"] = round(b / a, 3)
        # What K nodes could carry if each had its core and the client kept up: K times
        # one node's CPU per list over the K nodes' (an estimate, not a measurement).
        a, b = one.get("server_cpu_us_per_delivery"), many.get("server_cpu_us_per_delivery")
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b:
            out["cpu_scaling_estimate"] = round(k * a / b, 3)
    else:
        by = many.get("by_locality")
        if isinstance(by, Mapping):
            local, remote = by.get("local", {}), by.get("remote", {})
            for q in ("p50_ms", "p99_ms"):
                lq, rq = local.get("ack_latency", {}).get(q), remote.get("ack_latency", {}).get(q)
                if isinstance(lq, (int, float)) and isinstance(rq, (int, float)):
                    out[f"remote_minus_local_ack_{q}"] = round(rq - lq, 3)
    return out


async def measure(
    setup: Setup, scenarios: Sequence[Scenario], cpus: Sequence[str], load_cpus: str | None
) -> tuple[Results, dict[str, object]]:
    """Every cluster scenario on every target that has it, on 1 node then K; the
    results, and what the JSON says about the Redis used."""
    results: Results = {}
    k = setup.sizes.cluster_nodes
    wanted = [(s, t) for s in scenarios for t in setup.targets if t in WORKLOADS[workload(s)]]
    try:
        async with open_redis_server() as redis:
            info: dict[str, object] = {"redis_version": redis.version, "node_cpus": list(cpus), "load_cpus": load_cpus}
            for scenario, target in wanted:
                runs: dict[int, dict[str, object]] = {}
                for n in (1, k):
                    t0 = time.monotonic()
                    try:
                        runs[n] = await _sub_run(setup, scenario, target, n, redis, cpus, load_cpus)
                    except Exception as exc:
                        runs[n] = {"failed": f"{type(exc).__name__}: {exc}"}
                    status = f"FAILED {runs[n]['failed']}" if "failed" in runs[n] else "ok"
                    label = f"{scenario.name} ×{n}"
                    print(f"  {label:<22} {target:<11} {time.monotonic() - t0:6.1f} s  {status}", file=sys.stderr)
                results.setdefault(scenario.name, {})[target] = _combine(scenario, k, runs)
    except Exception as exc:  # no redis-server, or it did not start (an ExceptionGroup from its nursery)
        for scenario, target in wanted:
            results.setdefault(scenario.name, {}).setdefault(target, {"failed": f"redis: {exc}", "errors": {}})
        return results, {"redis_version": None, "failed": str(exc)}
    return results, info
