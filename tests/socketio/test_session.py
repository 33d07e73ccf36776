"""SocketIOServer's per-session logic, driven through a fake Engine.IO socket in
the test's trio loop: handler order, acks, connect ordering, disconnect
reasons, calls, broadcast encoding and the connect timeout (autojump_clock)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from support.waiting import wait_until

from roomactors.engineio.packets import SharedMessage
from roomactors.socketio import Ack, ConnectionRefused, Socket, SocketDisconnected, SocketIOConfig, SocketIOServer


@pytest.fixture(autouse=True)
def _engine_class(fake_engine: type) -> None:
    global FakeEngineSocket
    FakeEngineSocket = fake_engine


async def start(nursery: trio.Nursery, server: SocketIOServer, sid: str = "eio") -> Any:
    eio = FakeEngineSocket(sid)
    server._open_session(eio)  # as EngineIOServer's on_open does
    nursery.start_soon(eio.run_transport)
    nursery.start_soon(server._run_session, eio)
    return eio


async def settle() -> None:
    await trio.testing.wait_all_tasks_blocked()


async def connected(nursery: trio.Nursery) -> tuple[SocketIOServer, Any, list[Socket]]:
    """A server with one client connected to ``/``: (server, its fake engine
    socket, the list the connect handler appends each new Socket to)."""
    server = SocketIOServer()
    sockets: list[Socket] = []

    @server.on("connect")
    async def connect(socket: Socket, auth: Any) -> None:
        sockets.append(socket)

    eio = await start(nursery, server)
    eio.feed("0")
    await settle()
    return server, eio, sockets


def sid_of(ack: str | bytes) -> str:
    assert isinstance(ack, str) and ack.startswith('0{"sid":"')
    return ack[len('0{"sid":"'):-2]


async def test_connect_ack_comes_before_what_the_connect_handler_emits(nursery: trio.Nursery) -> None:
    server = SocketIOServer()
    seen: list[Any] = []

    @server.on("connect")
    async def connect(socket: Socket, auth: Any) -> None:
        seen.append(auth)
        socket.emit("welcome", 1)
        await trio.sleep(0)
        socket.emit("again")

    eio = await start(nursery, server)
    eio.feed('0{"token":"t"}')
    await settle()
    out = eio.texts()
    assert len(out) == 3 and sid_of(out[0])
    assert out[1:] == ['2["welcome",1]', '2["again"]']
    assert seen == [{"token": "t"}]


async def test_refusal_and_handler_crash_answer_connect_error(nursery: trio.Nursery, caplog: pytest.LogCaptureFixture) -> None:
    server = SocketIOServer()

    @server.on("connect", namespace="/a")
    async def refuse(socket: Socket, auth: Any) -> None:
        socket.emit("never")
        raise ConnectionRefused("not you", {"code": 7})

    @server.on("connect", namespace="/b")
    async def crash(socket: Socket, auth: Any) -> None:
        raise RuntimeError("bug")

    disconnects: list[str] = []

    @server.on("disconnect", namespace="/a")
    async def gone(socket: Socket, reason: str) -> None:
        disconnects.append(reason)

    eio = await start(nursery, server)
    eio.feed("0/a,", "0/b,", "0/c,")
    await settle()
    # "Invalid namespace" is answered by the reader, without waiting for handlers.
    assert sorted(eio.texts()) == [
        '4/a,{"message":"not you","data":{"code":7}}',
        '4/b,{"message":"Internal server error"}',
        '4/c,{"message":"Invalid namespace"}',
    ]
    assert not eio.closed
    assert disconnects == []
    assert "connect handler of /b failed" in caplog.text


async def test_handlers_run_one_at_a_time_in_arrival_order(nursery: trio.Nursery, autojump_clock: trio.abc.Clock) -> None:
    server = SocketIOServer()
    log: list[str] = []

    @server.on("slow")
    async def slow(socket: Socket) -> None:
        log.append("slow start")
        await trio.sleep(1)
        log.append("slow end")

    @server.on("fast")
    async def fast(socket: Socket, n: int) -> None:
        log.append(f"fast {n}")

    eio = await start(nursery, server)
    eio.feed("0", '2["slow"]', '2["fast",1]', '2["fast",2]')
    await wait_until(lambda: len(log) == 4, timeout=2)
    assert log == ["slow start", "slow end", "fast 1", "fast 2"]


async def test_inline_handlers_run_in_the_reading_task_and_keep_order(
    nursery: trio.Nursery, autojump_clock: trio.abc.Clock
) -> None:
    """An inline handler runs in the transport's task only when nothing of the
    connection is queued or running; otherwise it waits its turn like any other."""
    server = SocketIOServer()
    log: list[tuple[str, str]] = []

    def where() -> str:
        return "reader" if "run_transport" in trio.lowlevel.current_task().name else "dispatcher"

    @server.on("slow")
    async def slow(socket: Socket) -> None:
        log.append(("slow start", where()))
        await trio.sleep(1)
        log.append(("slow end", where()))

    @server.on("fast", inline=True)
    async def fast(socket: Socket, n: int) -> int:
        log.append((f"fast {n}", where()))
        await trio.sleep(0.5)  # the reader waits: the next message is not read meanwhile
        return n

    eio = await start(nursery, server)
    eio.feed("0")
    await settle()
    eio.feed('21["fast",1]', '2["slow"]', '22["fast",2]')
    await wait_until(lambda: eio.texts()[1:] == ["31[1]", "32[2]"], timeout=5)  # fast 2 finished: all idle
    eio.feed('23["fast",3]')
    await wait_until(lambda: len(eio.texts()) == 4, timeout=1)
    assert log == [
        ("fast 1", "reader"), ("slow start", "dispatcher"), ("slow end", "dispatcher"),
        ("fast 2", "dispatcher"), ("fast 3", "reader"),
    ]
    assert eio.texts()[1:] == ["31[1]", "32[2]", "33[3]"]


async def test_call_in_an_inline_handler_is_refused_not_deadlocked(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    server = SocketIOServer()

    @server.on("ask", inline=True)
    async def ask(socket: Socket) -> list[Any]:
        return await socket.call("question")

    with pytest.raises(ValueError, match="only event handlers"):
        server.on("connect", inline=True)

    eio = await start(nursery, server)
    eio.feed("0")
    await settle()
    eio.feed('21["ask"]', '22["ask"]')
    await settle()
    failures = [r for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], RuntimeError)]
    assert len(failures) == 2 and "inline handler" in str(failures[0].exc_info[1])  # type: ignore[index]
    assert eio.texts()[1:] == []  # no ack for a failed handler; the connection goes on
    assert not eio.closed


async def test_ack_values(nursery: trio.Nursery) -> None:
    server = SocketIOServer()

    @server.on("none")
    async def none(socket: Socket) -> None:
        return None

    @server.on("one")
    async def one(socket: Socket, x: Any) -> Any:
        return {"x": x}

    @server.on("many")
    async def many(socket: Socket) -> tuple[int, str]:
        return 1, "two"

    @server.on("bin")
    async def binary(socket: Socket, data: bytes) -> bytes:
        return data[::-1]

    eio = await start(nursery, server)
    eio.feed("0", '21["none"]', '22["one",5]', '23["many"]', '2["one",6]',
             '51-4["bin",{"_placeholder":true,"num":0}]', b"abc")
    await settle()
    assert eio.texts()[1:] == [
        "31[]", '32[{"x":5}]', '33[1,"two"]',
        '61-4[{"_placeholder":true,"num":0}]', b"cba",
    ]
    # The binary ack went out as one group: packet and attachment together.
    assert len(eio.outbox[-1][0]) == 2


async def test_a_taken_ack_is_sent_when_called_once_from_any_task(nursery: trio.Nursery) -> None:
    server = SocketIOServer()
    taken: list[Ack | None] = []

    @server.on("later")
    async def later(socket: Socket, *args: Any) -> str:
        taken.append(socket.take_ack())
        assert socket.take_ack() is None  # taken once
        return "not sent: the handler gave the ack away"

    @server.on("now")
    async def now(socket: Socket) -> str:
        return "sent"

    eio = await start(nursery, server)
    eio.feed("0", '27["later"]', '2["later"]', '28["now"]')
    await settle()
    assert eio.texts()[1:] == ['38["sent"]']
    first, without_ack = taken
    assert without_ack is None  # the client asked for none
    assert first is not None and not first.sent

    async def answer() -> None:
        first("done", {"n": 1})
        first("again")  # ignored: an ack is sent once

    nursery.start_soon(answer)
    await settle()
    assert eio.texts()[1:] == ['38["sent"]', '37["done",{"n":1}]']
    assert first.sent


async def test_a_taken_ack_of_a_socket_gone_meanwhile_is_dropped(nursery: trio.Nursery) -> None:
    server = SocketIOServer()
    taken: list[Ack | None] = []

    @server.on("later")
    async def later(socket: Socket) -> None:
        taken.append(socket.take_ack())

    eio = await start(nursery, server)
    eio.feed("0", '23["later"]')
    await settle()
    eio.feed("1")  # the client leaves the namespace
    await settle()
    [ack] = taken
    assert ack is not None
    ack("too late")
    await settle()
    assert eio.texts()[1:] == []


async def test_handler_exception_is_logged_and_the_connection_goes_on(nursery: trio.Nursery, caplog: pytest.LogCaptureFixture) -> None:
    server = SocketIOServer()

    @server.on("boom")
    async def boom(socket: Socket) -> None:
        raise ValueError("server bug")

    @server.on("ping")
    async def ping(socket: Socket) -> str:
        return "pong"

    eio = await start(nursery, server)
    eio.feed("0", '21["boom"]', '22["ping"]')
    await settle()
    assert eio.texts()[1:] == ['32["pong"]']
    assert not eio.closed
    assert "handler of 'boom' on / failed" in caplog.text
    assert "server bug" in caplog.text  # with the traceback


@pytest.mark.parametrize(
    ("ending", "reason", "dropped"),
    [("client", "client namespace disconnect", False), ("server", "server namespace disconnect", False),
     ("ping timeout", "ping timeout", True), ("client close", "transport close", False),
     ("transport close", "transport close", True), ("transport error", "transport error", True),
     ("violation", "parse error", False), ("eio close", "forced close", False)],
)
async def test_disconnect_handler_runs_exactly_once(
    nursery: trio.Nursery, ending: str, reason: str, dropped: bool
) -> None:
    """Once, with Node's reason; ``Socket.dropped`` tells a drop (no goodbye) from a goodbye."""
    server = SocketIOServer()
    sockets: list[Socket] = []
    reasons: list[tuple[str, str]] = []

    @server.on("connect", namespace="/x")
    async def connect(socket: Socket, auth: Any) -> None:
        sockets.append(socket)

    @server.on("disconnect", namespace="/x")
    async def disconnect(socket: Socket, why: str) -> None:
        reasons.append((socket.sid, why))

    eio = await start(nursery, server)
    eio.feed("0/x,", "0")
    await settle()
    (socket,) = sockets
    if ending == "client":
        eio.feed("1/x,")
    elif ending == "server":
        socket.disconnect()
        socket.disconnect()
        assert eio.texts()[-1] == "1/x,"
    elif ending == "violation":
        eio.feed("2[]")
    elif ending == "eio close":
        socket.eio.close()
    else:
        eio.end(ending)
    await settle()
    assert reasons == [(socket.sid, reason)]
    assert socket.dropped is dropped
    assert not socket.connected
    socket.emit("dropped")
    socket.disconnect()
    eio.end("transport close")
    await settle()
    assert reasons == [(socket.sid, reason)]
    assert "dropped" not in str(eio.texts())


