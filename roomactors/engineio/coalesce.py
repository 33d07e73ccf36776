"""Coalesced writes: what one task sends a client within a block leaves in one write.

A message queued on an :class:`~.engine_socket.EngineSocket` is normally
written to the client's socket at once, by the task that queued it (no
writer task, no context switch). An actor that answers many clients in one
go (the lobby handling a batch of commands: a room list to every client, an
ack to some) would then write twice to a client that gets both. Inside
:func:`coalesced_writes`, a send marked ``coalesce=True`` is only noted, and
each noted socket is written once, with everything queued for it, when the
block ends. Sends not marked are written at once as usual: deferring costs
something per socket, so the sender marks only those that will get more in
the same block (the lobby: the clients whose command it is answering).

The note is task-local, so other tasks keep writing at once: it lives in a
:class:`contextvars.ContextVar` (every trio task runs in its own context)
together with the task that opened the block, because a task started from
inside the block inherits a copy of the context, and must not defer into a
block it does not own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import trio

__all__ = ["coalesced_writes", "defer_write"]

_Deferred = dict[Callable[[], None], None]

#: The task with an open block, and the write callbacks noted in it; or None.
_DEFERRED: ContextVar[tuple[trio.lowlevel.Task, _Deferred] | None] = ContextVar(
    "roomactors_engineio_deferred_writes", default=None
)


def _open_block() -> _Deferred | None:
    state = _DEFERRED.get()
    if state is None or state[0] is not trio.lowlevel.current_task():
        return None
    return state[1]


@contextmanager
def coalesced_writes() -> Iterator[None]:
    """Defer this task's socket writes to the end of the block (see the module).

    Nested blocks join the outermost one. The writes happen even when the
    block raises: what was queued is still owed to the clients.
    """
    if _open_block() is not None:
        yield
        return
    deferred: _Deferred = {}
    token = _DEFERRED.set((trio.lowlevel.current_task(), deferred))
    try:
        yield
    finally:
        _DEFERRED.reset(token)
        for write in deferred:
            write()


def defer_write(write: Callable[[], None]) -> bool:
    """Note ``write`` for the end of the current block; False (nothing noted)
    when this task is not in one and the caller should write now."""
    deferred = _open_block()
    if deferred is None:
        return False
    deferred[write] = None
    return True
