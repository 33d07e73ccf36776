"""Inbox: the memory channel semantics the connection queues rely on."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from roomactors.engineio.inbox import Inbox


async def test_fifo_and_idle_inbox_holds_nothing() -> None:
    inbox: Inbox[int] = Inbox()
    for n in range(5):
        inbox.put_nowait(n)
    assert [await inbox.get() for _ in range(5)] == [0, 1, 2, 3, 4]
    assert len(inbox) == 0
    assert inbox._items is None and inbox._not_empty is None and inbox._not_full is None


async def test_put_waits_while_full_and_get_wakes_it(nursery: trio.Nursery) -> None:
    inbox: Inbox[int] = Inbox(2)
    inbox.put_nowait(1)
    inbox.put_nowait(2)
    with pytest.raises(trio.WouldBlock):
        inbox.put_nowait(3)
    done = trio.Event()

    async def putter() -> None:
        await inbox.put(3)
        done.set()

    nursery.start_soon(putter)
    await trio.testing.wait_all_tasks_blocked()
    assert not done.is_set() and len(inbox) == 2
    assert await inbox.get() == 1
    await done.wait()
    assert [await inbox.get(), await inbox.get()] == [2, 3]


async def test_get_waits_and_close_ends_after_what_is_left(nursery: trio.Nursery) -> None:
    inbox: Inbox[str] = Inbox(4)
    got: list[str] = []
    ended = trio.Event()

    async def getter() -> None:
        try:
            while True:
                got.append(await inbox.get())
        except trio.EndOfChannel:
            ended.set()

    nursery.start_soon(getter)
    await trio.testing.wait_all_tasks_blocked()
    inbox.put_nowait("a")
    await trio.testing.wait_all_tasks_blocked()
    inbox.put_nowait("b")
    inbox.put_nowait("c")
    inbox.close()
    await ended.wait()
    assert got == ["a", "b", "c"]
    with pytest.raises(trio.ClosedResourceError):
        inbox.put_nowait("d")
    with pytest.raises(trio.ClosedResourceError):
        await inbox.put("d")


async def test_close_wakes_a_blocked_putter_with_closed_resource_error(nursery: trio.Nursery) -> None:
    inbox: Inbox[int] = Inbox(1)
    inbox.put_nowait(1)
    outcome: list[type[BaseException]] = []

    async def putter() -> None:
        try:
            await inbox.put(2)
        except trio.ClosedResourceError as exc:
            outcome.append(type(exc))

    nursery.start_soon(putter)
    await trio.testing.wait_all_tasks_blocked()
    inbox.close()
    await trio.testing.wait_all_tasks_blocked()
    assert outcome == [trio.ClosedResourceError]
    assert await inbox.get() == 1


async def test_cancelled_put_and_get_take_and_leave_nothing(autojump_clock: trio.testing.MockClock) -> None:
    inbox: Inbox[int] = Inbox(1)
    with trio.move_on_after(0.01):
        await inbox.get()
    inbox.put_nowait(1)
    with trio.move_on_after(0.01):
        await inbox.put(2)
    assert await inbox.get() == 1
    assert len(inbox) == 0
    with trio.CancelScope() as scope:
        scope.cancel()
        with pytest.raises(trio.Cancelled):
            await inbox.put(3)  # a checkpoint even when there is room
    assert len(inbox) == 0
