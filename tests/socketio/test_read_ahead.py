"""The session's read-ahead gate: first come first served, cancellation-safe."""

from __future__ import annotations

import trio
import trio.testing

from roomactors.socketio.session import _ReadAhead


async def test_waiters_get_slots_in_arrival_order(nursery: trio.Nursery) -> None:
    gate = _ReadAhead(1)
    await gate.acquire()  # free: no wait
    order: list[int] = []

    async def waiter(n: int) -> None:
        await gate.acquire()
        order.append(n)

    for n in range(3):
        nursery.start_soon(waiter, n)
        await trio.testing.wait_all_tasks_blocked()
    assert order == []
    for expected in ([0], [0, 1], [0, 1, 2]):
        gate.release()
        await trio.testing.wait_all_tasks_blocked()
        assert order == expected
    gate.release()
    assert gate.free == 1 and gate._waiters is None


async def test_a_cancelled_waiter_leaves_its_place_or_its_slot(nursery: trio.Nursery) -> None:
    gate = _ReadAhead(1)
    await gate.acquire()
    got: list[str] = []

    async def waiter(name: str, scope: trio.CancelScope) -> None:
        with scope:
            await gate.acquire()
            got.append(name)
            await trio.sleep_forever()  # holds the slot until cancelled
        if got and got[-1] == name:
            gate.release()

    first, second = trio.CancelScope(), trio.CancelScope()
    nursery.start_soon(waiter, "first", first)
    await trio.testing.wait_all_tasks_blocked()
    nursery.start_soon(waiter, "second", second)
    await trio.testing.wait_all_tasks_blocked()
    first.cancel()  # cancelled while waiting: out of the queue
    await trio.testing.wait_all_tasks_blocked()
    gate.release()
    await trio.testing.wait_all_tasks_blocked()
    assert got == ["second"]
    # handed a slot and cancelled before running: the slot goes back
    third = trio.CancelScope()
    nursery.start_soon(waiter, "third", third)
    await trio.testing.wait_all_tasks_blocked()
    second.cancel()  # second releases: the slot is handed to third...
    third.cancel()  # ...which is cancelled before it runs
    await trio.testing.wait_all_tasks_blocked()
    assert got == ["second"] and gate.free == 1 and gate._waiters is None
