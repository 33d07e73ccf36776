"""The harnesses' shared pieces without any network: the event log's waiting rules,
the binary encoding of the Node pipe, the skip when Node's packages are missing."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from support import nodeclient
from support.clientapi import ConnectRefused, EventLog, ReceivedEvent, from_wire, normalize_reason, to_wire


def test_binary_round_trip_through_the_pipe_encoding() -> None:
    value = [b"\x00\xff", {"k": [bytearray(b"ab"), 1, None]}, "s"]
    wire = to_wire(value)
    assert wire[0] == {"$bin": "AP8="}
    assert from_wire(wire) == [b"\x00\xff", {"k": [b"ab", 1, None]}, "s"]


def test_disconnect_reasons_share_one_vocabulary() -> None:
    assert normalize_reason("io server disconnect") == "server disconnect"
    assert normalize_reason("io client disconnect") == "client disconnect"
    assert normalize_reason("server disconnect") == "server disconnect"
    assert normalize_reason("transport close") == "transport close"


async def test_next_event_returns_earlier_arrivals_once_each(autojump_clock: trio.abc.Clock) -> None:
    log = EventLog()
    log.record(ReceivedEvent("a", [1]))
    log.record(ReceivedEvent("b", [2]))
    log.record(ReceivedEvent("a", [3]))
    assert await log.next_event("a") == [1]
    assert await log.next_event("b") == [2]
    assert await log.next_event("a") == [3]
    with pytest.raises(trio.TooSlowError, match=r"\['a', 'b', 'a'\]"):
        await log.next_event("a", timeout=1)


async def test_next_event_wakes_on_arrival(nursery: trio.Nursery, autojump_clock: trio.abc.Clock) -> None:
    log = EventLog()

    async def later() -> None:
        await trio.sleep(5)
        log.record(ReceivedEvent("x", ["late"]))

    nursery.start_soon(later)
    assert await log.next_event("x", timeout=10) == ["late"]
    assert trio.current_time() == pytest.approx(5)


async def test_wait_connected_raises_on_connect_error(autojump_clock: trio.abc.Clock) -> None:
    log = EventLog()
    log.record(ReceivedEvent("connect_error", ["Invalid namespace"], detail={"x": 1}))
    with pytest.raises(ConnectRefused) as refused:
        await log.wait_connected()
    assert (refused.value.message, refused.value.data) == ("Invalid namespace", {"x": 1})
    assert not log.connected


def test_node_harness_skips_without_node_modules(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(nodeclient, "JS_DIR", tmp_path)
    with pytest.raises(pytest.skip.Exception, match="npm install"):
        nodeclient.node_or_skip()
