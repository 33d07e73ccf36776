"""Users across nodes: one registry in Redis says where each user id lives.

race.md's identity rules (a held id is taken over only with its seat token, or by
the same signed identity) must hold across the cluster, not per node. Each user
id a node's lobby holds has an entry ``{prefix}user:{id as JSON}``, a hash of:

- ``h``, the user's **home**: the node holding the user's socket (its lobby holds
  the user for lists and lobby commands), or ``""`` once that node let them go;
- ``s``, the user's **seat node**: the node whose lobby holds the user's room seat
  (the home, unless the user is relayed into a room of another node; see
  relay.py), or ``""``;
- ``u``, the user's profile as JSON (``id``, ``username``, ``auth_level``: a
  user moving to another node keeps the username it did not send again);
- ``d``, the SHA-256 of the seat token of the user's last ``join_lobby`` ack (the
  token is 144 random bits, so its digest reveals nothing; open identity only).

An id is **held** while its home or its seat node is alive (its liveness key
exists). :meth:`UserRegistry.claim` runs one Lua script for a ``join_lobby``: a free
id is claimed for this node; an id held here is left to this node's lobby (which
checks the token as on one node); an id held elsewhere moves its home here when
the token's digest matches (or the identity is signed), and is ``taken``
otherwise. The relay then moves the seat (see relay.py).

Entries are written after the fact, in order, by one job (``set``: after an ack;
``seat``: a relayed seat begins or ends; ``gone``: a user left a lobby, see
:meth:`user_gone`). A node remembers the entries it is home for and writes them
again when Redis comes back empty (the marker ``{prefix}users:epoch:{node}``
disappears with Redis's data). While Redis is unreachable, claims are skipped
(each node checks its own users, as without a cluster; logged once per outage).

Dead nodes: every script that names a node in an entry adds the id to that
node's index ``{prefix}users:of:{node}`` (and the node to ``{prefix}users:nodes``);
``_GONE`` takes it out again. Once a node has stayed missing ``dead_after``
seconds, the living node with the lowest id empties its index in chunks of
``REAP_CHUNK`` (``_REAP``): the dead node leaves each entry, and an entry whose
home and seat node are then both dead is deleted. A node's first session does
the same to its own index, for the entries a previous process of the same node
id left.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

import trio

from ..actors.records import UserId
from .link import RedisHealth, connect
from .liveness import node_key

__all__ = ("CLAIM_TIMEOUT", "REAP_CHUNK", "Claim", "UserRegistry", "index_key", "token_digest", "user_key")

logger = logging.getLogger("roomactors.cluster")

CLAIM_TIMEOUT = 1.0
"""Seconds a ``join_lobby`` waits for Redis's answer before it is checked by this node alone."""

QUEUE_SIZE = 10_000
"""Registry writes waiting for Redis; beyond it new ones are dropped (and logged)."""

BATCH_MAX = 200
"""Claims and writes sent to Redis in one pipelined round trip (at most)."""

EPOCH_CHECK = 1.0
"""Seconds between two looks at this node's epoch marker while the job is idle."""

REAP_CHUNK = 500
"""Ids one script takes from a dead node's index: Redis is never blocked for long,
and this node's own claims and writes go between two chunks."""

_TRACK = """
-- The last three ARGV of every writing script: the index prefix ({prefix}users:of:),
-- the set of nodes with an index ({prefix}users:nodes) and the user's id (JSON).
local IX, NODES, ID = ARGV[#ARGV - 2], ARGV[#ARGV - 1], ARGV[#ARGV]
local function track(n)
  if n ~= '' then
    redis.call('SADD', IX .. n, ID)
    redis.call('SADD', NODES, n)
  end
end
"""

