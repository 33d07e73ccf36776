"""Inbox: a small FIFO with trio wake-ups, for one connection's queues.

Why not ``trio.open_memory_channel``: a channel pair costs about 3.5 KB
(two channel objects, a state object with a deque and two ordered dicts of
waiting tasks, statistics), and every connection held two of them (received
Engine.IO messages, queued Socket.IO work) for its whole life, mostly idle.
An inbox is one slotted object; its deque and its lists of waiting tasks
exist only while something is queued or someone waits. The semantics are the
channel's that we used: ``put`` waits while full, ``get`` waits while empty,
both are checkpoints; after ``close`` the getter takes what is left and then
gets :class:`trio.EndOfChannel`, putters get :class:`trio.ClosedResourceError`.

Waiting tasks park with ``trio.lowlevel.wait_task_rescheduled``, not on a
``trio.Event``: an idle connection's dispatcher waits here all its life, and
an event (its set of tasks), ``Event.wait``'s frame and its abort closure
were about 600 bytes of each idle connection (issue 4).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Generic, TypeVar

from trio.lowlevel import Abort, RaiseCancelT, Task

import trio

__all__ = ["Inbox"]

T = TypeVar("T")


class _Waiter:
    """A task parked on an inbox; called by trio to abort its wait (cancelled):
    it leaves its queue. One small object per wait, no closure."""

    __slots__ = ("queue", "task")

    def __init__(self, queue: list[_Waiter], task: Task) -> None:
        self.queue = queue
        self.task = task

    def __call__(self, _: RaiseCancelT) -> Abort:
        try:
            self.queue.remove(self)
        except ValueError:  # pragma: no cover - woken and aborted at once
            pass
        return Abort.SUCCEEDED


async def _park(queue: list[_Waiter]) -> None:
    """Wait (a checkpoint) until :func:`_wake_one` or :func:`_wake_all` of ``queue``."""
    waiter = _Waiter(queue, trio.lowlevel.current_task())
    queue.append(waiter)
    await trio.lowlevel.wait_task_rescheduled(waiter)


def _wake_one(queue: list[_Waiter]) -> None:
    trio.lowlevel.reschedule(queue.pop(0).task)


def _wake_all(queue: list[_Waiter]) -> None:
    while queue:
        trio.lowlevel.reschedule(queue.pop(0).task)


class Inbox(Generic[T]):
    """A FIFO of at most ``limit`` items (``math.inf``: unbounded)."""

    __slots__ = ("_items", "_limit", "_closed", "_not_empty", "_not_full")

    def __init__(self, limit: float = math.inf) -> None:
        self._items: deque[T] | None = None
        self._limit = limit
        self._closed = False
        #: Getters waiting for an item, oldest first; None while none waits.
        #: Lists, not deques: an empty deque already holds a 64-slot block.
        self._not_empty: list[_Waiter] | None = None
        #: Putters waiting for room, oldest first; None while none waits.
        self._not_full: list[_Waiter] | None = None

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
        getters = self._not_empty
        if getters:
            _wake_one(getters)  # it takes this item (or, beaten to it, waits again)

    async def put(self, item: T) -> None:
        """Append ``item``, waiting while the inbox is full."""
        await trio.lowlevel.checkpoint_if_cancelled()
        # Conditions, not WouldBlock: waiting inside an ``except`` would keep
        # the exception and its traceback alive for as long as it waits.
        while not self._closed and self._items is not None and len(self._items) >= self._limit:
            if self._not_full is None:
                self._not_full = []
            try:
                await _park(self._not_full)
            finally:
                if not self._not_full:
                    self._not_full = None
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
        putters = self._not_full
        if putters:
            _wake_one(putters)
        return item

    async def get(self) -> T:
        """The oldest item, waiting while the inbox is empty."""
        await trio.lowlevel.checkpoint_if_cancelled()
        while not self._items and not self._closed:
            if self._not_empty is None:
                self._not_empty = []
            try:
                await _park(self._not_empty)
            finally:
                if not self._not_empty:
                    self._not_empty = None
        item = self.get_nowait()
        await trio.lowlevel.cancel_shielded_checkpoint()
        return item

    def close(self) -> None:
        """No more puts; waiting getters and putters wake up."""
        self._closed = True
        for waiters in (self._not_empty, self._not_full):
            if waiters:
                _wake_all(waiters)
