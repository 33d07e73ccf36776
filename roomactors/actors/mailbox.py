"""Actors on trio: a task, its state, and a bounded mailbox.

An actor is a task that owns some state and a bounded ``trio.MemoryReceiveChannel``;
only that task touches the state, so there are no locks. Others hold an
:class:`ActorRef` (a cloned send channel) and either *tell* (fire-and-forget) or
*ask* (send an envelope with a reply slot and wait for the reply).

The one promise that matters (pykka's idea): when an actor stops, for any reason,
every pending ask, whether still queued, in flight, or blocked on a full mailbox,
fails with :class:`ActorStopped` instead of hanging.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import trio

logger = logging.getLogger(__name__)

M = TypeVar("M")


class ActorStopped(Exception):
    """The actor stopped before it answered (or could take) the message."""


class MailboxFull(trio.WouldBlock):
    """``tell_nowait`` found the mailbox full; the message was not delivered."""


class ReplyTo(Protocol):
    """Where an actor puts the answer to one message: exactly one of ``set``
    (the handler's result) or ``fail`` (the actor stopped first) is called,
    once, synchronously, in the actor's task. Must not block or raise."""

    def set(self, value: Any) -> None: ...

    def fail(self, error: ActorStopped) -> None: ...


class _ReplySlot:
    """Where an actor puts the answer to one ask; set exactly once."""

    __slots__ = ("_done", "_value", "_error")

    def __init__(self) -> None:
        self._done = trio.Event()
        self._value: Any = None
        self._error: BaseException | None = None

    @property
    def is_set(self) -> bool:
        return self._done.is_set()

    def set(self, value: Any) -> None:
        if not self._done.is_set():
            self._value = value
            self._done.set()

    def fail(self, error: BaseException) -> None:
        if not self._done.is_set():
            self._error = error
            self._done.set()

    async def wait(self) -> Any:
        await self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value


@dataclass(frozen=True)
class Envelope(Generic[M]):
    """A message on its way to an actor, with a reply slot when it is an ask."""

    message: M
    reply: ReplyTo | None = field(default=None, compare=False)


class ActorRef(Generic[M]):
    """A handle to an actor's mailbox: what other tasks hold instead of the actor.

    Each holder should own its own clone (``clone()``) and close it when done; the
    actor's mailbox ends (``EndOfChannel``) when every clone is closed.
    """

    def __init__(self, name: str, send: trio.MemorySendChannel[Envelope[M]]) -> None:
        self.name = name
        self._send = send

    def __repr__(self) -> str:
        return f"ActorRef({self.name!r})"

    def clone(self) -> ActorRef[M]:
        return ActorRef(self.name, self._send.clone())

    def close(self) -> None:
        self._send.close()

    def __enter__(self) -> ActorRef[M]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _stopped(self, cause: BaseException | None = None) -> ActorStopped:
        error = ActorStopped(f"actor {self.name} has stopped")
        error.__cause__ = cause
        return error

    def tell_nowait(self, message: M) -> None:
        """Deliver without waiting. Raises :class:`MailboxFull` (a ``trio.WouldBlock``)
        when the mailbox is full, :class:`ActorStopped` when the actor is gone."""
        try:
            self._send.send_nowait(Envelope(message))
        except trio.WouldBlock:
            raise MailboxFull(f"mailbox of {self.name} is full") from None
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise self._stopped(exc) from exc

    async def tell(self, message: M) -> None:
        """Deliver, waiting while the mailbox is full (back-pressure on the sender),
        and return once the message is queued, not when it is handled."""
        try:
            await self._send.send(Envelope(message))
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise self._stopped(exc) from exc

    async def post(self, message: M, reply_to: ReplyTo) -> None:
        """Deliver (waiting while the mailbox is full) and return; the reply goes
        to ``reply_to`` in the actor's task, without waking the sender.

        What :meth:`ask` does without a task switch on the way back: the sender
        need not wait, and the answer (an ack to a client, say) leaves with the
        rest of the actor's batch. If the actor stops first, ``reply_to.fail``.
        """
        try:
            await self._send.send(Envelope(message, reply_to))
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            reply_to.fail(self._stopped(exc))

    def post_nowait(self, message: M, reply_to: ReplyTo) -> bool:
        """:meth:`post` without waiting and without a checkpoint: False (nothing
        sent) when the mailbox is full. An actor forwarding many messages uses it
        so that each one does not cost it a trip through the scheduler; if the
        actor is gone, ``reply_to.fail`` is called and the result is True."""
        try:
            self._send.send_nowait(Envelope(message, reply_to))
        except trio.WouldBlock:
            return False
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            reply_to.fail(self._stopped(exc))
        return True

    async def ask(self, message: M) -> Any:
        """Deliver (waiting while the mailbox is full) and wait for the actor's reply.

        Raises :class:`ActorStopped` if the actor stops before replying.
        """
        slot = _ReplySlot()
        try:
            await self._send.send(Envelope(message, slot))
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise self._stopped(exc) from exc
        return await slot.wait()


@dataclass(frozen=True)
class Forward:
    """A handler's result meaning "``to`` answers this one": the mailbox posts
    ``message`` to ``to`` with the asker's reply slot, and the asker gets
    ``adapt(to's reply)``, or ``fallback()`` if ``to`` stops first. The handling
    actor goes on at once (the lobby forwards ``answer`` to a room this way,
    so it never waits on a race's hot path)."""

    to: ActorRef[Any]
    message: Any
    adapt: Callable[[Any], Any] = field(repr=False)
    fallback: Callable[[], Any] = field(repr=False)

    async def deliver(self, reply: ReplyTo | None) -> None:
        if reply is None:
            try:
                await self.to.tell(self.message)
            except ActorStopped:
                pass
            return
        reply_to = _Adapted(reply, self.adapt, self.fallback)
        if not self.to.post_nowait(self.message, reply_to):
            await self.to.post(self.message, reply_to)


class _Adapted:
    """A reply slot that hands ``adapt(value)`` (or ``fallback()`` on failure) on."""

    __slots__ = ("_reply", "_adapt", "_fallback")

    def __init__(self, reply: ReplyTo, adapt: Callable[[Any], Any], fallback: Callable[[], Any]) -> None:
        self._reply, self._adapt, self._fallback = reply, adapt, fallback

    def set(self, value: Any) -> None:
        self._reply.set(self._adapt(value))

    def fail(self, error: ActorStopped) -> None:
        self._reply.set(self._fallback())


def open_mailbox(name: str, capacity: int) -> tuple[ActorRef[M], Mailbox[M]]:
    """A new actor mailbox of ``capacity`` messages and the first ref to it."""
    send, receive = trio.open_memory_channel[Envelope[M]](capacity)
    return ActorRef(name, send), Mailbox(name, receive)


class Mailbox(Generic[M]):
    """The actor's side: runs the message loop and keeps the ActorStopped promise."""

    def __init__(self, name: str, receive: trio.MemoryReceiveChannel[Envelope[M]]) -> None:
        self.name = name
        self._receive = receive
        self._stopping = False

    def stop(self) -> None:
        """End the loop after the message being handled (which still gets its reply)."""
        self._stopping = True

    async def serve(
        self,
        handle: Callable[[M], Awaitable[Any]],
        *,
        after_batch: Callable[[], None] | None = None,
        batch_scope: Callable[[], AbstractContextManager[object]] | None = None,
        batch_size: int = 64,
        deadline: Callable[[], float] | None = None,
        on_deadline: Callable[[], None] | None = None,
    ) -> None:
        """Handle messages one at a time until ``stop()``, or every ref is closed.

        Messages already queued are handled as one batch (up to ``batch_size``)
        without a trip through the scheduler for each: an actor that many tasks
        talk to would otherwise handle one message per scheduler tick. After a
        batch, ``after_batch`` runs (where an actor publishes what the batch
        changed, once), and only then are the batch's replies delivered, so an
        asker never sees its answer before the batch's effects. ``batch_scope``,
        when given, is entered around each batch and its replies (the server
        uses it to coalesce the writes a batch makes to each client).

        ``deadline`` (with ``on_deadline``) gives an actor a timer in its own
        task: when no message arrives before trio time ``deadline()`` (asked
        before each wait; ``math.inf`` for none), ``on_deadline()`` runs, inside
        ``batch_scope`` too. A handler may return a :class:`Forward`.

        A handler that raises stops the actor: the exception propagates to the
        actor's supervisor, and the ask being handled fails with ActorStopped
        (the asks the batch had already answered get their answers).
        """
        current: Envelope[M] | None = None
        answered: list[tuple[ReplyTo, Any]] = []
        try:
            while not self._stopping:
                try:
                    if deadline is None:
                        current = await self._receive.receive()
                    else:
                        with trio.move_on_at(deadline()):
                            current = await self._receive.receive()
                except trio.EndOfChannel:
                    return
                with batch_scope() if batch_scope is not None else nullcontext():
                    if current is None:
                        assert on_deadline is not None
                        on_deadline()
                        continue
                    handled = 0
                    while current is not None:
                        result = await handle(current.message)
                        if isinstance(result, Forward):
                            await result.deliver(current.reply)
                        elif current.reply is not None:
                            answered.append((current.reply, result))
                        current = None
                        handled += 1
                        if self._stopping or handled >= batch_size:
                            break
                        try:
                            current = self._receive.receive_nowait()
                        except (trio.WouldBlock, trio.EndOfChannel):
                            break
                    if after_batch is not None:
                        after_batch()
                    self._deliver(answered)
        except BaseException as exc:
            if current is not None and current.reply is not None:
                error = ActorStopped(f"actor {self.name} stopped while handling {type(current.message).__name__}")
                error.__cause__ = exc
                current.reply.fail(error)
            raise
        finally:
            self._deliver(answered)
            self._close()

    @staticmethod
    def _deliver(answered: list[tuple[ReplyTo, Any]]) -> None:
        for slot, result in answered:
            slot.set(result)
        answered.clear()

    def _close(self) -> None:
        # Drain and close in one synchronous step: no other task runs in between,
        # so no ask can slip into the buffer after the drain and be dropped by close().
        error = ActorStopped(f"actor {self.name} has stopped")
        pending = 0
        while True:
            try:
                envelope = self._receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            if envelope.reply is not None:
                envelope.reply.fail(error)
                pending += 1
        self._receive.close()  # senders blocked on a full mailbox get BrokenResourceError
        if pending:
            logger.debug("actor %s stopped with %d pending asks", self.name, pending)
