"""The static checks CI runs with the tests: ``mypy --strict`` on the package (it
ships ``py.typed``, so its types are a promise to every embedder) and ``ruff check``
on all our Python (rules in ``ruff.toml``: pyflakes, pycodestyle errors, bugbear).

Both run as subprocesses of this interpreter from the repository's root, so they see
its configuration (``setup.cfg``'s ``[mypy]``, ``ruff.toml``) and the same installed
packages as the tests. Deselect them with ``-m "not static"``; run only them with
``-m static``.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.static

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 300  # seconds; a cold mypy run of the package takes a few


def _run_module(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m module args`` in the repository's root, or a failure saying what to install."""
    if importlib.util.find_spec(module) is None:
        pytest.fail(f"{module} is not installed: install the test extra (pip install -e '.[test]', as tests/run does)")
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def _explain(result: subprocess.CompletedProcess[str], fix: str) -> str:
    command = " ".join(["python", *result.args[1:]])
    return f"`{command}` exited {result.returncode}; {fix}\n{result.stdout}{result.stderr}"


def test_mypy_strict_passes_on_the_package() -> None:
    result = _run_module("mypy", "--strict", "roomactors")
    assert result.returncode == 0, _explain(
        result, "give the reported code real types (a targeted `# type: ignore[code]` only for untyped third-party code)"
    )


def test_ruff_finds_nothing() -> None:
    result = _run_module("ruff", "check", "roomactors", "tests", "bench", "examples")
    assert result.returncode == 0, _explain(
        result, "fix what it reports (`ruff check --fix` applies the safe fixes; the rules are in ruff.toml)"
    )
