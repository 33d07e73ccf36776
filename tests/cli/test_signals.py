"""run_until_signal and main: start, log the URL, SIGINT/SIGTERM -> graceful shutdown.

A stand-in replaces serve_roomserver so that these tests pin the CLI's own job
(signals, exit codes, logs) whatever state the real server is in. Signals are
raised in this very process, but only once the stand-in has started, i.e. while
run_until_signal's signal receiver is open, so they never reach pytest.
"""

from __future__ import annotations

import gc
import logging
import signal
from typing import Any

import pytest
import trio

from roomactors import cli
from roomactors.cli import SHUTDOWN_GRACE, run_until_signal
from roomactors.config import RoomServerConfig


class FakeServer:
    """What serve_roomserver hands to task_status.started, with a scriptable shutdown."""

    url = "http://127.0.0.1:45678"
    port = 45678

    def __init__(self, *, shutdown_hangs: bool = False, signal_on_start: int | None = None) -> None:
        self.shutdown_hangs = shutdown_hangs
        self.signal_on_start = signal_on_start
        self.started = trio.Event()
        self.shutdown_called = trio.Event()
        self.shutdown_reasons: list[str] = []
        self.serve_cancelled = False

    async def shutdown(self, reason: str = "shutdown") -> None:
        self.shutdown_reasons.append(reason)
        self.shutdown_called.set()
        if self.shutdown_hangs:
            await trio.sleep_forever()

    async def serve(self, config: RoomServerConfig, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started(self)
        self.started.set()
        if self.signal_on_start is not None:
            signal.raise_signal(self.signal_on_start)
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            self.serve_cancelled = True
            raise


async def _run_and_signal(server: FakeServer, config: RoomServerConfig, *signums: int) -> int:
    exit_codes: list[int] = []
    async with trio.open_nursery() as nursery:

        async def run() -> None:
            exit_codes.append(await run_until_signal(config, serve=server.serve))

        nursery.start_soon(run)
        await server.started.wait()
        signal.raise_signal(signums[0])
        if len(signums) > 1:
            await server.shutdown_called.wait()
            signal.raise_signal(signums[1])
    return exit_codes[0]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_shuts_down_gracefully_and_exits_0(
    signum: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="roomactors")
    server = FakeServer()
    assert await _run_and_signal(server, RoomServerConfig(port=0), signum) == 0
    assert server.shutdown_reasons == ["shutdown"]
    assert server.serve_cancelled
    messages = [record.getMessage() for record in caplog.records]
    assert "roomserver listening: clients connect to http://127.0.0.1:45678" in messages
    assert any(signal.Signals(signum).name in m and "shutting down" in m for m in messages)


async def test_a_second_signal_exits_at_once_non_zero() -> None:
    server = FakeServer(shutdown_hangs=True)
    config = RoomServerConfig(shutdown_timeout=3600)
    start = trio.current_time()
    code = await _run_and_signal(server, config, signal.SIGTERM, signal.SIGINT)
    assert code == 128 + signal.SIGINT
    assert server.serve_cancelled
    assert trio.current_time() - start < 60  # not the shutdown timeout


async def test_a_shutdown_that_overruns_exits_1(autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture) -> None:
    server = FakeServer(shutdown_hangs=True)
    config = RoomServerConfig(shutdown_timeout=5)
    async with trio.open_nursery() as nursery:
        code_box: list[int] = []

        async def run() -> None:
            code_box.append(await run_until_signal(config, serve=server.serve))

        nursery.start_soon(run)
        await server.started.wait()
        signal.raise_signal(signal.SIGTERM)
        await server.shutdown_called.wait()
        begun = trio.current_time()
    assert code_box == [1]
    assert trio.current_time() - begun == pytest.approx(5 + SHUTDOWN_GRACE)
    assert any("shutdown overran" in record.getMessage() for record in caplog.records)


async def test_a_server_that_stops_by_itself_is_an_error() -> None:
    async def serve(config: RoomServerConfig, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started(FakeServer())

    with pytest.RaisesGroup(pytest.RaisesExc(RuntimeError, match="no shutdown was asked"), flatten_subgroups=True):
        await run_until_signal(RoomServerConfig(), serve=serve)


def test_main_exits_0_after_sigterm(monkeypatch: pytest.MonkeyPatch) -> None:
    server = FakeServer(signal_on_start=signal.SIGTERM)
    monkeypatch.setattr(cli, "_load_serve", lambda: server.serve)
    assert cli.main(["--port", "0"]) == 0
    assert server.shutdown_reasons == ["shutdown"]


def test_main_reports_a_bind_failure_in_one_line_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def serve(config: RoomServerConfig, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        raise OSError(98, "Address already in use")

    monkeypatch.setattr(cli, "_load_serve", lambda: serve)
    assert cli.main(["--port", "8123"]) == 1
    critical = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert [r.getMessage() for r in critical] == ["cannot serve on 127.0.0.1:8123: [Errno 98] Address already in use"]


async def test_a_signal_during_start_up_stops_the_start_and_exits_0() -> None:
    entered = trio.Event()
    cancelled: list[bool] = []

    async def slow_serve(config: RoomServerConfig, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        entered.set()  # run_until_signal's signal receiver is open by now
        try:
            await trio.sleep_forever()  # never ready
        except trio.Cancelled:
            cancelled.append(True)
            raise

    codes: list[int] = []
    async with trio.open_nursery() as nursery:

        async def run() -> None:
            codes.append(await run_until_signal(RoomServerConfig(), serve=slow_serve))

        nursery.start_soon(run)
        await entered.wait()
        signal.raise_signal(signal.SIGTERM)
    assert codes == [0]
    assert cancelled == [True]


def test_main_raises_the_gc_threshold_while_serving_and_restores_it(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[int, int, int]] = []

    async def serve(config: RoomServerConfig, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        seen.append(gc.get_threshold())
        raise OSError(98, "Address already in use")

    monkeypatch.setattr(cli, "_load_serve", lambda: serve)
    before = gc.get_threshold()
    assert cli.main(["--port", "8123"]) == 1
    assert seen == [(cli.GC_THRESHOLD, *before[1:])]
    assert gc.get_threshold() == before
