"""The page has words for every error code and every ``roomclosed`` reason.

Without them the page falls back to the server's message or to "The room was
closed.": understandable, but not what a student should read. Read from
``lobby.js`` as text (no browser): the codes come from the server's own list,
the reasons from docs/protocol.md's ``roomclosed`` section.
"""

from __future__ import annotations

import re
from pathlib import Path

from roomactors.actors.validation import ERROR_CODES

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "roomactors" / "web" / "static" / "lobby.js"
PROTOCOL = ROOT / "docs" / "protocol.md"


def _keys(table: str) -> set[str]:
    """The keys of ``const <table> = { key: "...", ... };`` in lobby.js."""
    block = PAGE.read_text().split(f"const {table} = {{", 1)[1].split("};", 1)[0]
    return set(re.findall(r"^\s*(\w+):", block, re.MULTILINE))


def _roomclosed_reasons() -> set[str]:
    section = PROTOCOL.read_text().split("### `roomclosed`", 1)[1].split("\n### ", 1)[0]
    payload = re.search(r'"reason": ([^}]*)\}', section)
    assert payload is not None, "docs/protocol.md's roomclosed section shows no payload"
    reasons = set(re.findall(r'"(\w+)"', payload.group(1)))
    reasons |= set(re.findall(r"one more reason,\s*`(\w+)`", section))  # the cluster's node_lost
    return reasons


def test_every_error_code_has_the_pages_words() -> None:
    assert _keys("ERROR_TEXT") == set(ERROR_CODES)


def test_every_roomclosed_reason_has_the_pages_words() -> None:
    reasons = _roomclosed_reasons()
    assert {"host_left", "node_lost"} <= reasons
    assert _keys("CLOSED_TEXT") == reasons
