"""``bench/run`` as the benchmark tests run it: bounded in time, stopped cleanly."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

__all__ = ("REPO", "run_bench")

REPO = Path(__file__).resolve().parents[2]
RUN = REPO / "bench" / "run"


def run_bench(arguments: list[str], time_bound: float) -> subprocess.CompletedProcess[str]:
    """``bench/run ARGUMENTS`` from the checkout; the test fails if it overruns
    ``time_bound`` seconds (after a SIGTERM, on which bench/run stops every server,
    node and redis-server it started)."""
    argv = [str(RUN), *arguments]
    with subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        try:
            stdout, stderr = process.communicate(timeout=time_bound)
        except subprocess.TimeoutExpired:
            process.terminate()
            stdout, stderr = process.communicate(timeout=30)
            pytest.fail(f"bench/run {' '.join(arguments)} overran {time_bound} s:\n{stderr[-3000:]}")
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)
