"""`bench/run --quick` end to end: every scenario against all three servers.

Why no speed assertions: CI machines are shared and noisy, and the targets are
aims, not gates. What must hold is that the benchmark itself works from this
checkout: it completes, every metric has a number for every server, and the plot
exists, so a full run on a quiet machine is one command away.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from support.benchrun import run_bench

pytestmark = pytest.mark.node

SERVERS = ("roomactors", "node", "pysocketio")
QUICK_TIME_BOUND = 300  # seconds; it takes about a minute


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    if shutil.which("node") is None:
        pytest.skip("node is not on PATH")
    out = tmp_path_factory.mktemp("bench")
    return run_bench(["--quick", "--out", str(out)], QUICK_TIME_BOUND), out


def test_quick_run_completes(quick_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    done, _ = quick_run
    assert done.returncode == 0, f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
    header = next(line for line in done.stdout.splitlines() if line.startswith("| metric |"))
    for server in SERVERS:
        assert f" {server} |" in header
    assert "roomactors / node" in header and "roomactors / pysocketio" in header


def test_json_has_every_metric_for_every_server(quick_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, out = quick_run
    document = json.loads((out / "bench-latest.json").read_text())
    metrics = document["metrics"]
    scenarios = {key.split(".")[0] for key in metrics}
    assert {"churn", "connections", "ack", "race"} <= scenarios
    assert len([s for s in scenarios if s.startswith("fanout-")]) >= 2
    missing = [(key, server) for key, by_server in metrics.items() for server in SERVERS if by_server.get(server) is None]
    assert not missing, f"metrics without a value: {missing}; failures: {document['failures']}"
    assert not [r for by in document["results"].values() for r in by.values() if "failed" in r]
    # No ack or list timeouts, no unexpected disconnects, no error answers: else the
    # numbers measure a failing workload.
    errors = {(s, t): r["errors"] for s, by in document["results"].items() for t, r in by.items() if r["errors"]}
    assert not errors
    assert document["machine"]["nproc"] >= 1


def test_fanout_counts_one_list_per_watcher_per_command(quick_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    """The closed loop waits for every watcher, so deliveries are exactly N per command:
    anything else means the load client counted wrong and lists/s means nothing."""
    _, out = quick_run
    results = json.loads((out / "bench-latest.json").read_text())["results"]
    fanouts = {name: by for name, by in results.items() if name.startswith("fanout-")}
    assert fanouts
    for name, by_server in fanouts.items():
        for server in SERVERS:
            result = by_server[server]
            assert result["commands"] > 0, (name, server)
            assert result["deliveries"] == result["deliveries_expected"] == result["commands"] * result["clients"], (name, server)


def test_plot_exists(quick_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, out = quick_run
    png = out / "fanout-latest.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000


def test_race_acks_every_answer_and_observers_see_them(quick_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    """Every answer sent in the measured window is acknowledged, and the observers saw
    each one in a raceprogress: else latency and lag describe a failing race."""
    _, out = quick_run
    races = json.loads((out / "bench-latest.json").read_text())["results"]["race"]
    for server in SERVERS:
        result = races[server]
        assert result["answers_sent"] > 0, server
        assert result["answers_acked"] == result["answers_sent"], server
        assert result["progress_lag"]["count"] > 0, server
        assert result["saturation"]["answers"] > 0, server
