"""The reconnect grace of held seats: one deadline heap, owned by the lobby.

race.md, "Seats that outlive a connection": a user whose connection dropped
keeps their place for the reconnect grace. That costs no task per held seat:
the lobby pushes each hold's deadline here and its one alarm (the lobby's own
timer, see ``lobby.run_lobby``) wakes it at :meth:`GraceTimers.next_deadline`,
when it takes the seats whose grace is over with :meth:`GraceTimers.pop_due`.

Entries are never removed early: a user who comes back (or leaves) just stops
being held, and their stale entry is skipped when it comes due (the lobby
checks that the user is still held until that very deadline). Deadlines are
trio times.
"""

from __future__ import annotations

import heapq
import itertools
import math

from .records import UserId

__all__ = ("GraceTimers",)


class GraceTimers:
    """Deadlines of held seats, soonest first; no clock of its own (sans-IO)."""

    __slots__ = ("_heap", "_order")

    def __init__(self) -> None:
        # (deadline, order, user id): the order keeps user ids (int or str,
        # not comparable with each other) out of the comparisons
        self._heap: list[tuple[float, int, UserId]] = []
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def hold(self, user_id: UserId, until: float) -> None:
        """``user_id``'s seat is held until the trio time ``until``."""
        heapq.heappush(self._heap, (until, next(self._order), user_id))

    def next_deadline(self) -> float:
        """When the soonest entry comes due (``math.inf``: none). It may be stale:
        waking for nothing costs one look at the heap."""
        return self._heap[0][0] if self._heap else math.inf

    def pop_due(self, now: float) -> list[tuple[UserId, float]]:
        """Pop every entry due at ``now``, in deadline order, as (user id,
        deadline). Some may be stale (the user came back, or left, or dropped
        again): the owner checks each one just before acting on it."""
        due: list[tuple[UserId, float]] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, user_id = heapq.heappop(heap)
            due.append((user_id, deadline))
        return due
