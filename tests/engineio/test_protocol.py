"""Sans-IO EngineSession: handshake, heartbeat deadlines, upgrade, close."""

import json
import math

import pytest

from roomactors.engineio import EngineIOConfig, SharedMessage
from roomactors.engineio.packets import Packet, PacketError, PacketType
from roomactors.engineio.protocol import (
    BadPacket,
    Closed,
    EngineSession,
    MessageReceived,
    PingQueued,
    PingReceived,
    PongReceived,
)

CONFIG = EngineIOConfig(ping_interval=25.0, ping_timeout=20.0)


def session(transport: str = "polling", now: float = 100.0, config: EngineIOConfig = CONFIG) -> EngineSession:
    return EngineSession("sid1", config, now, transport)


PONG = Packet(PacketType.PONG)


def test_handshake_offers_upgrade_on_polling_only() -> None:
    assert json.loads(session("polling").handshake_packet()[1:]) == {
        "sid": "sid1", "upgrades": ["websocket"], "pingInterval": 25000, "pingTimeout": 20000, "maxPayload": 1000000,
    }
    assert json.loads(session("websocket").handshake_packet()[1:])["upgrades"] == []


def test_ping_at_open_plus_interval_then_timeout() -> None:
    s = session()
    assert s.next_deadline() == 125.0
    assert s.on_timer(124.999) is None
    assert s.take_polling_payload() is None
    assert s.on_timer(125.0) == PingQueued()
    assert s.take_polling_payload() == "2"
    assert s.next_deadline() == 145.0
    assert s.on_timer(144.9) is None
    assert not s.closed
    assert s.on_timer(145.0) == Closed("ping timeout")
    assert s.closed and s.close_reason == "ping timeout"
    assert s.next_deadline() == math.inf
    assert s.take_polling_payload(final=True) == "1"


def test_next_ping_is_interval_after_the_pong() -> None:
    s = session()
    s.on_timer(125.0)
    assert s.receive_packet(PONG, 130.0) == PongReceived()
    assert s.next_deadline() == 155.0
    s.on_timer(145.0)  # the old pong deadline means nothing now
    assert not s.closed


def test_messages_are_returned_raw() -> None:
    s = session()
    assert s.receive_packet(Packet(PacketType.MESSAGE, '"x"'), 101.0) == MessageReceived('"x"')
    assert s.receive_packet(Packet(PacketType.MESSAGE, b"\x01"), 101.0) == MessageReceived(b"\x01")


def test_noop_changes_nothing() -> None:
    s = session()
    assert s.receive_packet(Packet(PacketType.NOOP), 101.0) is None
    assert not s.closed


def test_client_ping_queues_one_pong() -> None:
    s = session()
    assert s.receive_packet(Packet(PacketType.PING, "a"), 101.0) == PingReceived()
    assert s.receive_packet(Packet(PacketType.PING, "b"), 101.0) == PingReceived()
    assert s.take_polling_payload() == "3b"


def test_client_close() -> None:
    s = session()
    assert s.receive_packet(Packet(PacketType.CLOSE), 101.0) == Closed("client close")
    assert s.closed and s.close_reason == "client close"
    assert s.receive_packet(Packet(PacketType.MESSAGE, "late"), 102.0) is None


@pytest.mark.parametrize("kind", [PacketType.OPEN, PacketType.UPGRADE])
def test_unexpected_packets_close_the_session(kind: PacketType) -> None:
    s = session()
    assert s.receive_packet(Packet(kind), 101.0) == BadPacket(f"unexpected {kind.name} packet on polling")
    assert s.closed and s.close_reason == f"protocol error: unexpected {kind.name} packet on polling"


def test_probe_ping_on_the_main_transport_is_an_error() -> None:
    s = session()
    assert isinstance(s.receive_packet(Packet(PacketType.PING, "probe"), 101.0), BadPacket)
    assert s.closed


def test_server_close_flushes_then_sends_close() -> None:
    s = session()
    s.outbox.append((SharedMessage("bye"),))
    s.close("server close", notify_peer=True)
    assert s.take_polling_payload(final=True) == "4bye\x1e1"


def test_upgrade_state_machine() -> None:
    s = session()
    s.outbox.append((SharedMessage("queued"),))
    assert s.begin_upgrade() == "3probe"
    assert s.upgrading and not s.can_probe
    assert s.take_polling_payload() == "6"  # GETs are released, outbox kept
    s.complete_upgrade()
    assert s.transport == "websocket"
    assert s.take_websocket_frames() == ["4queued"]


def test_aborted_upgrade_keeps_polling() -> None:
    s = session()
    s.begin_upgrade()
    s.abort_upgrade()
    assert s.transport == "polling" and s.can_probe
    with pytest.raises(PacketError):
        s.complete_upgrade()
