"""``/metrics``: scraped with Prometheus' own parser around a scripted session.

Real python-socketio clients (one on long-polling, one on WebSocket, one that
floods) against a server in the test's loop; every count is checked against
what the script did and what the clients received.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families
from support.clients import open_clients
from support.rawhttp import http
from support.waiting import wait_until

from roomactors.cli import load_config
from roomactors.config import RoomServerConfig
from roomactors.metrics import RoomMetrics
from roomactors.server import RoomServer, serve_roomserver

DECK = {
    "name": "Week 3",
    "flashcards": [{"id": 1, "problem": "1/2+1/4", "answer": "3/4"}, {"id": 2, "problem": "2+2", "answer": "4"}],
}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(server: RoomServer) -> Samples:
    reply = await http(server.port, "GET", "/metrics")
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(reply.body.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value; a labelled counter that never moved reads 0."""
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
async def server(nursery: trio.Nursery) -> AsyncIterator[RoomServer]:
    config = RoomServerConfig(
        port=0, shutdown_timeout=5, metrics=True,
        # a burst of 6 commands, next to no refill, expelled at the third refusal
        command_rate=0.001, command_burst=6, flood_limit=2, flood_window=600,
    )
    yield await nursery.start(serve_roomserver, config)
    nursery.cancel_scope.cancel()


async def test_counts_around_a_scripted_session(server: RoomServer) -> None:
    before = await scrape(server)
    assert value(before, "roomactors_engineio_sessions") == 0
    assert value(before, "roomactors_updaterooms_total", outcome="sent") == 0
    assert value(before, "roomactors_rooms", state="waiting") == 0
    assert value(before, "roomactors_races_running") == 0
    assert value(before, "roomactors_answer_ack_latency_seconds_count") == 0

    async with open_clients("python") as clients:
        # Phase 1: a flooder on "/", alone. Six commands fit its burst, three do not;
        # the third refusal expels it (flood_limit 2).
        flooder = clients.connect(server.url, "/", transports=["websocket"])
        await flooder.wait_connected()
        for _ in range(6):
            (ack,) = await flooder.call("join_lobby", {"id": "f", "username": "flo"})
            assert ack["ok"] is True
        for _ in range(3):
            flooder.emit("join_lobby", {"id": "f", "username": "flo"})
        await flooder.wait_record("disconnect")
        await wait_until(lambda: server.sio.engineio.statistics().sessions == 0, timeout=10)
        middle = await scrape(server)
        assert value(middle, "roomactors_flood_disconnects_total") == 1
        assert value(middle, "roomactors_rate_limited_commands_total") == 3
        assert value(middle, "roomactors_commands_total", command="join_lobby", code="rate_limited") == 3
        assert len(flooder.received("rejected")) == 2  # the third answer left after the disconnect

        # Phase 2: a teacher on long-polling, a student on WebSocket, both on /lobby.
        teacher = clients.connect(server.url, "/lobby", transports=["polling"])
        student = clients.connect(server.url, "/lobby", transports=["websocket"])
        await teacher.wait_connected()
        await student.wait_connected()
        assert (await teacher.call("join_lobby", {"id": 1, "username": "mia"}))[0]["ok"] is True
        assert (await student.call("join_lobby", {"id": 2, "username": "sam"}))[0]["ok"] is True
        (created,) = await teacher.call("create_room", {"name": "Fractions", "deck": DECK})
        assert (await student.call("join_room", {"id": created["room"]["id"]}))[0]["ok"] is True
        (missing,) = await student.call("join_room", {"id": 999})
        assert missing["error"]["code"] == "room_not_found"
        for sock in (teacher, student):  # the last list, with the student seated
            await sock.next_event("updaterooms", where=lambda args: args[0] and args[0][0]["players"])
        after = await scrape(server)

        assert value(after, "roomactors_connections", transport="polling") == 1
        assert value(after, "roomactors_connections", transport="websocket") == 1
        assert value(after, "roomactors_engineio_sessions") == 2
        assert value(after, "roomactors_engineio_sessions_opened_total") == 3
        assert value(after, "roomactors_namespace_joins_total", namespace="/") == 1
        assert value(after, "roomactors_namespace_joins_total", namespace="/lobby") == 2
        assert value(after, "roomactors_namespace_sockets", namespace="/lobby") == 2
        assert value(after, "roomactors_namespace_sockets", namespace="/") == 0
        assert value(after, "roomactors_rooms", state="waiting") == 1
        assert value(after, "roomactors_players_seated") == 1
        assert value(after, "roomactors_users") == 2
        assert value(after, "roomactors_races_running") == 0
        assert value(after, "roomactors_commands_total", command="join_lobby", code="ok") == 8
        assert value(after, "roomactors_commands_total", command="create_room", code="ok") == 1
        assert value(after, "roomactors_commands_total", command="join_room", code="ok") == 1
        assert value(after, "roomactors_commands_total", command="join_room", code="room_not_found") == 1
        assert value(after, "roomactors_rate_limited_commands_total") == 3
        assert value(after, "roomactors_flood_disconnects_total") == 1
        assert value(after, "roomactors_outbox_overflows_total") == 0
        # Every list handed over in phase 2 was either received or replaced unseen.
        sent = value(after, "roomactors_updaterooms_total", outcome="sent") - value(
            middle, "roomactors_updaterooms_total", outcome="sent"
        )
        skipped = value(after, "roomactors_updaterooms_total", outcome="skipped") - value(
            middle, "roomactors_updaterooms_total", outcome="skipped"
        )
        received = len(teacher.received("updaterooms")) + len(student.received("updaterooms"))
        assert received > 0 and sent - skipped == received
        # The race's metrics are there, at zero until a race runs.
        assert value(after, "roomactors_raceprogress_total", outcome="sent") == 0
        assert value(after, "roomactors_answer_ack_latency_seconds_count") == 0

        # Phase 3: a race, straight to racing; one answer.
        room_id = created["room"]["id"]
        (started,) = await teacher.call("start_race", {"id": room_id, "countdown": 0})
        assert started["ok"] is True
        racing = await scrape(server)
        assert value(racing, "roomactors_races_running") == 1
        assert value(racing, "roomactors_rooms", state="racing") == 1
        assert value(racing, "roomactors_rooms", state="waiting") == 0
        (answered,) = await student.call(
            "answer", {"id": room_id, "race_id": started["race_id"], "card": 0, "answer": "3/4"}
        )
        assert answered["ok"] is True and answered["correct"] is True
        for sock in (teacher, student):
            await sock.next_event("raceprogress", where=lambda args: args[0]["players"][0]["answered"] == 1)
        raced = await scrape(server)
        assert value(raced, "roomactors_answer_ack_latency_seconds_count") == 1
        assert 0 <= value(raced, "roomactors_answer_ack_latency_seconds_sum") < 5
        assert value(raced, "roomactors_commands_total", command="answer", code="ok") == 1
        progress_sent = value(raced, "roomactors_raceprogress_total", outcome="sent")
        progress_skipped = value(raced, "roomactors_raceprogress_total", outcome="skipped")
        progress_received = len(teacher.received("raceprogress")) + len(student.received("raceprogress"))
        assert progress_sent - progress_skipped >= progress_received >= 2


