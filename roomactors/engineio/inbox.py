"""Inbox: a small FIFO with trio wake-ups, for one connection's queues.

Why not ``trio.open_memory_channel``: a channel pair costs about 3.5 KB
(two channel objects, a state object with a deque and two ordered dicts of
waiting tasks, statistics), and every connection held two of them (received
Engine.IO messages, queued Socket.IO work) for its whole life, mostly idle.
An inbox is one slotted object; its deque and its wake-up events exist only
while something is queued or someone waits. The semantics are the channel's
that we used: ``put`` waits while full, ``get`` waits while empty, both are
checkpoints; after ``close`` the getter takes what is left and then gets
:class:`trio.EndOfChannel`, putters get :class:`trio.ClosedResourceError`.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Generic, TypeVar

import trio

__all__ = ["Inbox"]

T = TypeVar("T")


class Inbox(Generic[T]):
    """A FIFO of at most ``limit`` items (``math.inf``: unbounded)."""

    __slots__ = ("_items", "_limit", "_closed", "_not_empty", "_not_full")

    def __init__(self, limit: float = math.inf) -> None:
        self._items: deque[T] | None = None
        self._limit = limit
        self._closed = False
        #: Set (and dropped) when an item arrives; exists only while a getter waits.
        self._not_empty: trio.Event | None = None
        #: Set (and dropped) when an item leaves; exists only while a putter waits.
        self._not_full: trio.Event | None = None

    def __len__(self) -> int:
        return len(self._items) if self._items else 0

    @property
    def closed(self) -> bool:
        return self._closed

    def put_nowait(self, item: T) -> None:
        """Append ``item``; :class:`trio.WouldBlock` when full."""
        if self._closed:
            raise trio.ClosedResourceError("inbox closed")
        items = self._items
        if items is None:
            items = self._items = deque()
        elif len(items) >= self._limit:
            raise trio.WouldBlock
        items.append(item)
        if self._not_empty is not None:
            self._not_empty.set()
            self._not_empty = None

    async def put(self, item: T) -> None:
        """Append ``item``, waiting while the inbox is full."""
        await trio.lowlevel.checkpoint_if_cancelled()
        # Conditions, not WouldBlock: waiting inside an ``except`` would keep
        # the exception and its traceback alive for as long as it waits.
        while not self._closed and self._items is not None and len(self._items) >= self._limit:
            if self._not_full is None:
                self._not_full = trio.Event()
            await self._not_full.wait()
        self.put_nowait(item)
        await trio.lowlevel.cancel_shielded_checkpoint()

    def get_nowait(self) -> T:
        """The oldest item; :class:`trio.WouldBlock` when empty (and open)."""
        items = self._items
        if not items:
            if self._closed:
                raise trio.EndOfChannel
            raise trio.WouldBlock
        item = items.popleft()
        if not items:
            self._items = None  # an idle connection holds no deque
        if self._not_full is not None:
            self._not_full.set()
            self._not_full = None
        return item

    async def get(self) -> T:
        """The oldest item, waiting while the inbox is empty."""
        await trio.lowlevel.checkpoint_if_cancelled()
        while not self._items and not self._closed:
            if self._not_empty is None:
                self._not_empty = trio.Event()
            await self._not_empty.wait()
        item = self.get_nowait()
        await trio.lowlevel.cancel_shielded_checkpoint()
        return item

    def close(self) -> None:
        """No more puts; waiting getters and putters wake up."""
        self._closed = True
        for event in (self._not_empty, self._not_full):
            if event is not None:
                event.set()
        self._not_empty = self._not_full = None
