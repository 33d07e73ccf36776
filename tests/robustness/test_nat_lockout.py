"""Finding 6 of issue 10: one student behind the school's shared NAT address
must not lock the whole school out.

Everyone behind one NAT has one address, so the per-address TCP share is
theirs together. A script that fills it with idle sockets (connected, no
request sent) used to have every other client of the address closed at once.
Now sockets still sending their first request have a budget of their own, and
the oldest of them makes room for a newcomer: an idle socket is soon the
oldest, and a real client sends its request at once.

The test: real clients (python-socketio, socket.io-client under Node) and an
attacker share 127.0.0.1; the attacker holds more idle sockets than the
address's whole TCP share and opens a new one 5 ms after each it loses.
Meanwhile the clients already in keep answering, and a fresh client joins the
lobby and gets its list within 2 s.
"""

from __future__ import annotations

import pytest
import trio
from robustness.rawclients import open_stream
from robustness.serving import running_server
from support.clients import client_params, open_clients
from support.waiting import wait_until

from roomactors.config import RoomServerConfig

PER_ADDRESS = 20
TCP_SHARE = 3 * PER_ADDRESS  # docs/limits.md: three TCP connections per allowed session
ATTACK_SOCKETS = TCP_SHARE + 20
ATTACK_OPENS = 50_000  # the attacker's bound: it stops reopening after this many
REOPEN_AFTER = 0.005


class IdleSocketAttacker:
    """Holds ``sockets`` idle TCP connections to ``port``, each reopened
    ``REOPEN_AFTER`` seconds after the server closed it; never sends a byte."""

    def __init__(self, port: int, sockets: int) -> None:
        self.port = port
        self.sockets = sockets
        self.opened = 0
        self.lost = 0

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            for _ in range(self.sockets):
                nursery.start_soon(self._hold_one)

    async def _hold_one(self) -> None:
        while self.opened < ATTACK_OPENS:
            self.opened += 1
            try:
                stream = await open_stream(self.port)
            except OSError:
                await trio.sleep(REOPEN_AFTER)
                continue
            try:
                while await stream.receive_some(1024):
                    pass
            except trio.BrokenResourceError:
                pass
            finally:
                await trio.aclose_forcefully(stream)
            self.lost += 1
            await trio.sleep(REOPEN_AFTER)


@pytest.mark.parametrize("client_kind", client_params())
async def test_an_attacker_behind_a_shared_address_cannot_lock_out_its_neighbours(client_kind: str) -> None:
    config = RoomServerConfig(port=0, max_sessions_per_address=PER_ADDRESS, shutdown_timeout=1)
    async with running_server(config) as running, open_clients(client_kind) as clients:
        url = running.server.url
        engine = running.server.sio.engineio
        neighbours = []
        for n, transports in enumerate([["websocket"], ["websocket"], ["polling", "websocket"], ["polling"]]):
            sock = clients.connect(url, "/lobby", transports=transports)
            await sock.wait_connected()
            (reply,) = await sock.call("join_lobby", {"id": f"n{n}", "username": f"neighbour {n}"})
            assert reply["ok"] is True
            neighbours.append(sock)

        attacker = IdleSocketAttacker(running.port, ATTACK_SOCKETS)
        async with trio.open_nursery() as attack:
            attack.start_soon(attacker.run)
            # the address's whole TCP share is taken, and the attacker wants more
            await wait_until(
                lambda: engine.statistics().http_connections >= TCP_SHARE and attacker.lost > 0,
                timeout=10, state=engine.statistics,
            )

            started = trio.current_time()
            fresh = clients.connect(url, "/lobby")
            await fresh.wait_connected(timeout=2)
            fresh.emit("join_lobby", {"id": "fresh", "username": "fresh"})
            (rooms,) = await fresh.next_event("updaterooms", timeout=2)
            assert rooms == []
            assert trio.current_time() - started < 2

            for n, sock in enumerate(neighbours):  # the established ones never noticed
                (reply,) = await sock.call("join_lobby", {"id": f"n{n}"}, timeout=2)
                assert reply["ok"] is True
            assert engine.statistics().half_open_evicted > 0
            attack.cancel_scope.cancel()
        assert all(sock.connected for sock in neighbours)