_CLAIM = _TRACK + """
-- KEYS[1]: the user's entry. ARGV: this node, the token's digest or '',
-- signed '1'/'0', move '1'/'0', the liveness key prefix ({prefix}node:)
local h = redis.call('HGET', KEYS[1], 'h') or ''
local s = redis.call('HGET', KEYS[1], 's') or ''
local d = redis.call('HGET', KEYS[1], 'd') or ''
local u = redis.call('HGET', KEYS[1], 'u') or ''
local me = ARGV[1]
local function alive(n)
  if n == '' then return false end
  if n == me then return true end
  return redis.call('EXISTS', ARGV[5] .. n) == 1
end
local ha, sa = '0', '0'
if alive(h) then ha = '1' end
if alive(s) then sa = '1' end
if ha == '0' and sa == '0' then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'h', me, 's', me, 'd', '')
  track(me)
  return {'free', '', '', '0', '', '0', '0'}
end
local match = '0'
if ARGV[3] == '1' or (d ~= '' and d == ARGV[2]) then match = '1' end
if h == me then return {'local', h, s, match, u, ha, sa} end
if match == '1' then
  if ARGV[4] == '1' then
    redis.call('HSET', KEYS[1], 'h', me)
    track(me)
  end
  return {'moved', h, s, match, u, ha, sa}
end
return {'taken', h, s, match, '', ha, sa}
"""

_SET = _TRACK + """
-- KEYS[1]: the entry. ARGV: this node, seat node, digest, create-only '1'/'0', user (JSON)
local h = redis.call('HGET', KEYS[1], 'h')
if ARGV[4] == '1' and h then return 0 end
if not h or h == '' or h == ARGV[1] then
  redis.call('HSET', KEYS[1], 'h', ARGV[1], 's', ARGV[2], 'd', ARGV[3], 'u', ARGV[5])
  track(ARGV[1])
  track(ARGV[2])
  return 1
end
return 0
"""

_SEAT = _TRACK + """
-- KEYS[1]: the entry. ARGV: this node, seat node
if redis.call('HGET', KEYS[1], 'h') == ARGV[1] then
  redis.call('HSET', KEYS[1], 's', ARGV[2])
  track(ARGV[2])
  return 1
end
return 0
"""

_SEATED = _TRACK + """
-- KEYS[1]: the entry. ARGV: this node (the seat node), the user's home
local h = redis.call('HGET', KEYS[1], 'h')
if h == ARGV[2] then
  redis.call('HSET', KEYS[1], 's', ARGV[1])
  track(ARGV[1])
  return 1
end
return 0
"""

_GONE = _TRACK + """
-- KEYS[1]: the entry. ARGV: this node
local h = redis.call('HGET', KEYS[1], 'h')
if not h then
  redis.call('SREM', IX .. ARGV[1], ID)
  return 0
end
local s = redis.call('HGET', KEYS[1], 's') or ''
if h == ARGV[1] then h = '' end
if s == ARGV[1] then s = '' end
if h == '' and s == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'h', h, 's', s)
end
redis.call('SREM', IX .. ARGV[1], ID)
return 1
"""

_REAP = """
-- KEYS: the index of node X ({prefix}users:of:X), the set of nodes with an index.
-- ARGV: X, how many ids to take, the liveness key prefix, the entry key prefix,
-- '1' when X must be dead (else: X is this node, starting), then the nodes this
-- node counts as alive. X leaves every entry it takes from the index; an entry
-- whose home and seat node are then both dead (or none) is deleted.
local x = ARGV[1]
if ARGV[5] == '1' and redis.call('EXISTS', ARGV[3] .. x) == 1 then return {-1, 0} end
local living = {}
for i = 6, #ARGV do living[ARGV[i]] = true end
local function alive(n)
  if n == '' then return false end
  if living[n] then return true end
  return redis.call('EXISTS', ARGV[3] .. n) == 1
end
local ids = redis.call('SPOP', KEYS[1], tonumber(ARGV[2]))
local deleted = 0
for _, id in ipairs(ids) do
  local key = ARGV[4] .. id
  local h = redis.call('HGET', key, 'h')
  if h then
    local s = redis.call('HGET', key, 's') or ''
    local h2, s2 = h, s
    if h2 == x then h2 = '' end
    if s2 == x then s2 = '' end
    if not alive(h2) and not alive(s2) then
      redis.call('DEL', key)
      deleted = deleted + 1
    elseif h2 ~= h or s2 ~= s then
      redis.call('HSET', key, 'h', h2, 's', s2)
    end
  end
end
if redis.call('SCARD', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], x) end
return {#ids, deleted}
"""


def user_key(prefix: str, user_id: UserId) -> str:
    """The entry's key; the id JSON-encoded, so that ``7`` and ``"7"`` differ."""
    return f"{prefix}user:{_id_text(user_id)}"


def _id_text(user_id: UserId) -> str:
    return json.dumps(user_id, ensure_ascii=False)


