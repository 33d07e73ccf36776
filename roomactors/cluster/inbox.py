"""Each node's inbox: a Redis stream that keeps what other nodes relay to it.

The relay (:mod:`.relay`) queues messages ``(inbox name, JSON text)`` for other
nodes; this module carries them through Redis, so that a Redis outage, or a node
that is reconnecting, delays them instead of losing them (pub/sub keeps nothing):

- :class:`Outbox`: the sender's queue while Redis is slow or away, bounded, in
  order. A newest-wins event (an ``event`` with a replace ``key``, such as
  ``raceprogress`` or ``roomupdated``) replaces the same connection's unsent
  event of that key, as the player's own connection outbox would. When the queue
  is full, commands past their deadline go first (their node answered
  ``node_unavailable`` already), then the oldest newest-wins event, and only
  then is the new message dropped (logged once per overflow).
- :func:`write_batch`: one Lua script appends a batch to the destination streams
  ``{prefix}inbox:{node}`` (``XADD`` with ``MAXLEN ~``) and renews their TTL, so
  the inbox of a node that died expires. A batch that failed is written again
  after the reconnect, before anything newer: order is kept.
- :class:`InboxReader`: the owner reads its stream with ``XREAD BLOCK`` from the
  last id it handled, across reconnects. Stream ids are Redis's clock in
  milliseconds: after Redis restarted empty, new ids are normally above the
  reader's, but a Redis whose clock is behind (another machine, a failover)
  would add entries below it, which ``XREAD`` from our id would never return. So
  the reader starts over from ``0-0`` (everything in a stream created since is
  new to it) when it reconnects to a Redis that restarted (its ``run_id``
  changed), and whenever the stream is missing or its newest id is below ours
  (checked at each reconnect and each time ``XREAD`` waited in vain). What it may then
  read twice (a Redis restored from a dump, a batch written again because its
  reply was lost) is recognised by the per-sender sequence numbers every entry
  carries (``from``: the sending process, ``n``: its count of messages to this
  inbox) and skipped; a jump in them is logged as messages lost.
"""

from __future__ import annotations

import itertools
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio
from coredis.exceptions import ResponseError

__all__ = ("INBOX_MAXLEN", "OUTBOX_LIMIT", "InboxReader", "Outbox", "Queued", "inbox_ttl", "sender_id", "write_batch")

logger = logging.getLogger("roomactors.cluster")

INBOX_MAXLEN = 10_000
"""Entries an inbox stream keeps (approximately): its node reads them within
milliseconds while connected, so only a node cut off from Redis falls behind."""

OUTBOX_LIMIT = 10_000
"""Messages a node keeps for other nodes while Redis is away (after coalescing)."""

BATCH_MAX = 500
"""Messages written to Redis by one script call."""

READ_COUNT = 1000
XREAD_BLOCK_MS = 1000
"""How long one ``XREAD BLOCK`` waits: the reader notices a dead connection, or a
stream that Redis lost, within about this time."""

EXPIRED_SCAN_INTERVAL = 1.0
"""Seconds between two scans of a full outbox for commands past their deadline."""


def inbox_ttl(node_ttl: float) -> float:
    """Seconds an inbox outlives its last message: long past the time after which
    every other node counts its reader dead (``node_ttl`` × 4/3) and stops sending."""
    return max(120.0, 4 * node_ttl)


ReplaceKey = tuple[str, str, str]


@dataclass(slots=True)
class Queued:
    """One message on its way to a node's inbox."""

    stream: str
    text: str
    replace: ReplaceKey | None = None  # (stream, conn, key) of a newest-wins event
    deadline: float | None = None  # of a command, in epoch seconds
    seq: int = 0  # the sender's count of messages to this stream, once taken


