"""A ready-made recording :class:`~roomactors.actors.client.Client` for embedders and tests.

It keeps every event it is sent (``roomupdated``/``roomschanged`` apart, in
``updates``) and only the newest room list (like a real connection does), and lets a task wait for the next list or event. A
``MemoryClient`` nobody reads from never blocks the lobby: it is a "slow client".
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import trio

from .client import RoomList, SharedEvent
from .records import JsonDict


class MemoryClient:
    """Records what the lobby sends it. ``client_id`` defaults to ``name``.

    With ``transcript=True`` every room list is also appended to ``events`` as
    ``("updaterooms", RoomList)``, to check the order of lists and events (this
    keeps every list, so it is for tests, not for long-running embedders).
    """

    def __init__(self, name: str, client_id: Hashable | None = None, *, transcript: bool = False) -> None:
        self.name = name
        self.transcript = transcript
        self.client_id: Hashable = client_id if client_id is not None else name
        self.events: list[tuple[str, Any]] = []
        self.room_list: RoomList | None = None
        self.room_lists_received = 0
        self.detached: str | None = None
        self._taken_version = -1
        #: False: a client that stopped reading; ``send_latest`` events wait in
        #: ``_held`` (newest wins per event) until ``resume()``.
        self.reading = True
        self._held: dict[str, Any] = {}
        #: ``roomupdated`` and ``roomschanged`` as they arrived (kept apart from
        #: ``events`` unless ``transcript``: newest-wins updates, like lists).
        self.updates: list[tuple[str, Any]] = []
        self._lot = trio.lowlevel.ParkingLot()

    def __repr__(self) -> str:
        return f"MemoryClient({self.name!r})"

    # --- the Client protocol ---------------------------------------------

    def send_event(self, event: str, payload: object) -> None:
        self.events.append((event, payload))
        self._lot.unpark_all()

    def send_room_list(self, rooms: RoomList) -> None:
        self.room_list = rooms  # newest wins, like a connection's outbox
        self.room_lists_received += 1
        if self.transcript:
            self.events.append(("updaterooms", rooms))
        self._lot.unpark_all()

    def send_latest(self, event: str, payload: object) -> None:
        if self.reading:
            self._receive_latest(event, payload)
        else:
            self._held.pop(event, None)  # newest wins, and goes last, like an outbox entry
            self._held[event] = payload
        self._lot.unpark_all()

    def holds(self, event: str) -> bool:
        return event in self._held

    def _receive_latest(self, event: str, payload: object) -> None:
        self.updates.append((event, payload))
        if self.transcript:
            self.events.append((event, payload))


    def send_shared(self, event: SharedEvent) -> None:
        if event.name == "roomupdated":  # newest-wins room updates are kept with the feed's
            self.send_latest(event.name, event.payload)
            return
        # every other event is kept, keyed ones too: tests scan all that was sent
        self.events.append((event.name, event.payload))
        self._lot.unpark_all()

    def detach(self, reason: str) -> None:
        self.detached = reason
        self._lot.unpark_all()

    # --- for the embedder ------------------------------------------------

    def pause(self) -> None:
        """Stop reading: from now on ``send_latest`` events wait, newest wins per
        event, as in a connection's outbox (other events and lists still arrive)."""
        self.reading = False

    def resume(self) -> None:
        """Read again: what waited arrives, in the order it was (last) sent."""
        held, self._held = self._held, {}
        self.reading = True
        for event, payload in held.items():
            self._receive_latest(event, payload)
        self._lot.unpark_all()

    @property
    def rooms(self) -> list[JsonDict] | None:
        """The newest list as JSON, or None when none arrived yet."""
        return None if self.room_list is None else self.room_list.to_json()

    async def next_room_list(self) -> RoomList:
        """Wait for a list newer than the one this method returned last time."""
        while self.room_list is None or self.room_list.version <= self._taken_version:
            await self._lot.park()
        self._taken_version = self.room_list.version
        return self.room_list

    def events_named(self, event: str) -> list[Any]:
        """Payloads of ``event`` in arrival order."""
        return [payload for name, payload in self.events if name == event]

    def updates_named(self, event: str) -> list[Any]:
        """Payloads of ``roomupdated`` or ``roomschanged`` in arrival order."""
        return [payload for name, payload in self.updates if name == event]

    async def wait_event(self, event: str, count: int = 1) -> Any:
        """Wait until ``event`` has arrived ``count`` times; return the last payload."""
        while len(self.events_named(event)) < count:
            await self._lot.park()
        return self.events_named(event)[count - 1]
