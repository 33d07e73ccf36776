"""One benchmark run: every scenario on every server, then the files a reader keeps.

Why scenario-major order (each scenario on every server, then the next scenario):
a slow drift of the machine (another job, thermal limits) then spreads over all
servers instead of landing on one of them.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import cluster, clusterreport, report
from .scenarios import Scenario, Sizes, run_load
from .targets import Options, running, server_argv

Results = dict[str, dict[str, dict[str, object]]]


@dataclass(frozen=True)
class Setup:
    """Everything a run needs, decided before the first server starts."""

    options: Options
    available: frozenset[str]
    """roomserver's options, from its --help."""
    targets: tuple[str, ...]
    scenarios: tuple[Scenario, ...]
    sizes: Sizes
    load_cpus: str | None
    fd_limit: int
    source: str
    """Which roomactors code runs (see source.py)."""
    quick: bool
    node_cpus: tuple[str, ...] = ()
    """The cluster workload's cores, one per node in order (cluster.py); () unpinned."""
    cluster_load_cpus: str | None = None
    """The load client's cores in the cluster workload (None: it floats)."""

    @property
    def fanout_clients(self) -> tuple[int, ...]:
        return tuple(int(s.name.split("-")[1]) for s in self.scenarios if s.name.startswith("fanout-"))

    @property
    def cluster_targets(self) -> tuple[str, ...]:
        """The targets that run some cluster scenario of this run."""
        runs = {t for s in self.scenarios if s.name.startswith("cluster-") for t in cluster.WORKLOADS[cluster.workload(s)]}
        return tuple(t for t in self.targets if t in runs)


async def measure(setup: Setup) -> tuple[Results, dict[str, object]]:
    """Runs the scenarios, one fresh server each, then the cluster ones (cluster.py);
    a failure is recorded, never fatal, so that one server failing does not hide the
    others' numbers. Also returns what the cluster workload ran on (its Redis)."""
    results: Results = {}
    for scenario in setup.scenarios:
        if scenario.name.startswith("cluster-"):
            continue
        for target in setup.targets:
            t0 = time.monotonic()
            result: dict[str, object]
            try:
                async with running(target, setup.options, set(setup.available)) as server:
                    outcome = await run_load(
                        scenario, node=setup.options.node, url=server.url, server_pid=server.pid,
                        load_cpus=setup.load_cpus,
                    )
                    result = outcome.result
                    if "failed" in result:
                        result["server_output"] = b"".join(server.output).decode(errors="replace")[-1500:]
                        result["load_stderr"] = outcome.stderr[-1500:]
            except Exception as exc:
                result = {"failed": f"{type(exc).__name__}: {exc}"}
            results.setdefault(scenario.name, {})[target] = result
            status = f"FAILED {result['failed']}" if "failed" in result else "ok"
            print(f"  {scenario.name:<14} {target:<11} {time.monotonic() - t0:6.1f} s  {status}", file=sys.stderr)
    clustered = [s for s in setup.scenarios if s.name.startswith("cluster-")]
    info: dict[str, object] = {}
    if clustered:
        more, info = await cluster.measure(setup, clustered, setup.node_cpus, setup.cluster_load_cpus)
        results.update(more)
    return results, info


def _single(results: Results) -> Results:
    """The results of the one-server scenarios (the main table's)."""
    return {name: by for name, by in results.items() if not name.startswith("cluster-")}


