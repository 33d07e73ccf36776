"""The lobby page end to end: Chromium, driven by playwright-core from Node, against
a server running in this test's trio loop.

Why a Node script (``scenario.mjs``) and not Python playwright: playwright-core comes
from npm with the other JavaScript test clients, and the browser is Debian's
Chromium (``setup.sh`` installs it), so no browser download is needed. The script
checks each step as it goes and prints what the pages showed as one JSON line; the
assertions below are on that record, i.e. on what the browsers displayed.

The scenario: a teacher and two students in separate browser contexts; the teacher
creates a room, the students see it appear without reloading and join (one by
keyboard, on a phone-sized window), the teacher sees them, one student leaves, the
teacher closes the room and the remaining student is told and is back in the lobby;
a second create_room hits max_rooms=1 and the error shows next to the form; every
page ends up on WebSocket; a dropped connection shows "reconnecting", the page
signs in again by itself and says the seat was lost; a second tab of the same user takes over. Screenshots go
to ``test-artifacts/browser/<server>/``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import trio

from roomactors.config import RoomServerConfig

pytestmark = pytest.mark.browser

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
JS_DIR = REPO / "tests" / "js"
SCENARIO = HERE / "scenario.mjs"
STANDIN_SERVER = HERE / "standin_server.mjs"
CLIENT_JS = JS_DIR / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts" / "browser"

#: The whole scenario takes about 5 s on a quiet machine; CI machines are shared.
SCENARIO_TIMEOUT = 180.0


@pytest.fixture
def node() -> str:
    """The node binary, or a skip that says what to install (a sync fixture: a skip
    raised inside the trio test loses its message)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (Node 20 is needed for the browser test)")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: run tests/browser/setup.sh")
    for package in ("playwright-core", "socket.io-client"):
        if not (JS_DIR / "node_modules" / package).is_dir():
            pytest.skip(f"{package} is not installed: run tests/browser/setup.sh (npm install in tests/js)")
    return node


async def run_scenario(node: str, base_url: str, artifacts: Path) -> dict[str, Any]:
    """Run ``scenario.mjs`` against ``base_url`` and return its report."""
    with trio.fail_after(SCENARIO_TIMEOUT):
        result = await trio.run_process(
            [node, str(SCENARIO), base_url, str(artifacts)],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            cwd=str(HERE),
        )
    stderr = result.stderr.decode(errors="replace")
    lines = result.stdout.decode(errors="replace").strip().splitlines()
    report = json.loads(lines[-1]) if lines else {}
    assert result.returncode == 0, f"scenario failed: {report.get('error')}\n{stderr[-4000:]}"
    return report


def assert_what_the_pages_showed(report: dict[str, Any]) -> None:
    teacher, alice, bob = (report["pages"][name] for name in ("teacher", "alice", "bob"))

    assert teacher["whoami"] == "Signed in as Ms Rivera (teacher)"
    assert alice["whoami"] == "Signed in as Alice (student)"
    assert bob["whoami"] == "Signed in as Bob (student)"

    # The room as its host sees it, and as the lobby lists it (pasted deck: 3 cards).
    assert teacher["roomTitle"] == "Fractions"
    assert teacher["roomDeck"] == "Week 3 · 3 cards"
    assert teacher["roomHost"] == "Ms Rivera (teacher) — you"
    assert [room["name"] for room in alice["roomsBeforeJoin"]] == ["Fractions"]
    assert alice["roomsBeforeJoin"][0]["meta"] == "Host: Ms Rivera · Deck: Week 3 (3 cards) · 0 / 50 players"
    assert alice["roomHost"] == "Ms Rivera (teacher)"

    # A server error, in words, inside the form that caused it.
    assert alice["createError"] == {
        "text": "The server has too many rooms right now. Try again later.",
        "code": "too_many_rooms",
        "insideForm": "create-form",
    }

    assert teacher["playersAfterJoins"] == ["Alice", "Bob"]
    assert teacher["capacity"] == "2 / 50"
    assert alice["noticeAfterLeave"] == "You left “Fractions”."
    assert teacher["playersAfterLeave"] == ["Bob"]

    assert bob["notice"] == {
        "text": "“Fractions”: The host closed the room. You are back in the lobby.",
        "reason": "host_left",
        "live": "polite",
    }

    for page in (teacher, alice, bob):
        assert page["transport"] == {"attribute": "websocket", "engine": "websocket"}
        assert page["problems"] == []

    # After a dropped connection: "reconnecting", then connected and signed in again;
    # the server counted the drop as leaving, and the page says so.
    assert alice["reconnect"] == {
        "states": ["reconnecting", "connected"],
        "notice": "The connection dropped, so you left “After the drop”.",
        "whoami": "Signed in as Alice (student)",
        "reloaded": False,
    }

    assert bob["replaced"] == {
        "text": "You signed in from another tab or window, so this one stopped.",
        "view": "signin",
        "state": "disconnected",
    }


@pytest.fixture
def serve_roomserver() -> Any:
    try:
        from roomactors.server import serve_roomserver
    except ImportError as exc:  # until roomactors/server.py lands
        pytest.skip(f"roomactors.server is not available yet: {exc}")
    return serve_roomserver


async def test_lobby_page_with_roomserver(nursery: trio.Nursery, node: str, serve_roomserver: Any) -> None:
    config = RoomServerConfig(port=0, client_js_path=str(CLIENT_JS), max_rooms=1)
    server = await nursery.start(serve_roomserver, config)
    artifacts = ARTIFACTS / "roomserver"
    report = await run_scenario(node, server.url, artifacts)
    assert_what_the_pages_showed(report)
    for name in ("lobby.png", "room.png", "room-phone.png", "room-closed-phone.png"):
        assert (artifacts / name).stat().st_size > 0


async def test_lobby_page_with_node_reference_server(node: str) -> None:
    """The same scenario against socket.io 4 on Node (``standin_server.mjs``): the
    page is a correct client of the room protocol as the reference library speaks it."""
    from support.refservers import open_subprocess_server

    async with open_subprocess_server([node, str(STANDIN_SERVER), "--max-rooms", "1"], cwd=HERE) as url:
        artifacts = ARTIFACTS / "node-reference"
        report = await run_scenario(node, url, artifacts)
    assert_what_the_pages_showed(report)
    for name in ("lobby.png", "room.png"):
        assert (artifacts / name).stat().st_size > 0