async def test_client_disconnect_keeps_the_engine_session(nursery: trio.Nursery) -> None:
    server = SocketIOServer()
    server.namespace("/x")

    @server.on("echo")
    async def echo(socket: Socket, x: Any) -> Any:
        return x

    eio = await start(nursery, server)
    eio.feed("0/x,", "0", "1/x,", '21["echo","still"]')
    await settle()
    assert eio.texts()[-1] == '31["still"]'
    assert not eio.closed


async def test_call_gets_the_clients_answer(nursery: trio.Nursery) -> None:
    server, eio, sockets = await connected(nursery)
    answers: list[Any] = []

    async def ask() -> None:
        answers.append(await sockets[0].call("question", 42, timeout=5))

    nursery.start_soon(ask)
    await settle()
    assert eio.texts()[-1] == '20["question",42]'
    eio.feed('30["answer",{"n":1}]')
    await settle()
    assert answers == [["answer", {"n": 1}]]


async def test_call_inside_a_handler_does_not_deadlock(nursery: trio.Nursery) -> None:
    server = SocketIOServer()
    results: list[Any] = []

    @server.on("start")
    async def begin(socket: Socket) -> None:
        results.append(await socket.call("q", timeout=5))

    eio = await start(nursery, server)
    eio.feed("0", '2["start"]')
    await settle()
    assert eio.texts()[-1] == '20["q"]'
    eio.feed("30[7]")
    await settle()
    assert results == [[7]]


