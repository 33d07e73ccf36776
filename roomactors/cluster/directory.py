"""One room list across nodes: a directory in Redis, written by each room's own node.

Each node's lobby is the single writer of the rooms it owns. It reports its
rooms (``report``, from the lobby's task; unlisted ones are kept for joins by
code and shown nowhere) and this module writes the difference to Redis: the
hash ``{prefix}rooms`` (room id -> ``{"node", "code", "listed", "late_join",
"room"}`` JSON, ``room`` being the room's list entry) and the
stream ``{prefix}rooms:log`` of changes, both by one Lua script, so they never
disagree; every change also takes the next number of ``{prefix}rooms:seq``.

Every node keeps a replica of the other nodes' rooms: it snapshots (hash, last
stream id and sequence number, read atomically by a script), then tails the stream
with ``XREAD BLOCK``. A gap in the sequence (the stream was trimmed past it, or
Redis restarted and counts from 0 again) makes it snapshot again. The lobby takes
the other nodes' rooms whose node is alive (``take_remote``) into its own lists
and feeds, which order rooms by id: the same order on every node. A dead node's
rooms leave every list within the liveness TTL plus one refresh.

Room ids are unique across nodes because each node numbers its rooms in its own
block (``claim_id_block``): ``block * 2**32 + 1`` onwards, with ``block`` claimed
in Redis with ``SET NX``.

Room codes are drawn by each node's lobby, which draws again when the replica
knows a room of another node with the code (``code_taken``). Two rooms created
at nearly the same moment on two nodes (before either replica had the other's)
can still share a code; then the lower room id keeps it on every node:
``room_of_code`` (which the relay asks before the lobby, for every join by code)
answers with the lowest id among the rooms holding the code, this node's own
included, so a join by that code reaches the same room from any node once the
replicas have both rooms. The other room keeps its code (its host has read it
out already) but is reached by id only while the clash lasts; both nodes log
the clash as a warning.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from coredis.tokens import PureToken

from ..actors import ActorStopped
from ..actors.directory import Listing
from ..actors.records import DeckInfo, RoomSummary, User
from .link import RedisHealth, connect

__all__ = ("ClusterDirectory", "RemoteRoom", "claim_id_block", "summary_from_json")

logger = logging.getLogger("roomactors.cluster")

ID_BLOCK_BITS = 32
"""Room ids of one node: ``block << 32`` + 1 onwards (4 billion per node start)."""
ID_BLOCKS = 2**20
"""Blocks to choose from: ids stay below 2**52, exact in JavaScript numbers."""

STREAM_MAXLEN = 10_000
"""Changes the stream keeps (approximately); a replica further behind re-snapshots."""

XREAD_BLOCK_MS = 1000
"""How long one ``XREAD BLOCK`` waits, so the tail notices a dead connection soon."""

_SYNC = """
-- KEYS: hash, stream, seq; ARGV[1]: stream max length; then triples op, room id, value
local changed = 0
for i = 2, #ARGV, 3 do
  local op, id, value = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local did = false
  if op == 'set' then
    if redis.call('HGET', KEYS[1], id) ~= value then
      redis.call('HSET', KEYS[1], id, value)
      did = true
    end
  else
    did = redis.call('HDEL', KEYS[1], id) == 1
  end
  if did then
    local seq = redis.call('INCR', KEYS[3])
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', 'seq', seq, 'op', op, 'id', id, 'value', value)
    changed = changed + 1
  end
end
return changed
"""

_SNAPSHOT = """
-- KEYS: hash, stream, seq -> {seq, last stream id, HGETALL}
local seq = redis.call('GET', KEYS[3]) or '0'
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local last_id = '0-0'
if #last > 0 then last_id = last[1][1] end
return {seq, last_id, redis.call('HGETALL', KEYS[1])}
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RemoteRoom:
    """A room of another node, as its entry in Redis says (parsed when needed)."""

    __slots__ = ("id", "node", "text", "code", "listed")

    def __init__(self, room_id: int, node: str, text: str, code: str = "", listed: bool = True) -> None:
        self.id = room_id
        self.node = node
        self.text = text
        self.code = code
        self.listed = listed

    def summary(self) -> tuple[RoomSummary, str] | None:
        """The room's summary and code, or None for an entry we cannot read."""
        try:
            entry = json.loads(self.text)
            return summary_from_json(entry["room"], late_join=bool(entry.get("late_join"))), str(entry["code"])
        except (ValueError, KeyError, TypeError, AttributeError):
            logger.warning("room directory: skipped an unreadable entry for room %s", self.id)
            return None

    def __repr__(self) -> str:
        return f"RemoteRoom({self.id}, node={self.node!r})"


def _user(raw: dict[str, Any]) -> User:
    return User(raw["id"], raw.get("username"), raw.get("auth_level"))


