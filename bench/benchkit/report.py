"""From raw results to what a reader compares: the metric table, the machine, the plot.

Why the ratio is always roomactors / peer: one fixed direction per column keeps
the table honest; each row says whether higher or lower is better, so the reader
never has to guess which way a ratio was flipped.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

Results = Mapping[str, Mapping[str, Mapping[str, object]]]
"""scenario name -> target -> the load client's JSON result."""


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    higher_is_better: bool
    scenario: str
    path: tuple[str, ...]
    context_only: bool = False
    """Neither better nor worse: there to judge the other rows (e.g. CPU use)."""

    def value(self, results: Results, target: str) -> float | None:
        node: object = results.get(self.scenario, {}).get(target)
        if not isinstance(node, Mapping) or "failed" in node:
            return None
        for step in self.path:
            if not isinstance(node, Mapping):
                return None
            node = node.get(step)
        return float(node) if isinstance(node, (int, float)) else None


def metrics(fanout_clients: Sequence[int]) -> list[Metric]:
    """Every metric the table and the JSON carry, in table order."""
    rows: list[Metric] = []
    for n in fanout_clients:
        s = f"fanout-{n}"
        rows += [
            Metric(f"{s}.latency_p50_ms", f"fan-out N={n}: latency p50", "ms", False, s, ("latency", "p50_ms")),
            Metric(f"{s}.latency_p99_ms", f"fan-out N={n}: latency p99", "ms", False, s, ("latency", "p99_ms")),
            Metric(f"{s}.deliveries_per_second", f"fan-out N={n}: lists delivered", "/s", True, s, ("deliveries_per_second",)),
            Metric(f"{s}.server_cpu_us_per_delivery", f"fan-out N={n}: server CPU per list", "µs", False, s, ("server_cpu_us_per_delivery",)),
            Metric(f"{s}.server_cpu_share", f"fan-out N={n}: server busy", "cores", False, s, ("cpu", "server_cpu_share"), True),
            Metric(f"{s}.loadgen_cpu_share", f"fan-out N={n}: load client busy", "cores", False, s, ("cpu", "loadgen_cpu_share"), True),
        ]
    rows += [
        Metric("churn.commands_per_second", "churn: commands, until watchers caught up", "/s", True, "churn", ("commands_per_second",)),
        # Context, not a score: a server that folds simultaneous changes into one list
        # (roomactors) delivers fewer lists for the same commands, and that is the point.
        Metric("churn.watcher_lists_per_second", "churn: lists delivered to watchers", "/s", True, "churn", ("watcher_lists_per_second",), True),
        Metric("churn.ack_p50_ms", "churn: ack latency p50", "ms", False, "churn", ("ack_latency", "p50_ms")),
        Metric("churn.ack_p99_ms", "churn: ack latency p99", "ms", False, "churn", ("ack_latency", "p99_ms")),
        Metric("churn.drain_seconds", "churn: watchers caught up after", "s", False, "churn", ("drain_seconds",), True),
        Metric("connections.connect_seconds", "connections: time to connect all", "s", False, "connections", ("connect_seconds",)),
        Metric("connections.rss_kib_per_websocket", "connections: RSS per WebSocket", "KiB", False, "connections", ("rss_kib_per_websocket",)),
        Metric("connections.rss_kib_per_polling", "connections: RSS per polling client", "KiB", False, "connections", ("rss_kib_per_polling",)),
        Metric("ack.sequential_p50_ms", "ack, 1 client: round trip p50", "ms", False, "ack", ("sequential", "latency", "p50_ms")),
        Metric("ack.sequential_p99_ms", "ack, 1 client: round trip p99", "ms", False, "ack", ("sequential", "latency", "p99_ms")),
        Metric("ack.concurrent_per_second", "ack, many clients: acks", "/s", True, "ack", ("concurrent", "acks_per_second")),
        Metric("ack.concurrent_p50_ms", "ack, many clients: round trip p50", "ms", False, "ack", ("concurrent", "latency", "p50_ms")),
        Metric("ack.concurrent_p99_ms", "ack, many clients: round trip p99", "ms", False, "ack", ("concurrent", "latency", "p99_ms")),
        Metric("race.answers_per_second", "race, fixed pace: answers acknowledged", "/s", True, "race", ("answers_per_second",)),
        Metric("race.ack_p50_ms", "race, fixed pace: answer ack p50", "ms", False, "race", ("ack_latency", "p50_ms")),
        Metric("race.ack_p99_ms", "race, fixed pace: answer ack p99", "ms", False, "race", ("ack_latency", "p99_ms")),
        Metric("race.progress_lag_p50_ms", "race, fixed pace: progress lag p50", "ms", False, "race", ("progress_lag", "p50_ms")),
        Metric("race.progress_lag_p99_ms", "race, fixed pace: progress lag p99", "ms", False, "race", ("progress_lag", "p99_ms")),
        Metric("race.server_cpu_share", "race, fixed pace: server busy", "cores", False, "race", ("cpu", "server_cpu_share"), True),
        Metric("race.schedule_lag_p99_ms", "race, fixed pace: load client sent late by, p99", "ms", False, "race", ("schedule_lag", "p99_ms"), True),
        Metric("race.saturation_answers_per_second", "race, closed loop: answers acknowledged", "/s", True, "race", ("saturation", "answers_per_second")),
        Metric("race.saturation_ack_p99_ms", "race, closed loop: answer ack p99", "ms", False, "race", ("saturation", "ack_latency", "p99_ms")),
        Metric("race.setup_seconds", "race: seating and starting everyone", "s", False, "race", ("setup_seconds",), True),
    ]
    return rows


