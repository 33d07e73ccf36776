"""Behind Debian's nginx: TLS at the proxy, real clients over https and wss.

nginx runs on 127.0.0.1 with a certificate the test made and the config of
``tests/proxy/nginx.conf.template`` (the one docs/deployment.md shows); the
room server listens on plain HTTP behind it. python-socketio and
socket.io-client go through nginx on long-polling and on WebSocket. With
``forwarded_allow_ips`` naming nginx, the per-address limit counts the real
clients (each from its own loopback address), not nginx.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
from support.certs import TestCertificates, tls_options
from support.clientapi import ConnectRefused, wait_websocket
from support.clients import client_params, open_clients
from support.nginx import NginxProxy, open_nginx
from support.nodeclient import open_node_clients

from roomactors.config import RoomServerConfig
from roomactors.server import RoomServer, serve_roomserver

DECK = {"name": "Week 3", "flashcards": [{"id": 1, "problem": "1/2+1/4", "answer": "3/4"}]}


@pytest.fixture
async def proxied(
    nursery: trio.Nursery, certificates: TestCertificates, tmp_path: Path
) -> AsyncIterator[tuple[RoomServer, NginxProxy]]:
    server: RoomServer = await nursery.start(serve_roomserver, RoomServerConfig(port=0, shutdown_timeout=5))
    async with open_nginx([server.port], certificates, tmp_path) as proxy:
        yield server, proxy
    nursery.cancel_scope.cancel()


@pytest.mark.parametrize("transports", [None, ["websocket"]], ids=["polling-then-upgrade", "websocket"])
@pytest.mark.parametrize("client_kind", client_params())
async def test_real_clients_play_through_nginx(
    proxied: tuple[RoomServer, NginxProxy],
    certificates: TestCertificates,
    client_kind: str,
    transports: list[str] | None,
) -> None:
    server, proxy = proxied
    options = tls_options(client_kind, certificates.ca)
    if transports:
        options["transports"] = transports
    async with open_clients(client_kind) as clients:
        host = clients.connect(proxy.url, "/lobby", **options)
        player = clients.connect(proxy.url, "/", **options)
        await host.wait_connected()
        await player.wait_connected()
        await host.call("join_lobby", {"id": 1, "username": "mia", "auth_level": "teacher"})
        (created,) = await host.call("create_room", {"name": "Fractions", "deck": DECK})
        await player.call("join_lobby", {"id": 2, "username": "sam"})
        assert (await player.call("join_room", {"id": created["room"]["id"]}))[0]["ok"] is True
        (rooms,) = await host.next_event("updaterooms", where=lambda args: args[0] and args[0][0]["players"])
        assert [p["id"] for p in rooms[0]["players"]] == [2]
        await wait_websocket(host)
        await wait_websocket(player)
        assert server.statistics().connections == 2
        # A quiet moment longer than nginx's defaults would not cut anything:
        # the config's timeouts are above the ping interval (checked by reading it).
        host.emit("leave_room", {"id": created["room"]["id"]})
        assert await player.next_event("roomclosed") == [{"id": created["room"]["id"], "reason": "host_left"}]


def test_config_timeouts_are_above_the_ping_interval_and_timeout() -> None:
    text = (Path(__file__).parent / "nginx.conf.template").read_text()
    defaults = RoomServerConfig()
    for directive in ("proxy_read_timeout", "proxy_send_timeout"):
        seconds = int(text.split(directive, 1)[1].split(";", 1)[0].strip().removesuffix("s"))
        assert seconds > defaults.ping_interval + defaults.ping_timeout
    assert "ip_hash;" in text and "proxy_set_header Upgrade $http_upgrade;" in text


@pytest.mark.node
async def test_per_address_limit_counts_the_real_clients_not_nginx(
    nursery: trio.Nursery, certificates: TestCertificates, tmp_path: Path
) -> None:
    config = RoomServerConfig(
        port=0, shutdown_timeout=5, max_sessions_per_address=1, forwarded_allow_ips=("127.0.0.1",)
    )
    server: RoomServer = await nursery.start(serve_roomserver, config)
    async with open_nginx([server.port], certificates, tmp_path) as proxy, open_node_clients() as clients:
        # socket.io-client's WebSocket transport can pick its source address:
        # two machines, as nginx sees them, and a second tab on the first.
        def connect(address: str) -> Any:
            return clients.connect(
                proxy.url, "/lobby", transports=["websocket"], localAddress=address,
                rejectUnauthorized=False, reconnection=False,
            )

        first = connect("127.0.0.2")
        await first.wait_connected()
        second = connect("127.0.0.3")
        await second.wait_connected()  # nginx's own address would have been over the limit here
        assert server.statistics().connections == 2
        third = connect("127.0.0.2")
        with pytest.raises(ConnectRefused):
            await third.wait_connected()
    nursery.cancel_scope.cancel()
