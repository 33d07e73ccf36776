"""ActorRef/Mailbox: tell, ask, back-pressure, and the ActorStopped promise."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import pytest
import trio
import trio.testing

from roomactors.actors import ActorStopped, MailboxFull, open_mailbox


async def test_ask_gets_the_reply_and_tell_is_handled_in_order(nursery: trio.Nursery) -> None:
    ref, mailbox = open_mailbox("echo", 4)
    seen: list[Any] = []

    async def handle(message: Any) -> Any:
        seen.append(message)
        return ("reply", message)

    nursery.start_soon(mailbox.serve, handle)
    await ref.tell("a")
    ref.tell_nowait("b")
    assert await ref.ask("c") == ("reply", "c")
    assert seen == ["a", "b", "c"]


async def test_tell_nowait_raises_when_full_and_tell_waits(autojump_clock: trio.testing.MockClock) -> None:
    ref, mailbox = open_mailbox("nobody-reads", 2)
    ref.tell_nowait(1)
    ref.tell_nowait(2)
    with pytest.raises(MailboxFull):
        ref.tell_nowait(3)
    assert isinstance(MailboxFull(), trio.WouldBlock)
    with trio.move_on_after(60) as scope:  # autojump: nobody reads, so tell waits until cancelled
        await ref.tell(3)
    assert scope.cancelled_caught


async def test_every_pending_ask_fails_when_the_actor_stops(nursery: trio.Nursery) -> None:
    """In flight, queued, and blocked on a full mailbox: all get ActorStopped."""
    ref, mailbox = open_mailbox("slow", 1)
    entered = trio.Event()
    release = trio.Event()

    async def handle(message: Any) -> Any:
        if message == "stop":
            mailbox.stop()
            return "stopping"
        entered.set()
        await release.wait()
        raise AssertionError("never released")

    actor_scope = trio.CancelScope()

    async def run_actor() -> None:
        with actor_scope:
            await mailbox.serve(handle)

    nursery.start_soon(run_actor)
    outcomes: dict[str, str] = {}

    async def ask(label: str) -> None:
        try:
            await ref.ask(label)
            outcomes[label] = "replied"
        except ActorStopped as exc:
            outcomes[label] = f"stopped: {exc}"

    async with trio.open_nursery() as askers:
        askers.start_soon(ask, "in-flight")
        await entered.wait()
        askers.start_soon(ask, "queued")
        await trio.testing.wait_all_tasks_blocked()
        askers.start_soon(ask, "blocked-on-full")
        await trio.testing.wait_all_tasks_blocked()
        actor_scope.cancel()
    assert set(outcomes) == {"in-flight", "queued", "blocked-on-full"}
    assert all(v.startswith("stopped: actor slow") for v in outcomes.values()), outcomes
    with pytest.raises(ActorStopped):
        await ref.ask("after")
    with pytest.raises(ActorStopped):
        ref.tell_nowait("after")


async def test_a_raising_handler_fails_its_ask_and_propagates(nursery: trio.Nursery) -> None:
    ref, mailbox = open_mailbox("boom", 4)

    async def handle(message: Any) -> Any:
        raise RuntimeError("kaput")

    crashed: list[BaseException] = []

    async def run_actor() -> None:
        try:
            await mailbox.serve(handle)
        except RuntimeError as exc:
            crashed.append(exc)

    nursery.start_soon(run_actor)
    with pytest.raises(ActorStopped) as info:
        await ref.ask("x")
    assert isinstance(info.value.__cause__, RuntimeError)
    await trio.testing.wait_all_tasks_blocked()
    assert len(crashed) == 1


async def test_stop_replies_then_ends_and_closing_all_refs_ends_too(nursery: trio.Nursery) -> None:
    ref, mailbox = open_mailbox("stopper", 4)
    ended = trio.Event()

    async def handle(message: Any) -> Any:
        mailbox.stop()
        return "bye"

    async def run_actor() -> None:
        await mailbox.serve(handle)
        ended.set()

    nursery.start_soon(run_actor)
    assert await ref.ask("stop") == "bye"
    await ended.wait()

    ref2, mailbox2 = open_mailbox("eoc", 4)
    ended2 = trio.Event()

    async def run_actor2() -> None:
        await mailbox2.serve(handle)
        ended2.set()

    nursery.start_soon(run_actor2)
    clone = ref2.clone()
    ref2.close()
    await trio.testing.wait_all_tasks_blocked()
    assert not ended2.is_set()  # a clone is still open
    clone.close()
    await ended2.wait()


class _Recorder:
    """A ReplyTo that records what the actor answered, and in which order."""

    def __init__(self, log: list[Any], label: str) -> None:
        self.log = log
        self.label = label

    def set(self, value: Any) -> None:
        self.log.append(("reply", self.label, value))

    def fail(self, error: ActorStopped) -> None:
        self.log.append(("failed", self.label, str(error)))


async def test_queued_messages_are_one_batch_whose_replies_follow_after_batch(nursery: trio.Nursery) -> None:
    """Messages waiting in the mailbox are handled without a scheduler trip each,
    ``after_batch`` runs once for them, and only then go their replies."""
    ref, mailbox = open_mailbox("batcher", 16)
    log: list[Any] = []

    async def handle(message: Any) -> Any:
        log.append(("handled", message))
        return message * 10

    await ref.post(1, _Recorder(log, "m1"))
    ref.tell_nowait(2)
    await ref.post(3, _Recorder(log, "m3"))
    nursery.start_soon(partial(mailbox.serve, handle, after_batch=lambda: log.append(("after_batch",))))
    await trio.testing.wait_all_tasks_blocked()
    assert log == [
        ("handled", 1), ("handled", 2), ("handled", 3), ("after_batch",), ("reply", "m1", 10), ("reply", "m3", 30),
    ]
    log.clear()
    await ref.post(4, _Recorder(log, "m4"))  # alone: a batch of one
    await trio.testing.wait_all_tasks_blocked()
    assert log == [("handled", 4), ("after_batch",), ("reply", "m4", 40)]


async def test_a_batch_is_bounded_and_its_scope_surrounds_it(nursery: trio.Nursery) -> None:
    ref, mailbox = open_mailbox("bounded", 16)
    log: list[str] = []

    @contextmanager
    def scope() -> Iterator[None]:
        log.append("enter")
        yield
        log.append("exit")

    async def handle(message: Any) -> None:
        log.append(str(message))

    for n in range(5):
        ref.tell_nowait(n)
    nursery.start_soon(partial(mailbox.serve, handle, batch_scope=scope, batch_size=3))
    await trio.testing.wait_all_tasks_blocked()
    assert log == ["enter", "0", "1", "2", "exit", "enter", "3", "4", "exit"]


async def test_post_fails_its_reply_to_when_the_actor_is_gone_or_stops_first(nursery: trio.Nursery) -> None:
    log: list[Any] = []
    ref, mailbox = open_mailbox("short-lived", 4)
    stopped = trio.Event()

    async def handle(message: Any) -> Any:
        mailbox.stop()
        return "last"

    async def run_actor() -> None:
        await mailbox.serve(handle)
        stopped.set()

    await ref.post("first", _Recorder(log, "first"))
    await ref.post("queued", _Recorder(log, "queued"))
    nursery.start_soon(run_actor)
    await stopped.wait()
    await ref.post("late", _Recorder(log, "late"))
    assert log == [
        ("reply", "first", "last"),
        ("failed", "queued", "actor short-lived has stopped"),
        ("failed", "late", "actor short-lived has stopped"),
    ]