def summary_from_json(room: dict[str, Any], *, late_join: bool = False) -> RoomSummary:
    """The summary whose ``to_json()`` is ``room`` (an ``updaterooms`` entry)."""
    deck = room["deck"]
    host = room["host"]
    players = room["players"]
    offline = frozenset(u["id"] for u in (host, *players) if u.get("connected") is False)
    return RoomSummary(
        id=int(room["id"]),
        name=str(room["name"]),
        host=_user(host),
        deck=DeckInfo(
            name=deck["name"], num_problems=deck["numProblems"], id=deck.get("id"),
            description=deck.get("description"), user_id=deck.get("user_id"),
            user_name=deck.get("user_name"), created=deck.get("created"),
            changed=deck.get("changed"), private=deck.get("private"),
        ),
        players=tuple(_user(p) for p in players),
        max_players=int(room["max_players"]),
        state=str(room.get("state", "waiting")),
        locked=bool(room.get("locked", False)),
        offline=offline,
        late_join=late_join,
    )


async def claim_id_block(url: str, prefix: str, node_id: str) -> int:
    """The first room id of this node: a block of ids no other node holds.

    Claimed with ``SET NX`` (the claim stays, so a block is never reused while
    Redis keeps its data). Without Redis a random block is used, which another
    node holds with a chance of about one in a million per node.
    """
    for _ in range(8):
        block = random.randrange(1, ID_BLOCKS)
        try:
            with trio.fail_after(2):
                async with connect(url) as client:
                    claimed = await client.set(f"{prefix}idblock:{block}", node_id, condition=PureToken.NX)
        except Exception as exc:  # noqa: BLE001 - any failure: go without a claim
            logger.warning("could not claim a block of room ids in Redis (%s); using a random one", exc)
            return (block << ID_BLOCK_BITS) + 1
        if claimed:
            return (block << ID_BLOCK_BITS) + 1
    raise RuntimeError("no free block of room ids after 8 tries; clean up the {prefix}idblock:* keys")