async def test_call_timeout_and_late_answer(nursery: trio.Nursery, autojump_clock: trio.abc.Clock) -> None:
    server, eio, sockets = await connected(nursery)
    start_time = trio.current_time()
    with pytest.raises(trio.TooSlowError):
        await sockets[0].call("q", timeout=3)
    assert trio.current_time() - start_time == pytest.approx(3)
    eio.feed("30[1]")  # late: dropped, connection stays
    await settle()
    assert not eio.closed


async def test_call_fails_when_the_socket_goes_away(nursery: trio.Nursery) -> None:
    server, eio, sockets = await connected(nursery)
    errors: list[BaseException] = []

    async def ask() -> None:
        try:
            await sockets[0].call("q", timeout=60)
        except SocketDisconnected as exc:
            errors.append(exc)

    nursery.start_soon(ask)
    await settle()
    eio.end("transport close")
    await settle()
    assert len(errors) == 1
    with pytest.raises(SocketDisconnected):
        await sockets[0].call("q")


async def test_broadcast_encodes_once(nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch) -> None:
    server = SocketIOServer()
    sockets: list[Socket] = []

    @server.on("connect")
    async def connect(socket: Socket, auth: Any) -> None:
        sockets.append(socket)

    engines = [await start(nursery, server, f"eio{i}") for i in range(5)]
    for eio in engines:
        eio.feed("0")
    await settle()
    assert len(sockets) == 5

    import roomactors.socketio.sockets as sockets_module
    calls = []
    real = sockets_module.encode_packet

    def counting(packet: Any) -> Any:
        calls.append(packet)
        return real(packet)

    monkeypatch.setattr(sockets_module, "encode_packet", counting)
    server.emit("news", {"n": 1}, to=sockets)
    server.emit("blob", b"\x00\x01", to=sockets)
    assert len(calls) == 2
    text = [eio.outbox[-2][0][0] for eio in engines]
    binary = [eio.outbox[-1][0] for eio in engines]
    assert all(isinstance(m, SharedMessage) and m is text[0] for m in text)
    assert text[0].data == '2["news",{"n":1}]'
    assert all(group == binary[0] and all(a is b for a, b in zip(group, binary[0], strict=True)) for group in binary)
    assert [m.data for m in binary[0]] == ['51-["blob",{"_placeholder":true,"num":0}]', b"\x00\x01"]


