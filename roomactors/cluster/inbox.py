"""Each node's inbox: a Redis stream that keeps what other nodes relay to it.

The relay (:mod:`.relay`) queues its messages for other nodes straight into the
:class:`Outbox` (no task in between); this module carries them through Redis, so
that a Redis outage, or a node that is reconnecting, delays them instead of
losing them (pub/sub keeps nothing):

- :class:`Outbox`: the sender's queue while Redis is slow or away, bounded, in
  order. The relay says what the queue needs to know of a message (a
  connection's replace key, a command's deadline), so nothing is parsed again
  here. A shared event (``racestart``, ``raceprogress``...) handed by a room to
  several players of one node becomes one message listing their connections
  (:class:`Fanout`): each member joins the message while it is the newest one
  queued for that node, and its text is built once, when taken. A newest-wins
  event (with a replace ``key``, such as ``raceprogress`` or ``roomupdated``)
  replaces the same connection's unsent event of that key, as the player's own
  connection outbox would: its own message goes, or a fan-out loses that
  connection (and goes with the last one). When the queue is full, commands
  past their deadline go first (their node answered ``node_unavailable``
  already), then the oldest newest-wins event, and only then is the new message
  dropped (logged once per overflow).
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

import contextlib
import itertools
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import trio
from coredis.exceptions import ResponseError

__all__ = (
    "INBOX_MAXLEN", "OUTBOX_LIMIT", "Fanout", "InboxReader", "Outbox", "Queued", "held", "inbox_ttl", "sender_id",
    "write_batch",
)

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
"""(stream, conn, key): one connection's newest-wins event of one key."""


@dataclass(slots=True)
class Fanout:
    """One shared event for several connections of one node (relay.py's ``shared``
    message): the payload is JSON-encoded once, the message text built when taken,
    with every connection that joined it meanwhile."""

    source: object  # the event it came from: the next member of the same event joins this message
    event: str
    key: str | None
    payload: str  # JSON text
    conns: list[str]

    def text(self) -> str:
        head = json.dumps({"t": "shared", "event": self.event, "key": self.key, "conns": self.conns},
                          separators=(",", ":"))
        return f'{head[:-1]},"payload":{self.payload}}}'


@dataclass(slots=True)
class Queued:
    """One message on its way to a node's inbox."""

    stream: str
    text: str  # of a fan-out: "" until taken
    replace: ReplaceKey | None = None  # of a newest-wins event for one connection
    deadline: float | None = None  # of a command, in epoch seconds
    seq: int = 0  # the sender's count of messages to this stream, once taken
    fanout: Fanout | None = None

    def replace_keys(self) -> list[ReplaceKey]:
        if self.fanout is not None:
            key = self.fanout.key
            return [] if key is None else [(self.stream, conn, key) for conn in self.fanout.conns]
        return [] if self.replace is None else [self.replace]