class ClusterDirectory:
    """This node's side of the directory: the writer of its rooms, the replica of the others'.

    ``report`` and ``take_remote`` are the lobby's hooks (``RoomDirectoryView``); the
    jobs ``write`` and ``replicate`` run under ``supervise`` in the node's nursery.
    """

    def __init__(
        self,
        node_id: str,
        prefix: str,
        url: str,
        health: RedisHealth,
        notify_lobby: Callable[[], Awaitable[None]],
    ) -> None:
        self.node_id = node_id
        self.url = url
        self._keys = [f"{prefix}rooms", f"{prefix}rooms:log", f"{prefix}rooms:seq"]
        self._epoch_key = f"{prefix}rooms:epoch:{node_id}"
        self._health = health
        self._notify_lobby = notify_lobby
        # --- this node's rooms: what the lobby reported, and what Redis holds
        self._own: dict[int, str] = {}
        self._encoded: dict[int, tuple[Listing, str]] = {}
        self._written: dict[int, str] = {}
        self._own_changed = trio.Event()
        # --- the other nodes' rooms
        self._remote: dict[int, RemoteRoom] = {}
        self._remote_codes: dict[str, set[int]] = {}  # code -> rooms of the replica (any node)
        self._own_codes: dict[str, int] = {}  # code -> this node's room
        self._clashes: set[tuple[int, int]] = set()  # logged already
        self._given: dict[int, str] = {}  # what the lobby was handed, by take_remote
        self._alive: frozenset[str] | None = None  # None: not known yet, show everything
        self._missing_since: dict[str, float] = {}
        self.dead_after = 10.0
        """Seconds a node must stay missing before its rooms are deleted from Redis
        (hidden at once; deleting waits, because after a Redis restart every node is
        missing until it refreshes its liveness key)."""
        self._replica_changed = trio.Event()
        self.version = "0-0"
        """The stream id this replica has caught up to: the list's version."""
        self.synced = trio.Event()
        """Set once this node's rooms are in Redis and the replica has a snapshot."""
        self._snapshotted = False

    # --- the lobby's hooks (its task; must not block) ---------------------------

    def report(self, listings: tuple[Listing, ...]) -> None:
        own: dict[int, str] = {}
        encoded: dict[int, tuple[Listing, str]] = {}
        for listing in listings:
            cached = self._encoded.get(listing.id)
            if cached is None or cached[0] is not listing:  # a Listing is new per change
                text = json.dumps(
                    {"node": self.node_id, "code": listing.code, "listed": listing.listed,
                     "late_join": listing.summary.late_join, "room": listing.json},
                    separators=(",", ":"),
                )
                cached = (listing, text)
            encoded[listing.id] = cached
            own[listing.id] = cached[1]
        self._encoded = encoded
        if own != self._own:
            self._own = own
            self._own_codes = {listing.code: room_id for room_id, (listing, _) in encoded.items()}
            self._own_changed.set()
            for code, room_id in self._own_codes.items():
                for other in self._remote_codes.get(code, ()):
                    if self._remote[other].node != self.node_id:
                        self._log_clash(code, room_id, self._remote[other])

    def take_remote(self) -> list[tuple[int, RoomSummary | None, str]]:
        """What the lobby must change to show the other nodes' rooms as they are now."""
        alive = self._alive
        visible = {
            room_id: room for room_id, room in self._remote.items()
            if room.listed and room.node != self.node_id and (alive is None or room.node in alive)
        }
        changes: list[tuple[int, RoomSummary | None, str]] = []
        for room_id in self._given.keys() - visible.keys():
            changes.append((room_id, None, ""))
            del self._given[room_id]
        for room_id, room in visible.items():
            if self._given.get(room_id) != room.text:
                parsed = room.summary()
                if parsed is None:
                    continue
                changes.append((room_id, parsed[0], parsed[1]))
                self._given[room_id] = room.text
        return changes

    def owner_of(self, room_id: int) -> str | None:
        """The node holding a listed room of another node (alive), or None."""
        room = self._remote.get(room_id)
        if room is None or room.node == self.node_id or not room.listed:
            return None
        if self._alive is not None and room.node not in self._alive:
            return None
        return room.node

    def room_of_code(self, code: str) -> tuple[int, str] | None:
        """The id and node of another node's room (listed or not) with this code
        (matched without regard to case), or None when no such room is alive or
        this node's own room with the code has a lower id. Should several rooms
        hold the code (created at nearly the same moment on two nodes), the lowest
        id wins, on every node alike."""
        wanted = code.upper()
        alive = self._alive
        best: RemoteRoom | None = None
        for room_id in self._remote_codes.get(wanted, ()):
            room = self._remote[room_id]
            if room.node != self.node_id and (alive is None or room.node in alive):
                if best is None or room.id < best.id:
                    best = room
        if best is None:
            return None
        own = self._own_codes.get(wanted)
        return None if own is not None and own < best.id else (best.id, best.node)

    def room_of_user(self, user_id: object, node: str) -> int | None:
        """The room of ``node`` (another node) where ``user_id`` sits as host or
        player, as far as the replica knows, or None. Rare (a ``create_room {host}``
        for a user held on ``node``), so it reads the entries as it goes."""
        for room in self._remote.values():
            if room.node != node or room.node == self.node_id:
                continue
            try:
                entry = json.loads(room.text)["room"]
                people = [entry["host"], *entry["players"]]
                if any(isinstance(p, dict) and p.get("id") == user_id and type(p.get("id")) is type(user_id)
                       for p in people):
                    return room.id
            except (ValueError, KeyError, TypeError):
                continue
        return None

    def code_taken(self, code: str) -> bool:
        """Whether a room of another node holds ``code`` (as far as the replica knows):
        the lobby then draws another code for a new room."""
        return any(self._remote[r].node != self.node_id for r in self._remote_codes.get(code, ()))

    def _index(self, room: RemoteRoom) -> None:
        old = self._remote.get(room.id)
        if old is not None:
            self._unindex(old)
        self._remote[room.id] = room
        if room.code:
            self._remote_codes.setdefault(room.code, set()).add(room.id)
            own = self._own_codes.get(room.code)
            if own is not None and room.node != self.node_id and own != room.id:
                self._log_clash(room.code, own, room)

    def _unindex(self, room: RemoteRoom) -> None:
        holders = self._remote_codes.get(room.code)
        if holders is not None:
            holders.discard(room.id)
            if not holders:
                del self._remote_codes[room.code]

    def _remove(self, room_id: int) -> None:
        room = self._remote.pop(room_id, None)
        if room is not None:
            self._unindex(room)

    def _log_clash(self, code: str, own: int, other: RemoteRoom) -> None:
        pair = (min(own, other.id), max(own, other.id))
        if pair in self._clashes:
            return
        self._clashes.add(pair)
        logger.warning(
            "room code %s is held by room %d here and by room %d on node %s (created at nearly the same "
            "moment); a join by this code reaches room %d on every node, the other room by its id only",
            code, own, other.id, other.node, pair[0],
        )

    # --- liveness ----------------------------------------------------------------

    def set_alive(self, nodes: frozenset[str]) -> None:
        """The nodes alive now (from the liveness job); rooms of the others are hidden."""
        now = trio.current_time()
        for node in {r.node for r in self._remote.values()} - nodes:
            self._missing_since.setdefault(node, now)
        for node in list(self._missing_since):
            if node in nodes:
                del self._missing_since[node]
        if nodes != self._alive:
            shown_before = self._shown_nodes()
            self._alive = nodes
            if self._shown_nodes() != shown_before:
                self._replica_changed.set()

    def _shown_nodes(self) -> set[str]:
        alive = self._alive
        return {r.node for r in self._remote.values() if alive is None or r.node in alive}

    def dead_rooms(self) -> list[int]:
        """Rooms in the replica whose node is not alive (to delete from Redis)."""
        now = trio.current_time()
        dead = {node for node, since in self._missing_since.items() if now - since >= self.dead_after}
        dead.discard(self.node_id)
        return [room.id for room in self._remote.values() if room.node in dead]

    # --- the writer job ------------------------------------------------------------

    async def write(self) -> None:
        """Keep Redis holding exactly this node's rooms, for ever (raises on outage)."""
        async with connect(self.url) as client:
            # A new session: what Redis holds of ours is unknown (Redis may have
            # restarted empty): read it, then write the difference.
            written: dict[int, str] = {}
            _, _, entries = await self._snapshot(client)
            for room_id, value in entries.items():
                if _owner(value) == self.node_id:
                    written[room_id] = value
            self._written = written
            await client.set(self._epoch_key, "1")
            while True:
                self._own_changed = trio.Event()
                await self._sync(client)
                self._health.job_ok("directory-writer")
                if self._snapshotted:
                    self.synced.set()
                with trio.move_on_after(1.0):
                    await self._own_changed.wait()
                if not await client.exists([self._epoch_key]):
                    raise ConnectionError("Redis lost the room directory (restarted empty?); writing it again")

    async def _sync(self, client: Any) -> None:
        own = self._own
        args: list[str] = [str(STREAM_MAXLEN)]
        for room_id, value in own.items():
            if self._written.get(room_id) != value:
                args += ["set", str(room_id), value]
        for room_id in self._written.keys() - own.keys():
            args += ["del", str(room_id), ""]
        for room_id in self.dead_rooms():
            args += ["del", str(room_id), ""]
        if len(args) > 1:
            await client.eval(_SYNC, keys=self._keys, args=args)
        self._written = dict(own)

    # --- the replica job -------------------------------------------------------------

    async def _snapshot(self, client: Any) -> tuple[int, str, dict[int, str]]:
        seq, last_id, flat = await client.eval(_SNAPSHOT, keys=self._keys, args=[])
        entries = {int(_text(flat[i])): _text(flat[i + 1]) for i in range(0, len(flat), 2)}
        return int(_text(seq)), _text(last_id), entries

    async def replicate(self) -> None:
        """Snapshot, then tail the stream; raises on an outage (the job restarts)."""
        async with connect(self.url) as client:
            while True:
                seq, last_id, entries = await self._snapshot(client)
                self._remote = {}
                self._remote_codes = {}
                for room_id, value in entries.items():
                    room = _decode(room_id, value)
                    if room is not None:
                        self._index(room)
                self.version = last_id
                self._snapshotted = True
                self._replica_changed.set()
                self._health.job_ok("directory-replica")
                if not await self._tail(client, seq, last_id):
                    logger.info("room directory: fell behind the stream; taking a new snapshot")

    async def _tail(self, client: Any, seq: int, last_id: str) -> bool:
        """Apply the stream's changes in order; False when a change was missed."""
        stream = self._keys[1]
        while True:
            reply = await client.xread({stream: last_id}, count=1000, block=XREAD_BLOCK_MS)
            if not reply:
                continue
            for entry in next(iter(reply.values())):
                fields = {_text(k): _text(v) for k, v in entry.field_values.items()}
                if int(fields.get("seq", "0")) != seq + 1:
                    return False
                seq += 1
                last_id = _text(entry.identifier)
                room_id = int(fields["id"])
                if fields["op"] == "set":
                    room = _decode(room_id, fields["value"])
                    if room is not None:
                        self._index(room)
                else:
                    self._remove(room_id)
            self.version = last_id
            self._replica_changed.set()

    async def tell_lobby(self) -> None:
        """Tell the lobby whenever the replica changed: changes that come while one
        message is on its way make one more, so a burst costs the lobby two lists."""
        while True:
            await self._replica_changed.wait()
            self._replica_changed = trio.Event()
            try:
                await self._notify_lobby()
            except ActorStopped:
                return  # the server is shutting down: no more lists



def _owner(value: str) -> str | None:
    try:
        owner = json.loads(value).get("node")
    except (ValueError, AttributeError):
        return None
    return owner if isinstance(owner, str) else None


def _decode(room_id: int, value: str) -> RemoteRoom | None:
    try:
        entry = json.loads(value)
        node, code, listed = entry["node"], entry.get("code", ""), entry.get("listed", True)
    except (ValueError, KeyError, TypeError, AttributeError):
        node = None
    if not isinstance(node, str) or not isinstance(code, str):
        logger.warning("room directory: skipped a malformed entry for room %s", room_id)
        return None
    return RemoteRoom(room_id, node, value, code.upper(), listed is not False)