async def test_replace_key_reaches_the_engine_socket(nursery: trio.Nursery) -> None:
    server, eio, sockets = await connected(nursery)
    encoded = server.encode_event("updaterooms", [])
    sockets[0].send_encoded(encoded, replace_key="rooms")
    sockets[0].emit("x", replace_key="k")
    assert [key for _, key in eio.outbox[-2:]] == [("/", "rooms"), ("/", "k")]
    with pytest.raises(ValueError):
        server.emit("x", to=sockets, namespace="/other")
    with pytest.raises(ValueError):
        sockets[0].emit("disconnect")


async def test_violation_closes_only_that_session(nursery: trio.Nursery) -> None:
    server = SocketIOServer()

    @server.on("echo")
    async def echo(socket: Socket, x: Any) -> Any:
        return x

    good = await start(nursery, server, "good")
    bad = await start(nursery, server, "bad")
    good.feed("0")
    bad.feed("0", "2[]")
    await settle()
    assert bad.closed
    good.feed('21["echo",1]')
    await settle()
    assert not good.closed
    assert good.texts()[-1] == "31[1]"


async def test_connect_timeout_closes_at_exactly_the_deadline(nursery: trio.Nursery, autojump_clock: trio.abc.Clock) -> None:
    server = SocketIOServer(SocketIOConfig(connect_timeout=45.0))
    joined = await start(nursery, server, "joined")
    idle = await start(nursery, server, "idle")
    start_time = trio.current_time()
    joined.feed("0")
    await trio.sleep(44.999)
    assert not idle.closed
    await trio.sleep(0.002)
    assert idle.close_reason == "server close"
    assert not joined.closed
    assert trio.current_time() - start_time == pytest.approx(45.001)


