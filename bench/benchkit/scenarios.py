"""The workloads, their sizes, and one run of the load client against one server.

Why each scenario gets a fresh server: a memory figure taken after a fan-out run,
or a latency taken with 10,000 idle sessions still being cleaned up, would measure
what the previous scenario left behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import trio

from .targets import BENCH, REPO

RAWLOAD = BENCH / "load" / "rawload.mjs"


@dataclass(frozen=True)
class Sizes:
    """How big and how long each scenario is; `--quick` and the full run differ only here."""

    fanout_clients: tuple[int, ...] = (1000, 5000)
    fanout_seconds: float = 15.0
    fanout_commands: int = 2000
    churn_watchers: int = 500
    churn_rooms: int = 10
    churn_players: int = 100
    churn_seconds: float = 15.0
    churn_drain_timeout: float = 60.0
    """Seconds the watchers get to catch up with the last list after the churn."""
    websockets: int = 10_000
    polling: int = 1000
    ack_clients: int = 200
    ack_seconds: float = 10.0
    ack_commands: int = 200_000
    race_rooms: int = 200
    race_players: int = 25
    """Players per room, besides its host."""
    race_rate: float = 1.0
    """Answers per second per player (the issue's aim: 200 × 25 × 1 = 5,000/s)."""
    race_warmup: float = 5.0
    race_seconds: float = 20.0
    race_saturate: float = 10.0
    """Seconds of closed-loop answering after the paced part (0: none)."""
    cluster_nodes: int = 2
    """The cluster workload (cluster.py) runs on 1 node, then on this many."""
    cluster_fanout_clients: int = 1000
    cluster_fanout_seconds: float = 10.0
    cluster_race_rooms: int = 20
    cluster_race_players: int = 10
    cluster_race_rate: float = 1.0
    """Answers per second per player: "moderate load" (20 × 10 × 1 = 200 answers/s)."""
    cluster_race_warmup: float = 3.0
    cluster_race_seconds: float = 15.0

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            fanout_clients=(100, 400),
            fanout_seconds=2.0,
            fanout_commands=400,
            churn_watchers=60,
            churn_rooms=5,
            churn_players=20,
            churn_seconds=1.5,
            churn_drain_timeout=20.0,
            websockets=400,
            polling=40,
            ack_clients=50,
            ack_seconds=1.5,
            ack_commands=20_000,
            race_rooms=4,
            race_players=5,
            race_rate=2.0,
            race_warmup=1.0,
            race_seconds=2.0,
            race_saturate=1.0,
            cluster_fanout_clients=100,
            cluster_fanout_seconds=2.0,
            cluster_race_rooms=4,
            cluster_race_players=4,
            cluster_race_rate=2.0,
            cluster_race_warmup=1.0,
            cluster_race_seconds=2.0,
        )


@dataclass(frozen=True)
class Scenario:
    name: str
    """Key in the results: "fanout-1000", "churn", "connections", "ack", "race"."""
    args: tuple[str, ...]
    time_bound: float
    """Seconds after which the load client is stopped and the scenario counts as failed."""


def plan(sizes: Sizes, *, client_rate: float, creators: int) -> list[Scenario]:
    """The scenarios in run order. `client_rate` > 0 paces every connection under a
    per-connection rate limit that could not be turned off (see README)."""
    pacing = ("--client-rate", str(client_rate)) if client_rate else ()
    connect_budget = 120.0
    scenarios = [
        Scenario(
            f"fanout-{n}",
            ("--scenario", "fanout", "--clients", str(n), "--duration", str(sizes.fanout_seconds),
             "--commands", str(sizes.fanout_commands), "--creators", str(creators), *pacing),
            connect_budget + sizes.fanout_seconds * 3 + n / 50,
        )
        for n in sizes.fanout_clients
    ]
    scenarios.append(
        Scenario(
            "churn",
            ("--scenario", "churn", "--watchers", str(sizes.churn_watchers), "--rooms", str(sizes.churn_rooms),
             "--players", str(sizes.churn_players), "--duration", str(sizes.churn_seconds),
             "--drain-timeout", str(sizes.churn_drain_timeout), *pacing),
            connect_budget + sizes.churn_seconds * 3 + sizes.churn_drain_timeout,
        )
    )
    scenarios.append(
        Scenario(
            "connections",
            ("--scenario", "connections", "--websockets", str(sizes.websockets), "--polling", str(sizes.polling),
             "--duration", "0"),
            connect_budget + (sizes.websockets + sizes.polling) / 25,
        )
    )
    scenarios.append(
        Scenario(
            "ack",
            ("--scenario", "ack", "--ack-clients", str(sizes.ack_clients), "--duration", str(sizes.ack_seconds),
             "--commands", str(sizes.ack_commands), *pacing),
            connect_budget + sizes.ack_seconds * 4,
        )
    )
    race_clients = sizes.race_rooms * (sizes.race_players + 1)
    scenarios.append(
        Scenario(
            "race",
            ("--scenario", "race", "--rooms", str(sizes.race_rooms), "--race-players", str(sizes.race_players),
             "--race-rate", str(sizes.race_rate), "--race-warmup", str(sizes.race_warmup),
             "--duration", str(sizes.race_seconds), "--race-saturate", str(sizes.race_saturate), *pacing),
            connect_budget + race_clients / 25 + sizes.race_warmup + sizes.race_seconds * 2 + sizes.race_saturate * 2 + 30,
        )
    )
    return scenarios


@dataclass
class Outcome:
    result: dict[str, object] = field(default_factory=dict)
    stderr: str = ""


async def run_load(
    scenario: Scenario, *, node: str, url: str, server_pid: int | str, load_cpus: str | None
) -> Outcome:
    """Runs the load client once; its JSON line is the result (with "failed" on error).
    Several servers (a cluster): `url` and `server_pid` are comma-separated lists."""
    pin = ["taskset", "-c", load_cpus] if load_cpus else []
    argv = [
        *pin, node, str(RAWLOAD), "--url", url, "--server-pid", str(server_pid),
        "--clk-tck", str(os.sysconf("SC_CLK_TCK")), *scenario.args,
    ]
    # stderr goes to a file, so that a load client stopped for overrunning still says
    # how far it got (its progress lines).
    with tempfile.TemporaryFile() as err:
        with trio.move_on_after(scenario.time_bound) as scope:
            done = await trio.run_process(argv, capture_stdout=True, stderr=err, check=False, cwd=str(REPO))
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    if scope.cancelled_caught:
        return Outcome({"failed": f"overran its time bound of {scenario.time_bound:.0f} s"}, stderr)
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        result = {"failed": f"load client exited {done.returncode} without a result"}
    if done.returncode != 0 and "failed" not in result:
        result["failed"] = f"load client exited {done.returncode}"
    return Outcome(result, stderr)


def check_node_modules(node: str) -> None:
    """The load client needs `ws`; fail early with the fix rather than mid-run."""
    probe = (
        "import('ws').catch(() => require('module').createRequire("
        f"{json.dumps(str(REPO / 'tests' / 'js' / 'package.json'))})('ws'))"
    )
    subprocess.run([node, "-e", probe], check=True, cwd=str(BENCH), capture_output=True, timeout=60)


def relative(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)
