"""EngineReceiver: the transports drive an application layer directly (no
reader task of its own), in order, with back-pressure; its deadline rides on
the heartbeat; it hears of the close once."""

from __future__ import annotations

import json
from typing import Any

import trio
import trio.testing

from roomactors.engineio import EngineIOConfig, EngineIOServer, EngineSocket

from eio_client import http


class Recorder:
    def __init__(self, sock: EngineSocket, gate: trio.Event | None = None, deadline: float | None = None) -> None:
        self.sock = sock
        self.gate = gate
        self.deadline = deadline
        self.messages: list[str | bytes] = []
        self.closes: list[str] = []
        self.timers: list[float] = []
        self.changed = trio.Event()

    async def on_message(self, data: str | bytes) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.messages.append(data)
        self.sock.send(f"got {data!s}")
        self._changed()

    def on_close(self, reason: str) -> None:
        self.closes.append(reason)
        self._changed()

    def next_deadline(self) -> float | None:
        return self.deadline

    def on_timer(self, now: float) -> None:
        if self.deadline is not None and now >= self.deadline:
            self.timers.append(now)
            self.deadline = None
            self.sock.send("timer")

    def _changed(self) -> None:
        self.changed.set()
        self.changed = trio.Event()

    async def wait_until(self, predicate: Any) -> None:
        with trio.fail_after(10):
            while not predicate():
                await self.changed.wait()


async def serve(nursery: trio.Nursery, config: EngineIOConfig, **recorder: Any) -> tuple[int, list[Recorder]]:
    receivers: list[Recorder] = []

    def on_open(sock: EngineSocket) -> None:
        receivers.append(Recorder(sock, **recorder))
        sock.set_receiver(receivers[-1])

    async def handler(sock: EngineSocket) -> None:
        await sock.wait_closed()

    server = EngineIOServer(handler, config, on_open=on_open)
    addresses = await nursery.start(server.serve, "127.0.0.1", 0)
    return addresses[0][1], receivers


async def test_messages_reach_the_receiver_in_order_then_one_close(nursery: trio.Nursery, open_ws: Any) -> None:
    port, receivers = await serve(nursery, EngineIOConfig())
    ws = await open_ws(f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket")
    assert (await ws.get_message()).startswith("0{")
    for n in range(5):
        await ws.send_message(f"4m{n}")
    assert [await ws.get_message() for _ in range(5)] == [f"4got m{n}" for n in range(5)]
    (receiver,) = receivers
    assert receiver.messages == [f"m{n}" for n in range(5)]
    await ws.send_message("1")  # the client closes
    await receiver.wait_until(lambda: receiver.closes)
    await trio.testing.wait_all_tasks_blocked()
    assert receiver.closes == ["client close"]
    await ws.aclose()


async def test_a_waiting_receiver_holds_the_transport_back(nursery: trio.Nursery, open_ws: Any) -> None:
    gate = trio.Event()
    port, receivers = await serve(nursery, EngineIOConfig(), gate=gate)
    ws = await open_ws(f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket")
    assert (await ws.get_message()).startswith("0{")
    await ws.send_message("4first")
    await ws.send_message("4second")
    await trio.testing.wait_all_tasks_blocked()
    (receiver,) = receivers
    assert receiver.messages == []  # the first waits in on_message; the second is not read
    gate.set()
    assert [await ws.get_message(), await ws.get_message()] == ["4got first", "4got second"]
    assert receiver.messages == ["first", "second"]
    await ws.aclose()


async def test_polling_posts_reach_the_receiver_too(nursery: trio.Nursery) -> None:
    port, receivers = await serve(nursery, EngineIOConfig())
    reply = await http(port, "GET", "/socket.io/?EIO=4&transport=polling")
    sid = json.loads(reply.text[1:])["sid"]
    assert (await http(port, "POST", f"/socket.io/?EIO=4&transport=polling&sid={sid}", b"4a\x1e4b")).body == b"ok"
    assert (await http(port, "GET", f"/socket.io/?EIO=4&transport=polling&sid={sid}")).text == "4got a\x1e4got b"
    assert receivers[0].messages == ["a", "b"]


async def test_the_receivers_deadline_rides_on_the_heartbeat(
    nursery: trio.Nursery, open_ws: Any, autojump_clock: trio.testing.MockClock
) -> None:
    deadline = trio.current_time() + 7.0
    port, receivers = await serve(nursery, EngineIOConfig(ping_interval=25, ping_timeout=20), deadline=deadline)
    ws = await open_ws(f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket")
    assert (await ws.get_message()).startswith("0{")
    assert await ws.get_message() == "4timer"
    (receiver,) = receivers
    assert receiver.timers == [deadline]
    assert await ws.get_message() == "2"  # and the heartbeat goes on as before
    await ws.aclose()


async def test_a_held_back_transport_is_not_timed_out_for_a_pong_it_has_not_read(
    nursery: trio.Nursery, open_ws: Any, autojump_clock: trio.testing.MockClock
) -> None:
    """An overloaded application (its receiver waits) stops the transport
    reading: the client's pong sits unread. The session must outlive the pong
    deadline, read the pong once the application catches up, and go on; a
    client that then stays silent still times out, ``ping_timeout`` later."""
    gate = trio.Event()
    port, receivers = await serve(nursery, EngineIOConfig(ping_interval=25, ping_timeout=20), gate=gate)
    ws = await open_ws(f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket")
    assert (await ws.get_message()).startswith("0{")
    opened = trio.current_time()
    await ws.send_message("4busy")  # the receiver waits on the gate with it
    assert await ws.get_message() == "2"
    await ws.send_message("3")  # answered in time, but not read
    await trio.sleep(60.0)  # well past the pong deadline (opened + 45)
    (receiver,) = receivers
    assert not receiver.sock.closed and receiver.closes == []
    gate.set()  # the application catches up: the message, then the pong, are read
    assert await ws.get_message() == "4got busy"
    resumed = trio.current_time()
    assert await ws.get_message() == "2"  # the heartbeat goes on: the pong counted
    assert trio.current_time() == resumed + 25.0
    await trio.sleep(19.9)  # this ping goes unanswered: gone at ping + ping_timeout
    assert receiver.closes == []
    await trio.sleep(0.2)
    assert receiver.closes == ["ping timeout"]
    assert opened < resumed
