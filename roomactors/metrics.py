"""Prometheus metrics of one room server, served at ``/metrics`` with ``--metrics``.

Through ``prometheus-client`` (the optional ``metrics`` extra), never written by
hand. Every server has a :class:`~prometheus_client.CollectorRegistry` of its own
(no process-wide default registry, no module-level state), so two servers in one
process (the tests, an embedder) never mix their counts.

Two kinds of numbers:

* **Levels** (connections, sessions, rooms, players) are read at scrape time
  from the layers' own ``statistics()`` and the lobby's room list: nothing on
  the hot path counts them twice.
* **Events** (commands, namespace joins, room lists sent and skipped, flood
  disconnects, answer acks) are counted where they happen, through the small
  :class:`RoomMetrics` methods the room app calls when a server has metrics on
  (``RoomApp.metrics`` is None otherwise: no cost at all).

docs/deployment.md says what each metric means and what to watch.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field

import trio
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .engineio import EngineIOStatistics, HttpRequest, HttpResponse

__all__ = ("METRICS_PATH", "LOOP_LAG_INTERVAL", "MetricsSample", "RoomMetrics", "ROOM_STATES")

logger = logging.getLogger(__name__)

METRICS_PATH = "/metrics"

#: How often the lag probe wakes, in seconds: how late it wakes is the loop's lag.
LOOP_LAG_INTERVAL = 1.0

#: A room's states (race.md); rooms before the race existed are all ``waiting``.
ROOM_STATES = ("waiting", "countdown", "racing", "finished")
#: The states in which a race is running (its countdown included).
RACING_STATES = frozenset({"countdown", "racing"})

_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Seconds from an ``answer`` arriving to its ack being queued: sub-millisecond
#: normally, tens of milliseconds when the room's actor is behind.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
#: Seconds a periodic task woke late: a healthy loop stays under 10 ms.
_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True)
class MetricsSample:
    """The levels at one scrape, gathered (with awaits) before the registry renders."""

    engineio: EngineIOStatistics
    namespace_sockets: dict[str, int] = field(default_factory=dict)
    rooms_by_state: dict[str, int] = field(default_factory=dict)
    players_seated: int = 0
    races_running: int = 0
    users: int = 0


SampleSource = Callable[[], Awaitable[MetricsSample]]


class _LevelsCollector(Collector):
    """Renders the latest :class:`MetricsSample` (set right before each render)."""

    def __init__(self) -> None:
        self.sample: MetricsSample | None = None

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return ()  # families vary with the sample; nothing to check them against

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        sample = self.sample
        if sample is None:
            return
        eio = sample.engineio
        connections = GaugeMetricFamily(
            "roomactors_connections", "Engine.IO sessions open, by their current transport", labels=["transport"]
        )
        connections.add_metric(["polling"], eio.polling_sessions)
        connections.add_metric(["websocket"], eio.websocket_sessions)
        yield connections
        yield GaugeMetricFamily(
            "roomactors_engineio_sessions", "Engine.IO sessions registered (open or flushing their close)",
            value=eio.sessions,
        )
        yield GaugeMetricFamily(
            "roomactors_tcp_connections", "TCP connections open (WebSocket ones included)",
            value=eio.http_connections,
        )
        yield CounterMetricFamily(
            "roomactors_engineio_sessions_opened", "Engine.IO sessions opened since start", value=eio.sessions_opened
        )
        yield CounterMetricFamily(
            "roomactors_engineio_sessions_refused",
            "Handshakes refused by a limit or the shutdown (HTTP 503)", value=eio.sessions_refused,
        )
        yield CounterMetricFamily(
            "roomactors_tcp_connections_refused",
            "TCP connections closed at once, over the limits' TCP share", value=eio.connections_refused,
        )
        yield CounterMetricFamily(
            "roomactors_outbox_overflows",
            "Sessions closed because their client could not keep up (outbox full)", value=eio.outbox_overflows,
        )
        yield GaugeMetricFamily(
            "roomactors_outbox_messages", "Messages queued in all outboxes, not yet written", value=eio.outbox_messages
        )
        sockets = GaugeMetricFamily(
            "roomactors_namespace_sockets", "Sockets connected, by namespace", labels=["namespace"]
        )
        for namespace, count in sorted(sample.namespace_sockets.items()):
            sockets.add_metric([namespace], count)
        yield sockets
        rooms = GaugeMetricFamily("roomactors_rooms", "Rooms that exist, by state", labels=["state"])
        for state in ROOM_STATES:
            rooms.add_metric([state], sample.rooms_by_state.get(state, 0))
        for state, count in sorted(sample.rooms_by_state.items()):
            if state not in ROOM_STATES:
                rooms.add_metric([state], count)
        yield rooms
        yield GaugeMetricFamily(
            "roomactors_players_seated", "Players sitting in a room (hosts not counted)", value=sample.players_seated
        )
        yield GaugeMetricFamily("roomactors_users", "Users bound to a connection", value=sample.users)
        yield GaugeMetricFamily(
            "roomactors_races_running", "Races in their countdown or running", value=sample.races_running
        )


class RoomMetrics:
    """One server's metrics: a registry of its own, the event counters the room
    app feeds, the levels read at scrape time, and the event-loop lag probe."""

    def __init__(self, sample: SampleSource) -> None:
        self._sample = sample
        registry = self.registry = CollectorRegistry(auto_describe=True)
        self.namespace_joins = Counter(
            "roomactors_namespace_joins", "Sockets that joined a namespace", ["namespace"], registry=registry
        )
        self.commands = Counter(
            "roomactors_commands",
            "Commands answered, by command and result code (ok, or the error code)",
            ["command", "code"],
            registry=registry,
        )
        self.rate_limited = Counter(
            "roomactors_rate_limited_commands", "Commands refused with rate_limited", registry=registry
        )
        self.flood_disconnects = Counter(
            "roomactors_flood_disconnects",
            "Connections disconnected for flooding (too many rate_limited answers)", registry=registry,
        )
        self.updaterooms = Counter(
            "roomactors_updaterooms",
            "updaterooms lists handed to clients (sent), and undelivered ones a newer list replaced (skipped)",
            ["outcome"],
            registry=registry,
        )
        self.raceprogress = Counter(
            "roomactors_raceprogress",
            "raceprogress events handed to clients (sent), and undelivered ones a newer one replaced (skipped)",
            ["outcome"],
            registry=registry,
        )
        self.answer_ack_latency = Histogram(
            "roomactors_answer_ack_latency_seconds",
            "Seconds from an answer command arriving to its ack being queued",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.loop_lag = Histogram(
            "roomactors_event_loop_lag_seconds",
            f"How late a periodic task (every {LOOP_LAG_INTERVAL:g} s) woke: the event loop's lag",
            buckets=_LAG_BUCKETS,
            registry=registry,
        )
        self.loop_lag_last = Gauge(
            "roomactors_event_loop_lag_last_seconds", "The latest event-loop lag measured", registry=registry
        )
        # Labelled counters show up at 0 from the start, so a dashboard's rate() has a baseline.
        for outcome in ("sent", "skipped"):
            self.updaterooms.labels(outcome)
            self.raceprogress.labels(outcome)
        self._levels = _LevelsCollector()
        registry.register(self._levels)

    # -- events, called by the room app (and the race, once it is there) -------

    def namespace_joined(self, namespace: str) -> None:
        self.namespace_joins.labels(namespace).inc()

    def command_answered(self, command: str, code: str) -> None:
        """``code``: ``ok``, or the error code the client got."""
        self.commands.labels(command, code).inc()
        if code == "rate_limited":
            self.rate_limited.inc()

    def flood_disconnected(self) -> None:
        self.flood_disconnects.inc()

    def room_list_sent(self, *, replaced_undelivered: bool) -> None:
        """One ``updaterooms`` handed to a client; ``replaced_undelivered``: it
        replaced an older list the client had not received yet (newest wins)."""
        self.updaterooms.labels("sent").inc()
        if replaced_undelivered:
            self.updaterooms.labels("skipped").inc()

    def race_progress_sent(self, *, replaced_undelivered: bool) -> None:
        """One ``raceprogress`` handed to a client (the race calls it)."""
        self.raceprogress.labels("sent").inc()
        if replaced_undelivered:
            self.raceprogress.labels("skipped").inc()

    def answer_acked(self, seconds: float) -> None:
        """An ``answer``'s ack was queued ``seconds`` after the command arrived."""
        self.answer_ack_latency.observe(seconds)

    # -- serving ---------------------------------------------------------------

    async def render(self) -> bytes:
        """The text exposition format of everything, levels sampled now."""
        sample = await self._sample()
        # No await between setting the sample and rendering it: one scrape, one sample.
        self._levels.sample = sample
        return generate_latest(self.registry)

    async def route(self, request: HttpRequest) -> HttpResponse:
        """``GET /metrics``."""
        if request.method not in ("GET", "HEAD"):
            return HttpResponse(405, (("allow", "GET, HEAD"), ("content-type", "text/plain")), b"use GET\n")
        body = await self.render()
        return HttpResponse(200, (("content-type", _CONTENT_TYPE), ("cache-control", "no-store")), body)

    async def run_lag_probe(self, interval: float = LOOP_LAG_INTERVAL) -> None:
        """Forever: sleep ``interval``, record how late the wake-up came."""
        while True:
            due = trio.current_time() + interval
            await trio.sleep_until(due)
            lag = max(0.0, trio.current_time() - due)
            self.loop_lag.observe(lag)
            self.loop_lag_last.set(lag)
            if lag > 0.5:
                logger.warning("event loop %.0f ms late: the server is overloaded or blocked", lag * 1000)