def _classify(stream: str, text: str) -> Queued:
    """What the queue needs to know of a relay message (relay.py's format)."""
    queued = Queued(stream, text)
    try:
        message = json.loads(text)
    except ValueError:
        return queued
    if not isinstance(message, dict):
        return queued
    kind = message.get("t")
    if kind == "event":
        conn, key = message.get("conn"), message.get("key")
        if isinstance(conn, str) and isinstance(key, str):
            queued.replace = (stream, conn, key)
    elif kind == "cmd":
        deadline = message.get("deadline")
        if isinstance(deadline, (int, float)) and not isinstance(deadline, bool):
            queued.deadline = float(deadline)
    return queued


class Outbox:
    """The messages waiting for Redis, oldest first; see the module docstring.

    ``put`` never blocks (the relay calls it from anywhere); the publisher ``take``s
    batches in order. ``now`` is the epoch clock (commands' deadlines are epoch
    seconds, shared with other machines); ``monotonic`` paces the scans.
    """

    def __init__(
        self,
        limit: int = OUTBOX_LIMIT,
        *,
        now: Callable[[], float] | None = None,
        monotonic: Callable[[], float] = trio.current_time,
    ) -> None:
        self.limit = limit
        self._now = now or time.time
        self._monotonic = monotonic
        self._queue: dict[int, Queued] = {}  # insertion order is the sending order
        self._newest: dict[ReplaceKey, int] = {}  # oldest first, as in _queue
        self._counter = 0
        self._ready = trio.Event()
        self._seqs: dict[str, int] = {}
        self._scanned_at = -float("inf")
        self._overflowing = False
        self.replaced = 0
        """Newest-wins events that a newer one of the same key replaced (statistics)."""
        self.dropped = 0
        """Messages dropped because the outbox was full (statistics)."""

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, stream: str, text: str) -> None:
        """Queue one message for ``stream`` (it replaces an unsent event of the same key)."""
        queued = _classify(stream, text)
        if queued.replace is not None:
            older = self._newest.pop(queued.replace, None)
            if older is not None:
                del self._queue[older]
                self.replaced += 1
        if len(self._queue) >= self.limit and not self._make_room():
            self.dropped += 1
            if not self._overflowing:
                self._overflowing = True
                logger.warning(
                    "relay: %d messages wait for Redis; new ones are dropped until Redis takes them", len(self._queue)
                )
            return
        self._counter += 1
        self._queue[self._counter] = queued
        if queued.replace is not None:
            self._newest[queued.replace] = self._counter
        self._ready.set()

    def _make_room(self) -> bool:
        """Free one place at least: commands past their deadline, else the oldest
        newest-wins event. False when neither is there."""
        now = self._monotonic()
        if now - self._scanned_at >= EXPIRED_SCAN_INTERVAL:
            self._scanned_at = now
            epoch = self._now()
            expired = [n for n, q in self._queue.items() if q.deadline is not None and q.deadline < epoch]
            for n in expired:
                del self._queue[n]
            if expired:
                return True
        if self._newest:
            key, n = next(iter(self._newest.items()))
            del self._newest[key]
            del self._queue[n]
            return True
        return False

    async def wait(self) -> None:
        """Until a message is queued."""
        while not self._queue:
            self._ready = trio.Event()
            await self._ready.wait()

    def take(self, most: int = BATCH_MAX) -> list[Queued]:
        """The oldest ``most`` messages, each given its stream's next sequence number."""
        batch: list[Queued] = []
        for n in list(itertools.islice(self._queue, most)):
            queued = self._queue.pop(n)
            if queued.replace is not None:
                self._newest.pop(queued.replace, None)
            self._seqs[queued.stream] = queued.seq = self._seqs.get(queued.stream, 0) + 1
            batch.append(queued)
        if len(self._queue) < self.limit // 2:
            self._overflowing = False
        return batch


_WRITE = """
-- KEYS: the inbox streams; ARGV: max length, TTL ms, sender, then triples: key index, sequence number, text
for i = 4, #ARGV, 3 do
  redis.call('XADD', KEYS[tonumber(ARGV[i])], 'MAXLEN', '~', ARGV[1], '*',
             'from', ARGV[3], 'n', ARGV[i + 1], 'm', ARGV[i + 2])
end
for _, key in ipairs(KEYS) do
  redis.call('PEXPIRE', key, ARGV[2])
end
return #KEYS
"""


