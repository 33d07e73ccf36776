"""The lobby page in Chromium: once through nginx over https/wss, once without
its client library (the offline case a newcomer meets first).

Driven by ``browser_check.mjs`` (playwright-core, Debian's Chromium, as the
other browser test); assertions on what the page did and showed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import trio
from support.certs import TestCertificates
from support.nginx import open_nginx

from roomactors.config import RoomServerConfig
from roomactors.server import RoomServer, serve_roomserver

pytestmark = pytest.mark.browser

HERE = Path(__file__).resolve().parent
JS_DIR = HERE.parent / "js"
CLIENT_JS = JS_DIR / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (Node 20 is needed for the browser tests)")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: run tests/browser/setup.sh")
    if not (JS_DIR / "node_modules" / "playwright-core").is_dir() or not CLIENT_JS.exists():
        pytest.skip("playwright-core or socket.io-client missing: run tests/browser/setup.sh")
    return node


async def check(node: str, mode: str, url: str) -> dict[str, Any]:
    with trio.fail_after(120):
        result = await trio.run_process(
            [node, str(HERE / "browser_check.mjs"), mode, url], capture_stdout=True, capture_stderr=True, check=False
        )
    lines = result.stdout.decode(errors="replace").strip().splitlines()
    report: dict[str, Any] = json.loads(lines[-1]) if lines else {}
    assert result.returncode == 0, f"{report.get('error')}\n{result.stderr.decode(errors='replace')[-3000:]}"
    return report


async def test_the_page_through_nginx_uses_https_and_wss(
    node: str, nursery: trio.Nursery, certificates: TestCertificates, tmp_path: Path
) -> None:
    config = RoomServerConfig(port=0, shutdown_timeout=5, client_js_path=str(CLIENT_JS))
    server: RoomServer = await nursery.start(serve_roomserver, config)
    async with open_nginx([server.port], certificates, tmp_path) as proxy:
        report = await check(node, "proxy", proxy.url + "/")
    assert report == {"protocol": "https:", "transport": "websocket", "ack": True}
    nursery.cancel_scope.cancel()


async def test_without_its_client_the_page_says_whom_to_ask_and_never_submits(
    node: str, nursery: trio.Nursery
) -> None:
    # A client URL on this server that does not exist: what a page sees offline.
    config = RoomServerConfig(port=0, shutdown_timeout=5, client_js_url="/static/missing-socket.io.min.js")
    server: RoomServer = await nursery.start(serve_roomserver, config)
    report = await check(node, "offline", server.url + "/")
    assert "whoever runs this server" in report["notice"] and "--client-js-path" in report["notice"]
    assert report["navigated"] is False
    assert report["href"] == server.url + "/"  # no form data in the URL
    nursery.cancel_scope.cancel()