async def test_metrics_are_off_unless_asked_for(nursery: trio.Nursery) -> None:
    server: RoomServer = await nursery.start(serve_roomserver, RoomServerConfig(port=0))
    assert server.metrics is None
    assert (await http(server.port, "GET", "/metrics")).status == 404
    nursery.cancel_scope.cancel()


async def test_only_get_is_answered(server: RoomServer) -> None:
    assert (await http(server.port, "POST", "/metrics")).status == 405


async def test_two_servers_count_apart(nursery: trio.Nursery, server: RoomServer) -> None:
    other: RoomServer = await nursery.start(serve_roomserver, RoomServerConfig(port=0, metrics=True))
    async with open_clients("python") as clients:
        sock = clients.connect(server.url, "/lobby")
        await sock.wait_connected()
        await sock.call("join_lobby", {"id": 1, "username": "mia"})
    assert value(await scrape(server), "roomactors_commands_total", command="join_lobby", code="ok") == 1
    assert value(await scrape(other), "roomactors_commands_total", command="join_lobby", code="ok") == 0


async def test_loop_lag_probe_wakes_on_time_on_an_idle_loop(autojump_clock: trio.testing.MockClock) -> None:
    async def no_sample() -> object:
        raise AssertionError("not scraped here")

    metrics = RoomMetrics(no_sample)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(metrics.run_lag_probe, 1.0)
        await trio.sleep(3.5)
        nursery.cancel_scope.cancel()
    assert metrics.registry.get_sample_value("roomactors_event_loop_lag_seconds_count") == 3
    assert metrics.registry.get_sample_value("roomactors_event_loop_lag_seconds_sum") == 0


def test_cli_switch_and_environment() -> None:
    assert load_config(["--metrics"], {}).metrics is True
    assert load_config([], {"ROOMSERVER_METRICS": "1"}).metrics is True
    assert load_config([], {"ROOMSERVER_METRICS": "false"}).metrics is False
    assert load_config([], {}).metrics is False


def test_cli_without_prometheus_client_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    from roomactors.cli import main

    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import fails as if not installed
    assert main(["--port", "0", "--metrics"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'roomactors[metrics]'" in err
