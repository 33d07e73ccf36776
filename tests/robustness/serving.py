"""A room server in a nursery the test owns, and ways to look inside it.

The server runs in its own nursery (not the ``nursery`` fixture), so that
:meth:`Running.tasks` can walk exactly the server's task tree: a connection that
vanished and left a task behind shows up as a count above the baseline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

from support.tasks import task_names

from roomactors.config import RoomServerConfig
from roomactors.server import RoomServer, RoomServerStatistics, serve_roomserver


@dataclass
class Running:
    server: RoomServer
    nursery: trio.Nursery

    @property
    def port(self) -> int:
        return self.server.port

    def tasks(self) -> list[str]:
        """Names of every task under the server's nursery (the server included)."""
        return task_names(self.nursery)

    def statistics(self) -> RoomServerStatistics:
        return self.server.statistics()


@asynccontextmanager
async def running_server(config: RoomServerConfig) -> AsyncIterator[Running]:
    async with trio.open_nursery() as nursery:
        server: RoomServer = await nursery.start(serve_roomserver, config)
        yield Running(server, nursery)
        nursery.cancel_scope.cancel()


def idle(stats: RoomServerStatistics) -> bool:
    """No connection, client, user or room left (uptime aside)."""
    return (stats.connections, stats.clients, stats.users, stats.rooms) == (0, 0, 0, 0)
