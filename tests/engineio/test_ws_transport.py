"""The lean WebSocket transport over an in-memory stream, where the bytes
and the number of writes are the point: batching, pongs, size limits,
closing handshakes."""

from __future__ import annotations

import trio
import trio.testing
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Message, Ping, Pong, TextMessage

from roomactors.engineio import EngineIOConfig, EngineSocket, SharedMessage
from roomactors.engineio.protocol import WEBSOCKET, EngineSession
from roomactors.engineio.websocket import run_websocket_transport
from roomactors.engineio.wsconnection import ServerWebSocket
from roomactors.engineio.wsframes import text_frame


class RecordingStream(trio.abc.Stream):
    """Records each ``send_all`` so a test can count the writes."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.writes: list[bytes] = []

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))
        await self.stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.stream.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        return await self.stream.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.stream.aclose()


class Peer:
    """The client end: a wsproto client connection over the other stream."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.proto = Connection(ConnectionType.CLIENT)

    async def send(self, event: object) -> None:
        await self.stream.send_all(self.proto.send(event))  # type: ignore[arg-type]

    async def next_event(self) -> object:
        with trio.fail_after(5):
            while True:
                for event in self.proto.events():
                    return event
                data = await self.stream.receive_some()
                self.proto.receive_data(data or None)


def make_session(max_payload: int = 1_000_000) -> EngineSocket:
    config = EngineIOConfig(max_payload=max_payload, ping_interval=600, ping_timeout=600)
    session = EngineSession("sid", config, trio.current_time(), WEBSOCKET)
    return EngineSocket(session, remote_address=None, query={}, headers={})


def make_pair(max_payload: int = 1_000_000) -> tuple[RecordingStream, ServerWebSocket, Peer]:
    client_end, server_end = trio.testing.memory_stream_pair()
    recording = RecordingStream(server_end)
    ws = ServerWebSocket(recording, max_payload)
    return recording, ws, Peer(client_end)


async def test_queued_frames_leave_in_one_write(nursery: trio.Nursery) -> None:
    sock = make_session()
    recording, ws, peer = make_pair()
    shared = SharedMessage("b")
    sock.send("a")
    sock.send(shared)
    sock.send(b"\x01")
    nursery.start_soon(run_websocket_transport, sock, ws)
    await trio.testing.wait_all_tasks_blocked()
    assert recording.writes == [b"\x81\x024a" + b"\x81\x024b" + b"\x82\x01\x01"]
    sock.send("later")
    await trio.testing.wait_all_tasks_blocked()
    assert recording.writes[1:] == [text_frame("4later")]
    events = [await peer.next_event() for _ in range(4)]
    assert [(type(e).__name__, e.data) for e in events] == [  # type: ignore[attr-defined]
        ("TextMessage", "4a"), ("TextMessage", "4b"), ("BytesMessage", b"\x01"), ("TextMessage", "4later")
    ]
    sock.close()


async def test_client_ping_is_answered_by_the_writer(nursery: trio.Nursery) -> None:
    sock = make_session()
    recording, ws, peer = make_pair()
    nursery.start_soon(run_websocket_transport, sock, ws)
    await peer.send(Ping(b"hello"))
    event = await peer.next_event()
    assert isinstance(event, Pong) and event.payload == b"hello"
    assert recording.writes == [b"\x8a\x05hello"]
    sock.close()


async def test_fragmented_message_is_joined_and_size_counts_all_fragments(nursery: trio.Nursery) -> None:
    """A continuation frame counts its payload and its 6-byte header (wsframes.continuation_cost)."""
    sock = make_session(max_payload=16)
    recording, ws, peer = make_pair(max_payload=16)
    nursery.start_soon(run_websocket_transport, sock, ws)
    await peer.send(Message(data="4abc", message_finished=False))
    await peer.send(Message(data="def", message_finished=True))  # 4 + 6 + 3 = 13
    with trio.fail_after(5):
        assert await sock.receive() == "abcdef"
    await peer.send(Message(data="4abcdef", message_finished=False))
    await peer.send(Message(data="ghij", message_finished=True))  # 7 + 6 + 4 = 17
    event = await peer.next_event()
    assert isinstance(event, CloseConnection) and event.code == 1009
    with trio.fail_after(5):
        await sock.wait_closed()
    assert sock.close_reason == "message too big"


async def test_server_close_flushes_then_closes_with_1000(nursery: trio.Nursery) -> None:
    sock = make_session()
    recording, ws, peer = make_pair()
    done = trio.Event()

    async def transport() -> None:
        await run_websocket_transport(sock, ws)
        done.set()

    nursery.start_soon(transport)
    sock.send("bye")
    sock.close()
    assert [await peer.next_event() for _ in range(2)] == [TextMessage(data="4bye"), TextMessage(data="1")]
    event = await peer.next_event()
    assert isinstance(event, CloseConnection) and event.code == 1000
    await peer.send(event.response())
    with trio.fail_after(5):
        await done.wait()
    assert peer.proto.state is ConnectionState.CLOSED


async def test_client_close_frame_is_answered(nursery: trio.Nursery) -> None:
    sock = make_session()
    recording, ws, peer = make_pair()
    nursery.start_soon(run_websocket_transport, sock, ws)
    await peer.send(BytesMessage(data=b"\x07"))
    with trio.fail_after(5):
        assert await sock.receive() == b"\x07"
    await peer.send(CloseConnection(code=1001, reason="going away"))
    event = await peer.next_event()
    assert isinstance(event, CloseConnection) and event.code == 1001  # the echo of the client's code
    with trio.fail_after(5):
        await sock.wait_closed()
    assert sock.close_reason == "transport close"