def index_key(prefix: str, node_id: str) -> str:
    """The set of the user ids (JSON) whose entry names ``node_id`` as home or seat node."""
    return f"{prefix}users:of:{node_id}"


def token_digest(token: str | None) -> str:
    """The SHA-256 of a seat token (hex), or ``""`` for none."""
    return hashlib.sha256(token.encode()).hexdigest() if token else ""


@dataclass(frozen=True)
class Claim:
    """What the registry said about a ``join_lobby``'s user id."""

    kind: Literal["free", "local", "moved", "taken"]
    home: str
    """The user's home before the claim (``""``: none)."""
    seat: str
    """The user's seat node before the claim (``""``: none)."""
    vouched: bool
    """The token's digest matched the entry's (or the identity is signed)."""
    user: dict[str, Any] | None = None
    """The user as their home last wrote them (id, username, auth_level), when vouched."""
    home_alive: bool = False
    seat_alive: bool = False
    """Whether the home's and the seat node's liveness keys exist (as Redis sees it now)."""


@dataclass
class _Op:
    script: str
    key: str
    args: list[str]
    deadline: float | None = None  # claims: skipped once their asker gave up
    result: Any = None
    done: trio.Event | None = None


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class UserRegistry:
    """This node's side of the user registry; run :meth:`run` under ``supervise``."""

    def __init__(self, node_id: str, prefix: str, url: str, health: RedisHealth, node_ttl: float = 10.0) -> None:
        self.node_id = node_id
        self.node_ttl = node_ttl
        self.prefix = prefix
        self.url = url
        self._health = health
        self._send, self._receive = trio.open_memory_channel[_Op](QUEUE_SIZE)
        #: The batch being written (written again after a reconnect, in order).
        self._held: list[_Op] | None = None
        self._epoch_key = f"{prefix}users:epoch:{node_id}"
        self._nodes_key = f"{prefix}users:nodes"
        #: The entries this node is home for: user id -> (seat node, digest, user JSON).
        self._mine: dict[UserId, tuple[str, str, str]] = {}
        self._connected = False
        self._fallback_logged = False
        # --- the entries of dead nodes (see reap)
        self.dead_after = 10.0
        """Seconds a node must stay missing before its users' entries are deleted (as
        the directory's ``dead_after``: after a Redis restart every node is missing
        until it refreshes its liveness key)."""
        self._alive: frozenset[str] | None = None  # this node's view; None: not known yet
        self._missing_since: dict[str, float] = {}
        self._next_dead_check = 0.0
        self._reaping: list[str] = []  # dead nodes whose index is being emptied, in order
        self.reaped = 0
        """Entries of dead nodes (or of this node's previous process) deleted (statistics; tests read it)."""
        self.claims = 0
        """Claims answered by Redis (statistics; tests read it)."""
        self.sessions = 0
        """How often this node's entries were written (at each connection, and when
        Redis lost them); tests wait on it."""

    @property
    def pending(self) -> int:
        """Claims and writes not yet done in Redis (tests wait for 0)."""
        return self._receive.statistics().current_buffer_used + len(self._held or ())

    # --- the job -----------------------------------------------------------------

    async def run(self) -> None:
        """Writes and claims, in order, until Redis fails (``supervise`` restarts it)."""
        async with connect(self.url) as client:
            await self._restore(client)
            self._connected = True
            self._health.job_ok("users")
            try:
                reaped_last = False
                while True:
                    if trio.current_time() >= self._next_dead_check:
                        self._next_dead_check = trio.current_time() + self._dead_check_every()
                        await self._find_dead(client)
                    if self._held is None and self._reaping and not reaped_last:
                        reaped_last = True  # a chunk, then a waiting op (if any), and so on
                        await self._reap_chunk(client)
                        continue
                    reaped_last = False
                    if self._held is None and self._reaping:
                        try:
                            self._held = [self._receive.receive_nowait()]
                        except trio.WouldBlock:
                            continue
                    if self._held is None:
                        with trio.move_on_after(EPOCH_CHECK):
                            self._held = [await self._receive.receive()]
                        if self._held is None:
                            if not await client.exists([self._epoch_key]):
                                logger.warning("the user registry in Redis lost its data; writing this node's users again")
                                await self._restore(client)
                            continue
                    self._gather(self._held)
                    await self._write(client, self._held)
                    batch, self._held = self._held, None
                    for op in batch:
                        if op.done is not None:
                            op.done.set()
            finally:
                self._connected = False

    def _gather(self, batch: list[_Op]) -> None:
        """Add what else waits (up to ``BATCH_MAX``) to ``batch``: many players joining at
        once (a class starting) cost one round trip to Redis, not one each."""
        while len(batch) < BATCH_MAX:
            try:
                batch.append(self._receive.receive_nowait())
            except trio.WouldBlock:
                return

    async def _write(self, client: Any, batch: list[_Op]) -> None:
        """Run the batch's scripts in order, pipelined (one write, one round trip); a
        claim whose asker gave up already is skipped."""
        now = trio.current_time()
        live = [op for op in batch if op.deadline is None or now < op.deadline]
        if len(live) == 1:
            op = live[0]
            op.result = await client.eval(op.script, keys=[op.key], args=op.args)
        elif live:
            async with client.pipeline(transaction=False) as pipe:
                requests = [pipe.eval(op.script, keys=[op.key], args=op.args) for op in live]
            for op, request in zip(live, requests, strict=True):
                op.result = await request

    async def _restore(self, client: Any) -> None:
        """Write this node's entries where Redis has none (after a restart that lost them).

        The first session of this process first takes this node's id out of every
        entry a previous process of the same node id left (killed, then started
        again with the same ``--node-id``): those users are not here any more, and
        another node would count them as held by this one for ever."""
        # this node's liveness key first (as liveness.py writes it): no other node
        # reaps this node's index from now on, and the entries written below count
        # as held now, not only after the next liveness refresh
        await client.set(node_key(self.prefix, self.node_id), str(time.time()), px=max(1, round(self.node_ttl * 1000)))
        if self.sessions == 0:
            taken = deleted = 0
            while True:
                count, gone = await self._reap_script(client, self.node_id, must_be_dead=False)
                taken, deleted = taken + count, deleted + gone
                if count < REAP_CHUNK:
                    break
            self.reaped += deleted
            if taken:
                logger.info("user registry: %d entries named this node from a previous process; %d deleted",
                            taken, deleted)
        for user_id, (seat, digest, user) in list(self._mine.items()):
            await client.eval(_SET, keys=[user_key(self.prefix, user_id)],
                              args=[self.node_id, seat, digest, "1", user, *self._tail(user_id)])
        await client.set(self._epoch_key, "1")
        self.sessions += 1

    def _tail(self, user_id: UserId) -> list[str]:
        """The arguments every writing script ends with (``_TRACK``)."""
        return [index_key(self.prefix, ""), self._nodes_key, _id_text(user_id)]

    # --- the entries of dead nodes ------------------------------------------------------

    def set_alive(self, nodes: frozenset[str]) -> None:
        """The nodes alive now, as this node's liveness job counts them (a Redis
        restart adds nodes until the session settled, never removes them)."""
        self._alive = nodes | {self.node_id}

    def _dead_check_every(self) -> float:
        return max(0.5, self.node_ttl / 3)

    async def _find_dead(self, client: Any) -> None:
        """Nodes that hold an index but stayed missing ``dead_after`` seconds are
        reaped, by the living node with the lowest id (one node does it; should two
        disagree for a moment, the script's checks make it harmless)."""
        alive = self._alive
        if alive is None:
            return
        known = {_text(n) for n in await client.smembers(self._nodes_key)} - {self.node_id}
        now = trio.current_time()
        for node in known - alive:
            self._missing_since.setdefault(node, now)
        for node in list(self._missing_since):
            if node in alive or node not in known:
                del self._missing_since[node]
        if self.node_id != min(alive):
            return
        for node, since in sorted(self._missing_since.items()):
            if now - since >= self.dead_after and node not in self._reaping:
                logger.info("user registry: node %s is dead; deleting its users' entries", node)
                self._reaping.append(node)

    async def _reap_chunk(self, client: Any) -> None:
        node = self._reaping[0]
        count, deleted = await self._reap_script(client, node, must_be_dead=True)
        self.reaped += deleted
        if count < REAP_CHUNK:  # its index is empty (or it is alive again): done
            self._reaping.pop(0)
            self._missing_since.pop(node, None)

    async def _reap_script(self, client: Any, node: str, *, must_be_dead: bool) -> tuple[int, int]:
        """One chunk of ``_REAP`` on ``node``'s index: (ids taken, entries deleted);
        ids taken is -1 when the node turned out alive."""
        living = sorted(self._alive or ()) if must_be_dead else []
        if must_be_dead:
            living = [n for n in living if n != node] + [self.node_id]
        count, deleted = await client.eval(
            _REAP, keys=[index_key(self.prefix, node), self._nodes_key],
            args=[node, str(REAP_CHUNK), node_key(self.prefix, ""), f"{self.prefix}user:",
                  "1" if must_be_dead else "0", *living],
        )
        return int(count), int(deleted)

    def _queue(self, op: _Op) -> bool:
        try:
            self._send.send_nowait(op)
        except trio.WouldBlock:
            logger.warning("user registry: %d writes wait for Redis; dropping one", QUEUE_SIZE)
            return False
        return True

    # --- claims ------------------------------------------------------------------

    async def claim(self, user_id: UserId, token: str | None, *, signed: bool, move: bool = True) -> Claim | None:
        """What the registry says about ``user_id`` for a join on this node (see the
        module docstring); None when Redis did not answer within ``CLAIM_TIMEOUT``:
        the caller then lets this node's lobby decide alone."""
        if not self._connected:
            self._fell_back()
            return None
        self._fallback_logged = False
        args = [self.node_id, token_digest(token), "1" if signed else "0", "1" if move else "0",
                node_key(self.prefix, ""), *self._tail(user_id)]
        op = _Op(_CLAIM, user_key(self.prefix, user_id), args, trio.current_time() + CLAIM_TIMEOUT, done=trio.Event())
        if not self._queue(op):
            return None
        assert op.done is not None
        with trio.move_on_after(CLAIM_TIMEOUT):
            await op.done.wait()
        if op.result is None:
            self._fell_back()
            return None
        self.claims += 1
        kind, home, seat, match, user, home_alive, seat_alive = (_text(x) for x in op.result)
        try:
            profile = json.loads(user) if user else None
        except ValueError:
            profile = None
        return Claim(
            kind, home, seat, match == "1", profile if isinstance(profile, dict) else None,  # type: ignore[arg-type]
            home_alive == "1", seat_alive == "1",
        )

    def _fell_back(self) -> None:
        if not self._fallback_logged:
            self._fallback_logged = True
            logger.warning(
                "the user registry in Redis did not answer; users are checked by each node alone "
                "until it does (the same user id may then join on two nodes)"
            )

    # --- writes (after the fact; in order) --------------------------------------------

    def set(self, user_id: UserId, seat: str, token: str | None, user: dict[str, Any] | None = None) -> None:
        """This node is ``user_id``'s home, its seat on ``seat``, its token ``token``;
        ``user``: the user's profile (``id``, ``username``, ``auth_level``)."""
        digest = token_digest(token)
        profile = json.dumps(user, ensure_ascii=False, separators=(",", ":")) if user is not None else ""
        self._mine[user_id] = (seat, digest, profile)
        self._queue(_Op(_SET, user_key(self.prefix, user_id),
                        [self.node_id, seat, digest, "0", profile, *self._tail(user_id)]))

    def seat(self, user_id: UserId, seat: str) -> None:
        """``user_id`` (at home here) has their room seat on ``seat`` now."""
        mine = self._mine.get(user_id)
        if mine is not None:
            self._mine[user_id] = (seat, mine[1], mine[2])
        self._queue(_Op(_SEAT, user_key(self.prefix, user_id), [self.node_id, seat, *self._tail(user_id)]))

    async def seated_here(self, user_id: UserId, home: str) -> None:
        """A player of node ``home`` took a seat in a room of this node: written by
        this node too (and awaited, at most ``CLAIM_TIMEOUT``), so that it is in
        Redis even if ``home`` dies right after the player's ack."""
        if not self._connected:
            return
        op = _Op(_SEATED, user_key(self.prefix, user_id), [self.node_id, home, *self._tail(user_id)],
                 done=trio.Event())
        if self._queue(op):
            assert op.done is not None
            with trio.move_on_after(CLAIM_TIMEOUT):
                await op.done.wait()

    def user_gone(self, user_id: UserId) -> None:
        """``user_id`` left this node's lobby (the lobby's hook: ``UserRegistryView``)."""
        self._mine.pop(user_id, None)
        self._queue(_Op(_GONE, user_key(self.prefix, user_id), [self.node_id, *self._tail(user_id)]))
