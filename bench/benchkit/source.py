"""Where roomactors runs from: this checkout's files, or a commit exported aside.

Why: the checkout is shared with people editing the server while the benchmark
runs; a number is only worth quoting when it names the code it measured, and
``--roomactors-ref`` measures a commit instead of half-saved files.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

from .targets import REPO


def _git(*argv: str) -> str:
    done = subprocess.run(["git", *argv], cwd=REPO, capture_output=True, text=True, check=True, timeout=60)
    return done.stdout.strip()


def roomactors_source(ref: str | None, tmp: Path) -> tuple[Path | None, str]:
    """The tree to run roomactors from (None: this checkout) and how the results name
    it: the commit, and whether the working tree had uncommitted changes to it.
    With `ref`, ``roomactors/`` and ``bin/`` of that commit are extracted into `tmp`."""
    try:
        if ref is None:
            dirty = bool(_git("status", "--porcelain", "--", "roomactors", "bin"))
            head = _git("rev-parse", "--short", "HEAD")
            return None, f"working tree at {head}" + (" + uncommitted changes" if dirty else "")
        commit = _git("rev-parse", "--verify", f"{ref}^{{commit}}")
    except (OSError, subprocess.SubprocessError) as exc:
        if ref is not None:
            raise SystemExit(f"bench/run: cannot resolve --roomactors-ref {ref!r}: {exc}") from exc
        return None, "working tree (not a git checkout)"
    archive = subprocess.run(
        ["git", "archive", commit, "roomactors", "bin"], cwd=REPO, capture_output=True, check=True, timeout=60
    )
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(tmp, filter="data")
    return tmp, f"{ref} = {commit[:12]}"
