"""What real clients make of a refused handshake (HTTP 503, docs/limits.md):
python-socketio and socket.io-client (Node) both report a connection error, and
socket.io-client's own reconnection gets in once a place is free."""

from __future__ import annotations

import pytest
from robustness.rawclients import RawPolling
from robustness.serving import running_server
from support.waiting import wait_until
from support.clientapi import ConnectRefused
from support.clients import client_params, open_clients

from roomactors.config import RoomServerConfig


@pytest.mark.parametrize("client_kind", client_params())
async def test_a_real_client_is_refused_at_the_limit_and_gets_in_later(client_kind: str) -> None:
    config = RoomServerConfig(port=0, max_connections=1, shutdown_timeout=1)
    async with running_server(config) as running, open_clients(client_kind) as clients:
        holder = await RawPolling.open(running.port)  # takes the only place
        client = clients.connect(running.server.url, "/lobby", transports=["polling"])
        with pytest.raises(ConnectRefused) as refused:
            await client.wait_connected()
        if client_kind == "python":  # python-engineio passes the JSON body's message on
            assert refused.value.message == "the server holds its limit of 1 connections; try again later"
        else:  # socket.io-client only says the transport failed
            assert refused.value.message == "xhr poll error"
        engine = running.server.sio.engineio
        assert engine.statistics().sessions_refused >= 1
        assert running.statistics().connections == 1

        await holder.post("1")  # leaves: the place is free again
        await holder.aclose()
        if client_kind == "node":
            # socket.io-client retries by itself (reconnection is on by default).
            await client.next_event("connect", timeout=15)
            (reply,) = await client.call("join_lobby", {"id": 1})
            assert reply["ok"] is True
        else:
            # python-socketio gives up on a failed first connect; a new one gets in.
            await wait_until(lambda: running.statistics().connections == 0, timeout=5, state=running.statistics)
            again = clients.connect(running.server.url, "/lobby", transports=["polling"])
            await again.wait_connected()
            (reply,) = await again.call("join_lobby", {"id": 1})
            assert reply["ok"] is True
