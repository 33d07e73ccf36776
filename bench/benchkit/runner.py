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

from . import report
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

    @property
    def fanout_clients(self) -> tuple[int, ...]:
        return tuple(int(s.name.split("-")[1]) for s in self.scenarios if s.name.startswith("fanout-"))


async def measure(setup: Setup) -> Results:
    """Runs the scenarios, one fresh server each; a failure is recorded, never fatal,
    so that one server failing does not hide the others' numbers."""
    results: Results = {}
    for scenario in setup.scenarios:
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
    return results


def document(setup: Setup, results: Results, started: float) -> dict[str, object]:
    """The JSON a run leaves behind: the numbers and everything needed to judge them."""
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
        "metrics": report.metric_table(results, setup.targets, setup.fanout_clients),
        "results": results,
        "failures": report.failures(results),
        "interference": report.interference(results, setup.options.server_cpus),
        "targets": report.targets_met(results, setup.fanout_clients),
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
    lines = [
        f"{doc['started']}, {m['nproc']} × {m['cpu_model']}, {m['ram_gib']} GiB RAM, Linux {m['kernel']}; "
        f"Python {m['python']} (trio {v.get('trio')}, python-socketio {v.get('python-socketio')} on aiohttp "
        f"{v.get('aiohttp')}); Node {v.get('node')} (socket.io {v.get('socket.io')}, ws {v.get('ws')}); "
        f"roomactors from {doc['roomactors_source']}",
        "",
        report.render_table(results, setup.targets, setup.fanout_clients),
        "",
        "cores busy (" + "/".join(sorted(report.machine_cores())) + ") during each measurement:",
    ]
    lines += [f"  {line}" for line in report.core_lines(results, setup.targets)]
    aims = report.targets_met(results, setup.fanout_clients) if {"roomactors", "node", "pysocketio"} <= set(setup.targets) else []
    if aims:
        lines += ["targets (ratios in the better direction; aims, not tests):", *(f"  {a}" for a in aims)]
    lines += [f"! {line}" for line in _strings(doc["failures"])]
    lines += [f"~ other work on the server's core: {line}" for line in _strings(doc["interference"])]
    return lines


def _strings(value: object) -> Sequence[str]:
    return [str(x) for x in value] if isinstance(value, list) else []
