"""Redis connections that survive Redis: one supervised loop per job, one log per outage.

Every cluster job (the liveness key, the python-socketio listener, ...) runs as
``supervise(health, name, job)``: ``job`` opens its own coredis client and works
until Redis goes away, which coredis reports by raising (an exception group from
its task groups). The loop then waits with exponential backoff and starts the
job again. The node's own clients never notice: nothing here touches them.

Outages are logged once per outage (not once per job or per retry) by
:class:`RedisHealth`, which also holds what ``/healthz`` reports.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable

import coredis
import trio
from coredis.retry import NoRetryPolicy

__all__ = ("RedisHealth", "connect", "supervise")

logger = logging.getLogger("roomactors.cluster")

BACKOFF_FIRST = 0.05
"""Seconds before the first retry after a failure; doubled each time."""

BACKOFF_MAX = 2.0
"""The longest wait between two attempts: a restarted Redis is found within it."""


class RedisHealth:
    """Whether Redis answers, as the jobs last saw it; logs each change once."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.reachable = False
        self.ever_reachable = False
        self.alive_nodes = 0
        self._failing: set[str] = set()
        self._outage_logged = False

    def job_ok(self, name: str) -> None:
        """A job talked to Redis successfully."""
        self._failing.discard(name)
        if not self.reachable and not self._failing:
            if self.ever_reachable:
                logger.warning("Redis at %s is reachable again; reconnected", _safe(self.url))
            else:
                logger.info("connected to Redis at %s", _safe(self.url))
            self.reachable = True
            self.ever_reachable = True
            self._outage_logged = False

    def job_failed(self, name: str, exc: BaseException) -> None:
        """A job lost Redis (or never reached it); the first failure of an outage is logged."""
        self._failing.add(name)
        if self.reachable or not self._outage_logged:
            logger.warning(
                "Redis at %s is unreachable (%s); this node keeps serving its own clients "
                "and reconnects when Redis is back",
                _safe(self.url),
                _describe(exc),
            )
            self._outage_logged = True
        self.reachable = False


def _safe(url: str) -> str:
    """The URL without a password, for logs."""
    if "@" in url:
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***@{rest.rpartition('@')[2]}"
    return url


def _describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


def connect(url: str) -> coredis.Redis[bytes]:
    """A coredis client for ``url`` that fails at once instead of retrying inside:
    the supervising loop retries, so that outages are seen and logged."""
    return coredis.Redis.from_url(url, retry_policy=NoRetryPolicy())


async def supervise(health: RedisHealth, name: str, job: Callable[[], Awaitable[None]]) -> None:
    """Run ``job`` for ever, restarting it with backoff whenever Redis fails it.

    ``job`` should call ``health.job_ok(name)`` once it has talked to Redis. Only
    :class:`Exception` (the outage, or a bug, which is logged with its traceback at
    debug level) is caught; cancellation passes.
    """
    delay = BACKOFF_FIRST
    while True:
        started = trio.current_time()
        try:
            await job()
        except BaseExceptionGroup as group:
            # coredis raises groups from its task groups; when we are being cancelled,
            # what its clean-up then failed at (a closed connection) is no outage.
            cancelled, failure = group.split(trio.Cancelled)
            if cancelled is not None:
                if failure is not None:
                    logger.debug("cluster job %s: errors while stopping", name, exc_info=failure)
                raise cancelled from None
            await _failed(health, name, group)
        except Exception as exc:
            await _failed(health, name, exc)
        else:
            return
        if trio.current_time() - started > 2 * BACKOFF_MAX:
            delay = BACKOFF_FIRST  # it ran a while: a new outage starts afresh
        await trio.sleep(delay * (0.5 + random.random() / 2))
        delay = min(delay * 2, BACKOFF_MAX)


async def _failed(health: RedisHealth, name: str, exc: BaseException) -> None:
    await trio.lowlevel.checkpoint()  # raises Cancelled when this failure is our own stop
    health.job_failed(name, exc)
    logger.debug("cluster job %s failed", name, exc_info=exc)
