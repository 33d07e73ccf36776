"""The 2017 game client in its own setting: socket.io-client 1.7 (and 2.x) in
Chromium, a teacher and a student page running Lobby.js's sequence against the
room server (``legacy_2017.mjs``). A browser is an XHR2 client, so this is what
exercises Engine.IO v3's binary polling payloads with real libraries (Node's
socket.io-client asks for base64 text instead); the names are non-ASCII on
purpose. Assertions are on what the pages received.
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
JS_DIR = HERE.parent / "js"
SCRIPT = HERE / "legacy_2017.mjs"
CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT = 180.0


@pytest.fixture
def node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (Node 20 is needed for the browser test)")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: run tests/browser/setup.sh")
    if not (JS_DIR / "node_modules" / "playwright-core").is_dir():
        pytest.skip("playwright-core is not installed: run tests/browser/setup.sh (npm install in tests/js)")
    return node


@pytest.mark.parametrize("library", ["socket.io-client-1", "socket.io-client-2"])
@pytest.mark.parametrize("transports", ["default", '["polling"]'], ids=["polling+upgrade", "polling-only"])
async def test_the_2017_client_in_chromium(nursery: trio.Nursery, node: str, library: str, transports: str) -> None:
    from roomactors.server import serve_roomserver

    bundle = JS_DIR / "node_modules" / library / "dist" / "socket.io.js"
    if not bundle.is_file():
        pytest.skip(f"{library} is not installed: npm install in {JS_DIR}")
    server = await nursery.start(serve_roomserver, RoomServerConfig(port=0, command_rate=0))
    with trio.fail_after(TIMEOUT):
        result = await trio.run_process(
            [node, str(SCRIPT), server.url, str(bundle), transports],
            capture_stdout=True, capture_stderr=True, check=False, cwd=str(HERE),
        )
    lines = result.stdout.decode(errors="replace").strip().splitlines()
    report: dict[str, Any] = json.loads(lines[-1]) if lines else {}
    assert result.returncode == 0, f"{report.get('error')}\n{result.stderr.decode(errors='replace')[-3000:]}"
    for name in ("teacher", "student"):
        page = report[name]
        assert page["errors"] == [], page["errors"]  # JSON.parse(data) never failed
        assert page["supportsBinary"] is True  # XHR2: binary polling payloads
        assert page["transport"] == ("polling" if transports != "default" else "websocket")
        assert page["lastList"] == []
        names = [room["name"] for rooms in page["lists"] for room in rooms]
        assert set(names) == {"Brüche ½ 😀"}
        hosts = {room["host"]["username"] for rooms in page["lists"] for room in rooms}
        assert hosts == {"Ms Frizzle ½ 🦊"}
    seated = [[(p["id"], p["username"]) for p in room["players"]] for rooms in report["teacher"]["lists"] for room in rooms]
    assert [(2, "Zoë")] in seated
    (closed,) = report["student"]["events"]
    assert closed[0] == "roomclosed" and closed[1]["reason"] == "host_left"  # an object, not text
    assert report["teacher"]["events"] == []