async def test_shutdown_runs_disconnect_handlers_with_its_reason() -> None:
    server = SocketIOServer()
    reasons: list[str] = []

    @server.on("disconnect")
    async def disconnect(socket: Socket, why: str) -> None:
        await trio.sleep(0)  # a checkpoint: the handler may await under shutdown
        reasons.append(why)

    async with trio.open_nursery() as inner:
        eio = await start(inner, server)
        eio.feed("0")
        await settle()
        inner.cancel_scope.cancel()
    assert reasons == ["server shutting down"]


async def test_disconnect_during_the_connect_handler_refuses(nursery: trio.Nursery) -> None:
    server = SocketIOServer()
    reasons: list[str] = []

    @server.on("connect")
    async def connect(socket: Socket, auth: Any) -> None:
        socket.disconnect()

    @server.on("disconnect")
    async def disconnect(socket: Socket, why: str) -> None:
        reasons.append(why)

    eio = await start(nursery, server)
    eio.feed("0")
    await settle()
    assert eio.texts() == ['4{"message":"Disconnected by the server"}']
    assert reasons == []


async def test_a_busy_connection_is_read_only_a_little_ahead(nursery: trio.Nursery) -> None:
    server = SocketIOServer(SocketIOConfig(max_queued_events=4))
    release = trio.Event()
    handled: list[int] = []

    @server.on("work")
    async def work(socket: Socket, n: int) -> None:
        await release.wait()
        handled.append(n)

    eio = await start(nursery, server)
    eio.feed("0", *(f'2["work",{n}]' for n in range(50)))
    await settle()
    # Four permits: one event in the handler, three queued, and a fifth read
    # that waits for a permit; the rest stays unread in the Engine.IO layer,
    # which then stops reading the client.
    assert eio._recv.statistics().current_buffer_used == 50 - 5
    release.set()
    await settle()
    assert handled == list(range(50))


async def test_replace_keys_are_scoped_to_the_namespace(nursery: trio.Nursery) -> None:
    """One client on two namespaces keeps the newest keyed message of each."""
    server = SocketIOServer()
    server.namespace("/lobby")
    sockets: dict[str, Socket] = {}

    @server.on("connect")
    async def connect_main(socket: Socket, auth: Any) -> None:
        sockets["/"] = socket

    @server.on("connect", "/lobby")
    async def connect_lobby(socket: Socket, auth: Any) -> None:
        sockets["/lobby"] = socket

    eio = await start(nursery, server)
    eio.feed("0")
    eio.feed("0/lobby,")
    await settle()
    sockets["/"].emit("updaterooms", [1], replace_key="rooms")
    sockets["/lobby"].emit("updaterooms", [2], replace_key="rooms")
    assert [key for _, key in eio.outbox[-2:]] == [("/", "rooms"), ("/lobby", "rooms")]


async def test_a_socket_accepted_by_its_handler_but_lost_before_the_ack_is_disconnected(
    nursery: trio.Nursery,
) -> None:
    """What a connect handler registers, a disconnect handler unregisters, even
    when the connection drops while the connect handler is still running."""
    server = SocketIOServer()
    release = trio.Event()
    seen: list[tuple[str, str]] = []

    @server.on("connect")
    async def connect(socket: Socket, auth: Any) -> None:
        seen.append(("connect", socket.sid))
        await release.wait()

    @server.on("disconnect")
    async def disconnect(socket: Socket, reason: str) -> None:
        seen.append(("disconnect", reason))

    eio = await start(nursery, server)
    eio.feed("0")
    await settle()
    eio.end("transport close")
    await settle()
    release.set()
    await settle()
    assert [kind for kind, _ in seen] == ["connect", "disconnect"]
    assert not any(text.startswith("0{") for text in eio.texts() if isinstance(text, str))