def metric_table(results: Results, targets: Sequence[str], fanout_clients: Sequence[int]) -> dict[str, dict[str, float | None]]:
    return {m.key: {t: m.value(results, t) for t in targets} for m in metrics(fanout_clients) if m.scenario in results}


def _fmt(x: float | None) -> str:
    if x is None:
        return "—"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def render_table(
    results: Results, targets: Sequence[str], fanout_clients: Sequence[int], rows: Sequence[Metric] | None = None
) -> str:
    """A Markdown table: one row per metric (`rows`, default the main table's), one
    column per server, then the ratios."""
    peers = [t for t in targets if t != "roomactors"]
    has_self = "roomactors" in targets
    head = ["metric", "better", *targets, *(f"roomactors / {p}" for p in peers if has_self)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in metrics(fanout_clients) if rows is None else rows:
        if m.scenario not in results:
            continue
        values = {t: m.value(results, t) for t in targets}
        better = "—" if m.context_only else "higher" if m.higher_is_better else "lower"
        cells = [f"{m.label} ({m.unit})", better]
        cells += [_fmt(values[t]) for t in targets]
        if has_self:
            for p in peers:
                a, b = values["roomactors"], values[p]
                cells.append("—" if a is None or not b or m.context_only else f"{a / b:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets_met(results: Results, fanout_clients: Sequence[int]) -> list[str]:
    """The issue's aims, each with the measured ratio and whether this run met it
    (an aim, not a test: CI never fails on these)."""

    def v(scenario: str, target: str, *path: str) -> float | None:
        return Metric("", "", "", False, scenario, path).value(results, target)

    def line(aim: str, measured: float | None, ok: bool | None, unit: str = "×") -> str:
        shown = "—" if measured is None else f"{measured:.2f}{unit}"
        mark = "?" if ok is None else "met" if ok else "NOT met"
        return f"{aim}: {shown} ({mark})"

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or not b else a / b

    out = []
    for n in fanout_clients:
        s = f"fanout-{n}"
        r = ratio(v(s, "roomactors", "deliveries_per_second"), v(s, "pysocketio", "deliveries_per_second"))
        out.append(line(f"fan-out N={n}, lists/s ≥ 8× python-socketio", r, None if r is None else r >= 8))
        r = ratio(v(s, "roomactors", "deliveries_per_second"), v(s, "node", "deliveries_per_second"))
        out.append(line(f"fan-out N={n}, lists/s ≥ 1× Node", r, None if r is None else r >= 1))
        r = ratio(v(s, "pysocketio", "latency", "p50_ms"), v(s, "roomactors", "latency", "p50_ms"))
        out.append(line(f"fan-out N={n}, command latency p50 ≥ 2× better than python-socketio", r, None if r is None else r >= 2))
    kib = v("connections", "roomactors", "rss_kib_per_websocket")
    count = v("connections", "roomactors", "websockets")
    out.append(
        line(f"RSS per idle WebSocket ≤ 20 KiB (at {count or 0:,.0f})", kib, None if kib is None else kib <= 20, " KiB")
    )
    for label, path in (("ack round trip p50, 1 client", ("sequential", "latency", "p50_ms")),
                        ("ack round trip p50, many clients", ("concurrent", "latency", "p50_ms"))):
        r = ratio(v("ack", "pysocketio", *path), v("ack", "roomactors", *path))
        out.append(line(f"{label} ≥ 2× better than python-socketio", r, None if r is None else r >= 2))
    r = ratio(v("churn", "pysocketio", "ack_latency", "p50_ms"), v("churn", "roomactors", "ack_latency", "p50_ms"))
    out.append(line("churn ack latency p50 ≥ 2× better than python-socketio (which acks before its lists go out)",
                    r, None if r is None else r >= 2))
    race = results.get("race", {}).get("roomactors", {})
    size = (f"{race.get('rooms')} rooms × {race.get('players_per_room')} players × {race.get('rate_per_player')}/s"
            if "rooms" in race else "race")  # fmt: skip
    ms = v("race", "roomactors", "ack_latency", "p99_ms")
    out.append(line(f"{size}: answer ack p99 ≤ 50 ms (aim at 200 × 25 × 1/s)", ms, None if ms is None else ms <= 50, " ms"))
    ms = v("race", "roomactors", "progress_lag", "p99_ms")
    out.append(line(f"{size}: progress lag p99 ≤ 300 ms (aim at 200 × 25 × 1/s)", ms, None if ms is None else ms <= 300, " ms"))
    r = ratio(v("race", "roomactors", "saturation", "answers_per_second"), v("race", "node", "saturation", "answers_per_second"))
    out.append(line("race, closed loop: answers/s ≥ 1× Node (compare the ack p99 rows too)", r, None if r is None else r >= 1))
    return [x for x in out if not x.split(": ")[-1].startswith("— (?)")]


def failures(results: Results) -> list[str]:
    out = []
    for scenario, by_target in results.items():
        for target, result in by_target.items():
            if "failed" in result:
                out.append(f"{scenario} on {target}: {result['failed']}")
            errors = result.get("errors")
            if isinstance(errors, Mapping) and errors:
                out.append(f"{scenario} on {target}: errors {dict(errors)}")
    return out


def _windows(result: Mapping[str, object]) -> list[Mapping[str, object]]:
    """The CPU windows in one result (the ack scenario has two)."""
    found = []
    for value in [result, *result.values()]:
        if isinstance(value, Mapping) and isinstance(value.get("cpu"), Mapping):
            found.append(value["cpu"])
    return found


def core_lines(results: Results, targets: Sequence[str]) -> list[str]:
    """Each core's utilisation over each measured window, per scenario and server: if
    the load client's core is full, the load client may be what was measured."""
    out = []
    for scenario, by_target in results.items():
        cells = []
        for target in targets:
            windows = _windows(by_target.get(target, {}))
            if windows:
                cores = windows[-1].get("core_utilisation", {})
                if isinstance(cores, Mapping):
                    cells.append(f"{target} " + "/".join(f"{v:.0%}" for _, v in sorted(cores.items())))
        if cells:
            out.append(f"{scenario}: " + ", ".join(cells))
    return out


def interference(results: Results, server_cpus: str | None, threshold: float = 0.15) -> list[str]:
    """Measurements during which something other than the server kept the server's
    core busy (the machine is shared): those numbers understate the server."""
    if not server_cpus or not server_cpus.isdigit():
        return []
    core = f"cpu{server_cpus}"
    out = []
    for scenario, by_target in results.items():
        for target, result in by_target.items():
            for cpu in _windows(result):
                busy, share = cpu.get("core_utilisation", {}).get(core), cpu.get("server_cpu_share")
                if isinstance(busy, (int, float)) and isinstance(share, (int, float)) and busy - share > threshold:
                    out.append(f"{scenario} on {target}: {core} was {busy:.0%} busy, the server used {share:.0%} of it")
    return out


def machine_cores() -> list[str]:
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return []
    return [line.split()[0] for line in lines if line.startswith("cpu") and line[3:4].isdigit()]


def versions(node: str) -> dict[str, str]:
    """The stacks under test, as installed: a skeptic's first question."""
    import subprocess
    from importlib import metadata

    from .targets import BENCH

    out: dict[str, str] = {}
    for dist in ("python-socketio", "python-engineio", "aiohttp", "trio", "wsproto", "trio-websocket", "h11"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    probe = (
        "const r = (m) => { try { return require(m + '/package.json').version } catch { "
        f"return require('module').createRequire({str(BENCH.parent / 'tests' / 'js' / 'package.json')!r})(m + '/package.json').version }} }};"
        "console.log(JSON.stringify({node: process.version, 'socket.io': r('socket.io'), ws: r('ws')}))"
    )
    try:
        done = subprocess.run([node, "-e", probe], cwd=BENCH, capture_output=True, text=True, timeout=60, check=True)
        out.update(json.loads(done.stdout))
    except (subprocess.SubprocessError, ValueError):
        pass
    return out


def machine() -> dict[str, object]:
    """What a reader needs to judge the numbers: cores, CPU model, RAM, software."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "ram_gib": round(mem_kib / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def plot_fanout(results: Results, targets: Sequence[str], fanout_clients: Sequence[int], path: Path) -> None:
    """Fan-out latency (p50 solid, p99 dashed) against N, one colour per server; and
    beside it the lists delivered per second."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (latency_ax, rate_ax) = plt.subplots(1, 2, figsize=(11, 4.5), dpi=120)

    def series(target: str, *path: str) -> tuple[list[int], list[float]]:
        points = [
            (n, v)
            for n in fanout_clients
            if (v := Metric("", "", "", False, f"fanout-{n}", path).value(results, target)) is not None
        ]
        return [p[0] for p in points], [p[1] for p in points]

    for i, target in enumerate(targets):
        colour = f"C{i}"
        for quantile, style in (("p50_ms", "-"), ("p99_ms", "--")):
            xs, ys = series(target, "latency", quantile)
            if xs:
                latency_ax.plot(xs, ys, style, marker="o", color=colour, label=f"{target} {quantile[:3]}")
        xs, ys = series(target, "deliveries_per_second")
        if xs:
            rate_ax.plot(xs, ys, "-", marker="o", color=colour, label=target)
    latency_ax.set_ylabel("command → last client has the list (ms)")
    latency_ax.set_yscale("log")
    latency_ax.set_title("Lobby fan-out latency")
    rate_ax.set_ylabel("lists delivered per second")
    rate_ax.set_ylim(bottom=0)
    rate_ax.set_title("Lobby fan-out throughput")
    for ax in (latency_ax, rate_ax):
        ax.set_xlabel("clients in the lobby (N)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
