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

__all__ = ("CLAIM_TIMEOUT", "Claim", "UserRegistry", "token_digest", "user_key")

logger = logging.getLogger("roomactors.cluster")

CLAIM_TIMEOUT = 1.0
"""Seconds a ``join_lobby`` waits for Redis's answer before it is checked by this node alone."""

QUEUE_SIZE = 10_000
"""Registry writes waiting for Redis; beyond it new ones are dropped (and logged)."""

EPOCH_CHECK = 1.0
"""Seconds between two looks at this node's epoch marker while the job is idle."""

_CLAIM = """
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
  return {'free', '', '', '0', '', '0', '0'}
end
local match = '0'
if ARGV[3] == '1' or (d ~= '' and d == ARGV[2]) then match = '1' end
if h == me then return {'local', h, s, match, u, ha, sa} end
if match == '1' then
  if ARGV[4] == '1' then redis.call('HSET', KEYS[1], 'h', me) end
  return {'moved', h, s, match, u, ha, sa}
end
return {'taken', h, s, match, '', ha, sa}
"""

_SET = """
-- KEYS[1]: the entry. ARGV: this node, seat node, digest, create-only '1'/'0', user (JSON)
local h = redis.call('HGET', KEYS[1], 'h')
if ARGV[4] == '1' and h then return 0 end
if not h or h == '' or h == ARGV[1] then
  redis.call('HSET', KEYS[1], 'h', ARGV[1], 's', ARGV[2], 'd', ARGV[3], 'u', ARGV[5])
  return 1
end
return 0
"""

_SEAT = """
-- KEYS[1]: the entry. ARGV: this node, seat node
if redis.call('HGET', KEYS[1], 'h') == ARGV[1] then
  redis.call('HSET', KEYS[1], 's', ARGV[2])
  return 1
end
return 0
"""

_SEATED = """
-- KEYS[1]: the entry. ARGV: this node (the seat node), the user's home
local h = redis.call('HGET', KEYS[1], 'h')
if h == ARGV[2] then
  redis.call('HSET', KEYS[1], 's', ARGV[1])
  return 1
end
return 0
"""

_GONE = """
-- KEYS[1]: the entry. ARGV: this node
local h = redis.call('HGET', KEYS[1], 'h')
if not h then return 0 end
local s = redis.call('HGET', KEYS[1], 's') or ''
if h == ARGV[1] then h = '' end
if s == ARGV[1] then s = '' end
if h == '' and s == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'h', h, 's', s)
end
return 1
"""


def user_key(prefix: str, user_id: UserId) -> str:
    """The entry's key; the id JSON-encoded, so that ``7`` and ``"7"`` differ."""
    return f"{prefix}user:{json.dumps(user_id, ensure_ascii=False)}"


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
        self._held: _Op | None = None
        self._epoch_key = f"{prefix}users:epoch:{node_id}"
        #: The entries this node is home for: user id -> (seat node, digest, user JSON).
        self._mine: dict[UserId, tuple[str, str, str]] = {}
        self._connected = False
        self._fallback_logged = False
        self.claims = 0
        """Claims answered by Redis (statistics; tests read it)."""
        self.sessions = 0
        """How often this node's entries were written (at each connection, and when
        Redis lost them); tests wait on it."""

    # --- the job -----------------------------------------------------------------

    async def run(self) -> None:
        """Writes and claims, in order, until Redis fails (``supervise`` restarts it)."""
        async with connect(self.url) as client:
            await self._restore(client)
            self._connected = True
            self._health.job_ok("users")
            try:
                while True:
                    if self._held is None:
                        with trio.move_on_after(EPOCH_CHECK):
                            self._held = await self._receive.receive()
                        if self._held is None:
                            if not await client.exists([self._epoch_key]):
                                logger.warning("the user registry in Redis lost its data; writing this node's users again")
                                await self._restore(client)
                            continue
                    op = self._held
                    if op.deadline is None or trio.current_time() < op.deadline:
                        op.result = await client.eval(op.script, keys=[op.key], args=op.args)
                    self._held = None
                    if op.done is not None:
                        op.done.set()
            finally:
                self._connected = False

    async def _restore(self, client: Any) -> None:
        """Write this node's entries where Redis has none (after a restart that lost them)."""
        for user_id, (seat, digest, user) in list(self._mine.items()):
            await client.eval(_SET, keys=[user_key(self.prefix, user_id)], args=[self.node_id, seat, digest, "1", user])
        await client.set(self._epoch_key, "1")
        # and this node's liveness key (as liveness.py writes it): the entries just
        # written count as held now, not only after the next liveness refresh
        await client.set(node_key(self.prefix, self.node_id), str(time.time()), px=max(1, round(self.node_ttl * 1000)))
        self.sessions += 1

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
                node_key(self.prefix, "")]
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
        self._queue(_Op(_SET, user_key(self.prefix, user_id), [self.node_id, seat, digest, "0", profile]))

    def seat(self, user_id: UserId, seat: str) -> None:
        """``user_id`` (at home here) has their room seat on ``seat`` now."""
        mine = self._mine.get(user_id)
        if mine is not None:
            self._mine[user_id] = (seat, mine[1], mine[2])
        self._queue(_Op(_SEAT, user_key(self.prefix, user_id), [self.node_id, seat]))

    async def seated_here(self, user_id: UserId, home: str) -> None:
        """A player of node ``home`` took a seat in a room of this node: written by
        this node too (and awaited, at most ``CLAIM_TIMEOUT``), so that it is in
        Redis even if ``home`` dies right after the player's ack."""
        if not self._connected:
            return
        op = _Op(_SEATED, user_key(self.prefix, user_id), [self.node_id, home], done=trio.Event())
        if self._queue(op):
            assert op.done is not None
            with trio.move_on_after(CLAIM_TIMEOUT):
                await op.done.wait()

    def user_gone(self, user_id: UserId) -> None:
        """``user_id`` left this node's lobby (the lobby's hook: ``UserRegistryView``)."""
        self._mine.pop(user_id, None)
        self._queue(_Op(_GONE, user_key(self.prefix, user_id), [self.node_id]))
