"""Waiting for a state the code under test reaches by itself, without polling.

Why: a cleanup, a timeout or a statistics count has no event a test could
subscribe to, and re-checking it every few milliseconds with ``trio.sleep``
makes a test slow when the step is long, flaky when the machine is busy, and
under ``autojump_clock`` it moves virtual time by the step. Yet every such
state is reached in some task step of the test's own trio loop (the server
runs there), so re-checking after each step is exact: :func:`wait_until`
installs a :class:`trio.abc.Instrument` whose ``after_task_step`` evaluates the
predicate and, once it holds, wakes the waiter. Time does not move for it, so
under ``autojump_clock`` a test can assert the exact moment a state was reached.

What it cannot see: state that lives in another thread or process (a Node
client, python-socketio's threaded client). Wait on what that client reports
instead (its output, an event its harness sets, a queue with a timeout).
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Callable

import trio

__all__ = ("wait_until",)


class _Watch(trio.abc.Instrument):
    """Re-checks one predicate after every task step; wakes its waiter once.

    The hook runs inside trio's scheduler, where rescheduling a task directly is
    not allowed: it only records the outcome and asks the loop (through the trio
    token) to set the waiter's event in a task of its own, a moment later.
    """

    def __init__(self, predicate: Callable[[], object], token: trio.lowlevel.TrioToken) -> None:
        self.predicate = predicate
        self.token = token
        self.woken = trio.Event()
        self.fired = False
        self.error: Exception | None = None

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if self.fired:
            return
        try:
            holds = bool(self.predicate())
        except Exception as exc:  # raised in the waiter, not swallowed by trio's instrument logger
            self.error = exc
            holds = True
        if holds:
            self.fired = True
            self.token.run_sync_soon(self.woken.set)


def _describe(predicate: Callable[[], object]) -> str:
    """For a failure message: a lambda's source line (it has no better name), else the name."""
    name = getattr(predicate, "__qualname__", None)
    if name is not None and "<lambda>" not in name:
        return name
    try:
        return " ".join(inspect.getsource(predicate).split())
    except (OSError, TypeError):
        return repr(predicate)


async def wait_until(
    predicate: Callable[[], object],
    *,
    timeout: float = math.inf,
    state: Callable[[], object] | None = None,
) -> None:
    """Return as soon as ``predicate()`` is true, checked after every task step.

    ``predicate`` must be synchronous and cheap: it runs after each step of
    every task while the wait lasts. This returns once it was seen true, even if
    other tasks changed the state again before the waiter ran (so a passing
    state is never missed, unlike with polling; assert on what must still hold).
    An exception it raises is raised here.

    Bound the wait with the caller's ``fail_after``, or with ``timeout``
    (seconds of trio time): then a wait that runs out raises AssertionError
    naming the predicate and, if given, what ``state()`` returns at that moment.
    """
    token = trio.lowlevel.current_trio_token()
    if predicate():
        return
    watch = _Watch(predicate, token)
    with trio.move_on_after(timeout):
        trio.lowlevel.add_instrument(watch)
        try:
            await watch.woken.wait()
        finally:
            # trio drops an instrument whose hook raised: only a BaseException could do that
            with contextlib.suppress(KeyError):
                trio.lowlevel.remove_instrument(watch)
    if watch.error is not None:
        raise watch.error
    if watch.fired:  # seen true, even if the timeout expired before the waiter ran
        return
    message = f"still false after {timeout} s: {_describe(predicate)}"
    if state is not None:
        now = state()
        message += f"\nnow: {now if isinstance(now, str) else repr(now)}"
    raise AssertionError(message)
