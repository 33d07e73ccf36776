"""Sans-IO bounded outbox of one Engine.IO session.

``send()`` must never block the application (a broadcast to a thousand clients
cannot wait for the slowest), so messages queue here until the session's single
transport writer takes them. The queue is bounded: a client that cannot keep up
is disconnected rather than allowed to grow the server's memory without limit.

Rules:

* Entries leave in the order they were appended.
* An entry appended with a ``replace_key`` drops the undelivered entry that
  holds the same key, and goes to the *end* of the queue (newest wins; its order
  relative to other entries is that of its latest append). This is what a
  "room list" update wants: a client that lags gets the newest list, once.
* An append that would take the outbox past ``max_messages`` messages or
  ``max_bytes`` bytes raises :class:`OutboxOverflow`; the session closes itself
  with the reason ``"outbox overflow"``. Only entries without a replace key
  count: a keyed entry is bounded by its key (one per key), and what it holds
  is typically a broadcast's SharedMessage, one object for every session, so
  charging its size to each client would disconnect everyone for a large but
  legitimate room list. Control packets (ping, close, noop) are tiny and
  bounded in number by the protocol, so they are not counted; the one a client
  can provoke at will (the pong to its own ping) is queued with a replace key,
  so it never holds more than one.
* One entry may hold several packets that must travel together and in order
  (Socket.IO binary attachments); it is taken whole.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import NamedTuple

from .packets import SharedMessage

__all__ = ["Outbox", "OutboxOverflow", "OutItem"]

#: A message, or an already-encoded control packet (same text on both transports).
OutItem = SharedMessage | str


class OutboxOverflow(Exception):
    """The append would exceed the outbox's limits; the session must close."""


class _Entry(NamedTuple):
    """A tuple, not a frozen dataclass: one is made per message sent, and a
    frozen dataclass's ``__init__`` costs several times a tuple's."""

    items: tuple[OutItem, ...]
    messages: int
    size: int
    key: Hashable | None


class Outbox:
    """FIFO of entries with keyed replacement and message/byte limits."""

    __slots__ = ("_by_key", "_entries", "_seq", "bytes", "max_bytes", "max_messages", "messages")

    def __init__(self, max_messages: int, max_bytes: int) -> None:
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self._entries: dict[int, _Entry] = {}  # insertion-ordered by sequence number
        self._by_key: dict[Hashable, int] | None = None  # made by the first keyed entry
        self._seq = 0  # an int, not an itertools.count: one object less per session
        self.messages = 0
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __bool__(self) -> bool:
        return bool(self._entries)

    def append(self, items: tuple[OutItem, ...], *, replace_key: Hashable | None = None) -> None:
        """Queue ``items`` as one entry; see the module docstring for the rules."""
        if replace_key is None and len(items) == 1:  # the common case, kept short: once per client per broadcast
            item = items[0]
            if isinstance(item, SharedMessage):
                new_messages, new_bytes = self.messages + 1, self.bytes + item.size
                if new_messages > self.max_messages or new_bytes > self.max_bytes:
                    raise OutboxOverflow(
                        f"outbox would hold {new_messages} messages / {new_bytes} bytes"
                        f" (limits {self.max_messages} / {self.max_bytes})"
                    )
                seq = self._seq = self._seq + 1
                self._entries[seq] = _Entry(items, 1, item.size, None)
                self.messages, self.bytes = new_messages, new_bytes
            else:
                seq = self._seq = self._seq + 1
                self._entries[seq] = _Entry(items, 0, 0, None)
            return
        if replace_key is not None:  # keyed entries are not counted (see the rules): no limit to check
            by_key = self._by_key
            if by_key is None:
                by_key = self._by_key = {}
            replaced_seq = by_key.get(replace_key)
            if replaced_seq is not None:
                del self._entries[replaced_seq]
            by_key[replace_key] = seq = self._seq = self._seq + 1
            self._entries[seq] = _Entry(items, 0, 0, replace_key)
            return
        counted = [item for item in items if isinstance(item, SharedMessage)]  # several, together, unkeyed
        messages = len(counted)
        new_messages = self.messages + messages
        new_bytes = self.bytes + sum(item.size for item in counted)
        if messages and (new_messages > self.max_messages or new_bytes > self.max_bytes):
            raise OutboxOverflow(
                f"outbox would hold {new_messages} messages / {new_bytes} bytes"
                f" (limits {self.max_messages} / {self.max_bytes})"
            )
        seq = self._seq = self._seq + 1
        self._entries[seq] = _Entry(items, messages, new_bytes - self.bytes, None)
        self.messages = new_messages
        self.bytes = new_bytes

    def holds(self, replace_key: Hashable) -> bool:
        """Whether an entry appended with ``replace_key`` is still undelivered
        (a sender that merges what it sends into the undelivered entry asks this)."""
        return self._by_key is not None and replace_key in self._by_key

    def held(self) -> tuple[int, int]:
        """Messages and bytes queued now, keyed entries included (``messages``
        and ``bytes`` count only what the limits count). O(entries): for
        statistics and tests, not for the send path."""
        messages = size = 0
        for entry in self._entries.values():
            for item in entry.items:
                if isinstance(item, SharedMessage):
                    messages += 1
                    size += item.size
        return messages, size

    def append_control(self, packet: str) -> None:
        """Queue an encoded control packet; never overflows."""
        self.append((packet,))

    def take_all(self) -> list[OutItem]:
        """Remove and return every queued item, in order (entries flattened)."""
        items = [item for entry in self._entries.values() for item in entry.items]
        self.clear()
        return items

    def clear(self) -> None:
        self._entries.clear()
        self._by_key = None
        self.messages = 0
        self.bytes = 0