def sender_id(node_id: str) -> str:
    """This process as a sender: the node id and a random part (a node id may be
    reused by the next process, whose counts start again at 1)."""
    return f"{node_id}/{secrets.token_hex(4)}"


async def write_batch(client: Any, batch: list[Queued], sender: str, ttl: float) -> None:
    """Append ``batch`` to its streams in one script (all of it, or nothing on a failure)."""
    keys: list[str] = []
    index: dict[str, int] = {}
    args: list[str | int] = [INBOX_MAXLEN, max(1, round(ttl * 1000)), sender]
    for queued in batch:
        position = index.get(queued.stream)
        if position is None:
            keys.append(queued.stream)
            position = index[queued.stream] = len(keys)
        args += [position, queued.seq, queued.text]
    await client.eval(_WRITE, keys=keys, args=args)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _id(text: str) -> tuple[int, int]:
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


class InboxReader:
    """Reads this node's inbox stream in order, each message once; see the module docstring."""

    def __init__(self, stream: str, handle: Callable[[str], None]) -> None:
        self.stream = stream
        self._handle = handle
        self.cursor: str | None = None
        """The id of the last entry handled (None before the first session)."""
        self._last: dict[str, int] = {}
        self._run_id: str | None = None  # of the Redis read last
        self.sessions = 0
        """Sessions started (statistics; tests wait on it)."""
        self.handled = 0
        self.duplicates = 0
        self.lost = 0

    async def read(self, client: Any, ready: Callable[[], None]) -> None:
        """Read for ever (raises when Redis fails; call again after the reconnect)."""
        try:
            run_id = str((await client.info("server")).get("run_id", ""))
        except ResponseError:  # INFO refused (a managed Redis): the checks of ids remain
            run_id = ""
        restarted = self._run_id is not None and run_id != self._run_id
        self._run_id = run_id
        await self._place(client, restarted=restarted)
        self.sessions += 1
        ready()
        while True:
            assert self.cursor is not None
            reply = await client.xread({self.stream: self.cursor}, count=READ_COUNT, block=XREAD_BLOCK_MS)
            if not reply:
                await self._place(client)
                continue
            for entries in reply.values():
                for entry in entries:
                    self.cursor = _text(entry.identifier)
                    self._take({_text(k): _text(v) for k, v in entry.field_values.items()})

    async def _place(self, client: Any, *, restarted: bool = False) -> None:
        """Where to read from: our id, unless Redis restarted, or the stream is gone
        or restarted below it."""
        newest = await client.xrevrange(self.stream, end="+", start="-", count=1)
        top = _text(newest[0].identifier) if newest else None
        if self.cursor is None:
            self.cursor = top or "0-0"  # a new node: what is there is a previous process's
        elif restarted:
            self.cursor = "0-0"  # all of it came after the restart (or is known: skipped)
        elif top is None:
            self.cursor = "0-0"  # Redis lost it (or it expired): whatever comes is new
        elif _id(top) < _id(self.cursor):
            logger.info("relay: inbox %s restarted below the last id read; reading it from the start", self.stream)
            self.cursor = "0-0"

    def _take(self, fields: dict[str, str]) -> None:
        sender, text = fields.get("from", ""), fields.get("m")
        if text is None:
            return
        try:
            seq = int(fields.get("n", "0"))
        except ValueError:
            seq = 0
        if sender and seq:
            last = self._last.get(sender)
            if last is not None and seq <= last:
                self.duplicates += 1
                return  # read before (a batch written twice, or a Redis restored from a dump)
            if last is not None and seq > last + 1:
                self.lost += seq - last - 1
                logger.warning(
                    "relay: %d messages from %s to %s were lost in Redis (trimmed, or Redis restarted "
                    "before they were read)", seq - last - 1, sender.partition("/")[0], self.stream,
                )
            self._last[sender] = seq
        self.handled += 1
        self._handle(text)