class Outbox:
    """The messages waiting for Redis, oldest first; see the module docstring.

    ``put`` and ``put_shared`` never block (the relay calls them from anywhere);
    the publisher ``take``s batches in order. ``now`` is the epoch clock
    (commands' deadlines are epoch seconds, shared with other machines);
    ``monotonic`` paces the scans.
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
        self._last: dict[str, int] = {}  # each stream's newest queued message
        self._counter = 0
        self._ready = trio.Event()
        self._seqs: dict[str, int] = {}
        self._scanned_at = -float("inf")
        self._overflowing = False
        self.replaced = 0
        """Newest-wins events that a newer one of the same key replaced, counted per
        connection (statistics)."""
        self.dropped = 0
        """Messages dropped because the outbox was full (statistics)."""

    def __len__(self) -> int:
        return len(self._queue)

    def put(
        self, stream: str, text: str, *, conn: str | None = None, key: str | None = None,
        deadline: float | None = None,
    ) -> bool:
        """Queue one message for ``stream``: a connection's event with a replace
        ``key`` replaces that connection's unsent event of the same key; a command's
        ``deadline`` (epoch seconds) lets a full outbox give it up once past. False
        when it was dropped (the outbox is full)."""
        replace = (stream, conn, key) if conn is not None and key is not None else None
        if replace is not None:
            self._supersede(replace)
        n = self._add(Queued(stream, text, replace, deadline))
        if n is None:
            return False
        if replace is not None:
            self._newest[replace] = n
        return True

    def put_shared(self, stream: str, source: object, event: str, key: str | None, conn: str, payload: str) -> bool:
        """Queue ``event`` (shared, its ``payload`` JSON text) for ``conn`` of
        ``stream``'s node: added to the same event's message when that is the
        stream's newest unsent one (the room hands a shared event to its members one
        after the other), else queued as a new message. With a ``key``, it replaces
        ``conn``'s unsent event of that key, as :meth:`put` does."""
        n = self._last.get(stream)
        queued = self._queue.get(n) if n is not None else None
        if queued is None or queued.fanout is None or queued.fanout.source is not source:
            queued = Queued(stream, "", fanout=Fanout(source, event, key, payload, []))
            n = self._add(queued)
            if n is None:
                return False
        assert queued.fanout is not None and n is not None
        if key is not None:
            self._supersede((stream, conn, key), keep=n)
            self._newest[(stream, conn, key)] = n
        queued.fanout.conns.append(conn)
        return True

    def _add(self, queued: Queued) -> int | None:
        if len(self._queue) >= self.limit and not self._make_room():
            self.dropped += 1
            if not self._overflowing:
                self._overflowing = True
                logger.warning(
                    "relay: %d messages wait for Redis; new ones are dropped until Redis takes them", len(self._queue)
                )
            return None
        self._counter += 1
        self._queue[self._counter] = queued
        self._last[queued.stream] = self._counter
        self._ready.set()
        return self._counter

    def _supersede(self, replace: ReplaceKey, keep: int | None = None) -> None:
        """The unsent event of ``replace`` (a connection and key) gives way to a
        newer one: a connection's own message goes, a fan-out loses that connection
        (and goes when it has none left)."""
        older = self._newest.get(replace)
        if older is None or older == keep:
            return
        del self._newest[replace]
        self.replaced += 1
        queued = self._queue[older]
        if queued.fanout is not None:
            queued.fanout.conns.remove(replace[1])
            if queued.fanout.conns:
                return
        self._drop(older)

    def _drop(self, n: int) -> None:
        queued = self._queue.pop(n)
        for replace in queued.replace_keys():
            if self._newest.get(replace) == n:
                del self._newest[replace]
        if self._last.get(queued.stream) == n:
            del self._last[queued.stream]

    def _make_room(self) -> bool:
        """Free one place at least: commands past their deadline, else the oldest
        newest-wins event. False when neither is there."""
        now = self._monotonic()
        if now - self._scanned_at >= EXPIRED_SCAN_INTERVAL:
            self._scanned_at = now
            epoch = self._now()
            expired = [n for n, q in self._queue.items() if q.deadline is not None and q.deadline < epoch]
            for n in expired:
                self._drop(n)
            if expired:
                return True
        if self._newest:
            self._drop(next(iter(self._newest.values())))
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
            queued = self._queue[n]
            self._drop(n)
            if queued.fanout is not None:
                queued.text = queued.fanout.text()
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


async def write_batch(connection: Any, batch: list[Queued], sender: str, ttl: float) -> None:
    """Append ``batch`` to its streams in one script (all of it, or nothing on a
    failure), on a coredis ``connection`` that the caller holds (see :func:`held`)."""
    keys: list[str] = []
    index: dict[str, int] = {}
    args: list[str | int] = [INBOX_MAXLEN, max(1, round(ttl * 1000)), sender]
    for queued in batch:
        position = index.get(queued.stream)
        if position is None:
            keys.append(queued.stream)
            position = index[queued.stream] = len(keys)
        args += [position, queued.seq, queued.text]
    await connection.create_request(b"EVAL", _WRITE, len(keys), *keys, *args)


@contextlib.asynccontextmanager
async def held(client: Any) -> AsyncIterator[Any]:
    """One connection of ``client``'s pool, for a job's hot command (the
    publisher's script, the reader's ``XREAD``): sent with the connection's own
    ``create_request``, a command skips the client's per-command layers (pool,
    retry policy, telemetry, reply callbacks), about a third of coredis's CPU per
    command (measured with coredis 6.9: 140 µs against 220). A failure raises as
    through the client: the job fails and ``supervise`` starts it again."""
    async with client.connection_pool.acquire() as connection:
        yield connection


def _entries(reply: Any) -> list[Any]:
    """The entries of one stream's ``XREAD`` reply, RESP3 (a map) or RESP2 (pairs)."""
    if not reply:
        return []
    if isinstance(reply, dict):
        return [entry for entries in reply.values() for entry in entries]
    return [entry for _, entries in reply for entry in entries]


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
        async with held(client) as connection:
            while True:
                assert self.cursor is not None
                reply = await connection.create_request(
                    b"XREAD", b"COUNT", READ_COUNT, b"BLOCK", XREAD_BLOCK_MS, b"STREAMS", self.stream, self.cursor,
                    disconnect_on_cancellation=True,
                )
                entries = _entries(reply)
                if not entries:
                    await self._place(client)
                    continue
                for identifier, values in entries:
                    self.cursor = _text(identifier)
                    fields = [_text(v) for v in values]
                    self._take(dict(zip(fields[::2], fields[1::2], strict=True)))

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
