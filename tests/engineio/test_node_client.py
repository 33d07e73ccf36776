"""engine.io-client (the reference JS client, under Node) against our server."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import trio

HERE = Path(__file__).parent
CLIENT = HERE / "node_eio_client.cjs"
MODULES = HERE.parent / "js" / "node_modules" / "engine.io-client"

pytestmark = [
    pytest.mark.node,
    pytest.mark.skipif(shutil.which("node") is None or not MODULES.exists(), reason="needs node and npm install in tests/js"),
]


@pytest.mark.parametrize(
    ("transports", "expected"),
    [
        (["polling", "websocket"], ["hello", '"q"', "bin:010203", "transport:websocket"]),
        (["websocket"], ["hello", '"q"', "bin:010203", "transport:websocket"]),
        (["polling"], ["hello", '"q"', "bin:010203", "transport:polling"]),
    ],
)
async def test_engine_io_client_echo(start_server, transports: list[str], expected: list[str]) -> None:
    started = await start_server()
    with trio.fail_after(30):
        result = await trio.run_process(
            ["node", str(CLIENT), str(started.port), json.dumps(transports)], capture_stdout=True, check=False
        )
    got = json.loads(result.stdout.decode().strip().splitlines()[-1])
    assert result.returncode == 0, got
    if len(transports) > 1:
        assert "upgrade:websocket" in got
    assert [item for item in got if not item.startswith("upgrade:")] == expected
    await started.settled(sessions=0)  # the client's close reached the server
