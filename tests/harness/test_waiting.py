"""support.waiting.wait_until: exact, sleep-free, and it cleans up after itself."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from support.waiting import wait_until


class Box:
    def __init__(self) -> None:
        self.value = 0
        self.checks = 0

    def reached(self, target: int) -> bool:
        self.checks += 1
        return self.value >= target


async def test_true_at_once_returns_without_a_checkpoint_of_its_own_making() -> None:
    box = Box()
    box.value = 1
    await wait_until(lambda: box.reached(1))
    assert box.checks == 1


async def test_sees_a_passing_state_without_moving_the_clock(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    box = Box()

    async def count() -> None:
        for _ in range(5):
            box.value += 1
            await trio.sleep(0)

    start = trio.current_time()
    nursery.start_soon(count)
    await wait_until(lambda: box.value == 3)  # a passing state: 3 only for one step of another task
    assert box.value >= 3
    assert trio.current_time() == start


async def test_composes_with_the_autojump_clock(nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    box = Box()

    async def later() -> None:
        await trio.sleep(7.25)
        box.value = 1

    nursery.start_soon(later)
    start = trio.current_time()
    with trio.fail_after(10):
        await wait_until(lambda: box.value == 1)
    assert trio.current_time() - start == 7.25


async def test_a_state_set_from_a_thread_through_the_trio_token() -> None:
    box = Box()

    def in_thread() -> None:
        trio.from_thread.run_sync(setattr, box, "value", 5)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, in_thread)
        with trio.fail_after(5):
            await wait_until(lambda: box.value == 5)


async def test_timeout_names_the_predicate_and_the_state(autojump_clock: trio.testing.MockClock) -> None:
    box = Box()
    with pytest.raises(AssertionError, match=r"still false after 3 s: .*box\.value == 42.*\nnow: 0"):
        await wait_until(lambda: box.value == 42, timeout=3, state=lambda: box.value)
    assert trio.current_time() == 3


async def test_predicate_errors_are_raised_in_the_waiter(nursery: trio.Nursery) -> None:
    box = Box()

    def broken() -> bool:
        if box.value:
            raise LookupError("gone")
        return False

    async def poke() -> None:
        box.value = 1

    nursery.start_soon(poke)
    with pytest.raises(LookupError, match="gone"), trio.fail_after(5):
        await wait_until(broken)


@pytest.mark.parametrize("ending", ["reached", "cancelled"])
async def test_the_instrument_is_removed_when_the_wait_ends(
    ending: str, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    box = Box()

    async def bump() -> None:
        await trio.sleep(1)
        box.value = 1

    nursery.start_soon(bump)
    with trio.move_on_after(0.5 if ending == "cancelled" else 2):
        await wait_until(lambda: box.reached(1))
    checks = box.checks
    for _ in range(10):  # more task steps: nobody checks any more
        await trio.sleep(0)
    await trio.testing.wait_all_tasks_blocked()
    assert box.checks == checks
