"""The cluster workload's table rows, aims and core use (cluster.py measures).

Why a table of its own: the main table compares servers on one core each; this one
compares one node with K nodes of the same server (a row per node count), so its
ratios are "K nodes ÷ 1 node" rows, and its aims are issue 16's, not the peers'.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .report import Metric, Results
from .scenarios import Sizes

SCALING_AIM = 1.7
"""K nodes deliver at least this many times the lists/s of one (issue 16, for K = 2)."""
CROSS_NODE_ACK_AIM_MS = 2.0
"""A cross-node answer's ack p99 stays within this of a local one, at moderate load."""


@dataclass(frozen=True)
class ClusterMetric(Metric):
    """A metric of a sub-run ("nodes_1", "nodes_K") or of the combination: a failed
    sub-run hides only its own numbers, not the other node count's."""

    def value(self, results: Results, target: str) -> float | None:
        node: object = results.get(self.scenario, {}).get(target)
        for step in self.path:
            if not isinstance(node, Mapping) or (step.startswith("nodes_") and "failed" in node.get(step, {})):
                return None
            node = node.get(step)
        return float(node) if isinstance(node, (int, float)) else None


def race_label(sizes: Sizes) -> str:
    return f"{sizes.cluster_race_rooms} × {sizes.cluster_race_players} × {sizes.cluster_race_rate:g}/s"


def metrics(sizes: Sizes) -> list[Metric]:
    """Every cluster row, in table order."""
    k, n = sizes.cluster_nodes, sizes.cluster_fanout_clients
    one, many = "nodes_1", f"nodes_{k}"
    s = f"cluster-fanout-{n}"
    f = f"cluster fan-out N={n}"

    def m(key: str, label: str, unit: str, higher: bool, scenario: str, *path: str, context: bool = False) -> Metric:
        return ClusterMetric(f"{scenario}.{key}", label, unit, higher, scenario, path, context)

    rows: list[Metric] = []
    for sub, nodes in ((one, "1 node"), (many, f"{k} nodes")):
        rows += [
            m(f"{sub}.deliveries_per_second", f"{f}, {nodes}: lists delivered", "/s", True, s, sub, "deliveries_per_second"),
            m(f"{sub}.latency_p50_ms", f"{f}, {nodes}: latency p50", "ms", False, s, sub, "latency", "p50_ms"),
            m(f"{sub}.latency_p99_ms", f"{f}, {nodes}: latency p99", "ms", False, s, sub, "latency", "p99_ms"),
            m(f"{sub}.server_cpu_us_per_delivery", f"{f}, {nodes}: servers' CPU per list", "µs", False, s, sub,
              "server_cpu_us_per_delivery"),
            m(f"{sub}.server_cpu_share", f"{f}, {nodes}: servers busy (sum)", "cores", False, s, sub, "cpu",
              "server_cpu_share", context=True),
            m(f"{sub}.loadgen_cpu_share", f"{f}, {nodes}: load client busy", "cores", False, s, sub, "cpu",
              "loadgen_cpu_share", context=True),
        ]
    rows.append(m("scaling", f"{f}: lists/s, {k} nodes ÷ 1 node", "×", True, s, "scaling"))
    rows.append(m("cpu_scaling_estimate", f"{f}: estimate from CPU per list, {k} × 1 node's ÷ {k} nodes'", "×", True, s,
                  "cpu_scaling_estimate", context=True))
    r = "cluster-race"
    c = f"cluster race {race_label(sizes)}"
    local, remote = (many, "by_locality", "local"), (many, "by_locality", "remote")
    for q in ("p50", "p99"):
        rows += [
            m(f"{one}.ack_{q}_ms", f"{c}, 1 node: answer ack {q}", "ms", False, r, one, "ack_latency", f"{q}_ms"),
            m(f"{many}.local.ack_{q}_ms", f"{c}, {k} nodes, player on the room's node: answer ack {q}", "ms", False, r,
              *local, "ack_latency", f"{q}_ms"),
            m(f"{many}.remote.ack_{q}_ms", f"{c}, {k} nodes, player on another node: answer ack {q}", "ms", False, r,
              *remote, "ack_latency", f"{q}_ms"),
        ]
    rows.append(m("remote_minus_local_ack_p99_ms", f"{c}, {k} nodes: answer ack p99, other node − room's node", "ms",
                  False, r, "remote_minus_local_ack_p99_ms"))
    for q in ("p50", "p99"):
        rows += [
            m(f"{one}.join_{q}_ms", f"{c}, 1 node: join_room ack {q}", "ms", False, r, one, "join_latency", f"{q}_ms"),
            m(f"{many}.local.join_{q}_ms", f"{c}, {k} nodes, room's node: join_room ack {q}", "ms", False, r, *local,
              "join_latency", f"{q}_ms"),
            m(f"{many}.remote.join_{q}_ms", f"{c}, {k} nodes, from another node: join_room ack {q}", "ms", False, r,
              *remote, "join_latency", f"{q}_ms"),
        ]
    rows += [
        m(f"{one}.progress_lag_p99_ms", f"{c}, 1 node: progress lag p99", "ms", False, r, one, "progress_lag", "p99_ms"),
        m(f"{many}.local.progress_lag_p99_ms", f"{c}, {k} nodes, observer on the room's node: progress lag p99", "ms",
          False, r, *local, "progress_lag", "p99_ms"),
        m(f"{many}.remote.progress_lag_p99_ms", f"{c}, {k} nodes, observer on another node: progress lag p99", "ms",
          False, r, *remote, "progress_lag", "p99_ms"),
        m(f"{one}.server_cpu_share", f"{c}, 1 node: servers busy (sum)", "cores", False, r, one, "cpu",
          "server_cpu_share", context=True),
        m(f"{many}.server_cpu_share", f"{c}, {k} nodes: servers busy (sum)", "cores", False, r, many, "cpu",
          "server_cpu_share", context=True),
    ]
    return rows