def document(setup: Setup, results: Results, started: float, cluster_info: dict[str, object]) -> dict[str, object]:
    """The JSON a run leaves behind: the numbers and everything needed to judge them."""
    single = _single(results)
    return {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 1),
        "quick": setup.quick,
        "machine": report.machine(),
        "versions": report.versions(setup.options.node),
        "pinning": {"server_cpus": setup.options.server_cpus, "load_cpus": setup.load_cpus},
        "fd_limit": setup.fd_limit,
        "rate_limit_off": setup.options.rate_limit_off,
        "sizes": setup.sizes.__dict__,
        "roomactors_source": setup.source,
        "servers": {t: " ".join(server_argv(t, setup.options, set(setup.available))[0]) for t in setup.targets},
        "metrics": {
            **report.metric_table(single, setup.targets, setup.fanout_clients),
            **clusterreport.metric_table(results, setup.cluster_targets, setup.sizes),
        },
        "results": results,
        "failures": report.failures(results),
        "interference": report.interference(single, setup.options.server_cpus),
        "targets": [
            *(report.targets_met(single, setup.fanout_clients) if single else []),
            *clusterreport.targets_met(results, setup.sizes),
        ],
        "cluster": cluster_info,
    }


def write(doc: dict[str, object], setup: Setup, results: Results, out: Path, started: float) -> tuple[Path, Path | None]:
    """bench-<time>.json and fanout-<time>.png, and copies named *-latest."""
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started))
    json_path = out / f"bench-{stamp}.json"
    json_path.write_text(json.dumps(doc, indent=2, default=list) + "\n")
    shutil.copyfile(json_path, out / "bench-latest.json")
    png_path = None
    if setup.fanout_clients:
        png_path = out / f"fanout-{stamp}.png"
        report.plot_fanout(results, setup.targets, setup.fanout_clients, png_path)
        shutil.copyfile(png_path, out / "fanout-latest.png")
    return json_path, png_path


def summary(doc: dict[str, object], setup: Setup, results: Results) -> list[str]:
    """What bench/run prints: the machine, the table, each core's use, the warnings."""
    m, v = doc["machine"], doc["versions"]
    assert isinstance(m, dict) and isinstance(v, dict)
    single = _single(results)
    lines = [
        f"{doc['started']}, {m['nproc']} × {m['cpu_model']}, {m['ram_gib']} GiB RAM, Linux {m['kernel']}; "
        f"Python {m['python']} (trio {v.get('trio')}, python-socketio {v.get('python-socketio')} on aiohttp "
        f"{v.get('aiohttp')}); Node {v.get('node')} (socket.io {v.get('socket.io')}, ws {v.get('ws')}); "
        f"roomactors from {doc['roomactors_source']}",
    ]
    if single:
        lines += [
            "",
            report.render_table(single, setup.targets, setup.fanout_clients),
            "",
            "cores busy (" + "/".join(sorted(report.machine_cores())) + ") during each measurement:",
        ]
        lines += [f"  {line}" for line in report.core_lines(single, setup.targets)]
    aims = report.targets_met(single, setup.fanout_clients) if single and {"roomactors", "node", "pysocketio"} <= set(setup.targets) else []
    if len(results) > len(single):
        info = doc.get("cluster") or {}
        assert isinstance(info, dict)
        lines += [
            "",
            f"cluster: 1 node, then {setup.sizes.cluster_nodes} nodes on one redis-server {info.get('redis_version')}; "
            f"nodes on cpu {','.join(setup.node_cpus) or 'any'} (node i on the i-th), "
            f"load client on cpu {setup.cluster_load_cpus or 'any'}",
            "",
            report.render_table(results, setup.cluster_targets, (), clusterreport.metrics(setup.sizes)),
            "",
            "cores busy and each node's share during each cluster measurement:",
            *(f"  {line}" for line in clusterreport.core_lines(results, setup.cluster_targets, setup.sizes)),
        ]
        aims += clusterreport.targets_met(results, setup.sizes)
    if aims:
        lines += ["targets (ratios in the better direction; aims, not tests):", *(f"  {a}" for a in aims)]
    lines += [f"! {line}" for line in _strings(doc["failures"])]
    lines += [f"~ other work on the server's core: {line}" for line in _strings(doc["interference"])]
    return lines


def _strings(value: object) -> Sequence[str]:
    return [str(x) for x in value] if isinstance(value, list) else []