def metric_table(results: Results, targets: Sequence[str], sizes: Sizes) -> dict[str, dict[str, float | None]]:
    """Metric key -> target -> value, for the targets that ran each scenario."""
    return {
        m.key: {t: m.value(results, t) for t in targets if t in results.get(m.scenario, {})}
        for m in metrics(sizes)
        if m.scenario in results
    }


def targets_met(results: Results, sizes: Sizes) -> list[str]:
    """Issue 16's aims for roomactors, each with this run's figure and met / NOT met."""
    k = sizes.cluster_nodes
    out = []
    fan = results.get(f"cluster-fanout-{sizes.cluster_fanout_clients}", {}).get("roomactors")
    if fan is not None:
        x = fan.get("scaling")
        shown = f"{x:.2f}×" if isinstance(x, (int, float)) else "—"
        mark = "?" if not isinstance(x, (int, float)) else "met" if x >= SCALING_AIM else "NOT met"
        out.append(f"cluster fan-out N={sizes.cluster_fanout_clients}: {k} nodes ≥ {SCALING_AIM}× the lists/s of 1 node: "
                   f"{shown} ({mark})")
    race = results.get("cluster-race", {}).get("roomactors")
    if race is not None:
        d = race.get("remote_minus_local_ack_p99_ms")
        shown = f"{d:+.2f} ms" if isinstance(d, (int, float)) else "—"
        mark = "?" if not isinstance(d, (int, float)) else "met" if d <= CROSS_NODE_ACK_AIM_MS else "NOT met"
        out.append(f"cluster race {race_label(sizes)}: answer ack p99 from another node within "
                   f"{CROSS_NODE_ACK_AIM_MS:g} ms of the room's node: {shown} ({mark})")
    return out


def core_lines(results: Results, targets: Sequence[str], sizes: Sizes) -> list[str]:
    """Each core's use and each node's share in every sub-run: with as many nodes as
    cores, the load client and Redis share the nodes' cores, and this shows how much."""
    out = []
    for scenario, by_target in results.items():
        if not scenario.startswith("cluster-"):
            continue
        for target in targets:
            combined = by_target.get(target)
            if not isinstance(combined, Mapping):
                continue
            cells = []
            for n in sorted({1, sizes.cluster_nodes}):
                cpu = combined.get(f"nodes_{n}", {}).get("cpu")
                if not isinstance(cpu, Mapping):
                    continue
                cores = cpu.get("core_utilisation", {})
                nodes = cpu.get("server_cpu_share_by_node") or [cpu.get("server_cpu_share")]
                cells.append(
                    f"{n} node(s) cores " + "/".join(f"{v:.0%}" for _, v in sorted(cores.items()))
                    + ", nodes " + "+".join(f"{v:.2f}" for v in nodes if isinstance(v, (int, float)))
                    + f", load client {cpu.get('loadgen_cpu_share')}"
                )
            if cells:
                out.append(f"{scenario} on {target}: " + "; ".join(cells))
    return out
