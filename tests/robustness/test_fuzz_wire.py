"""Hostile input end to end: a running ``serve_roomserver`` on 127.0.0.1, raw
clients on both transports sending what no real client would.

Every test keeps two bystanders, one per transport: a host with a room and a
player seated in it. Whatever the attacker sends, the attacker alone gets a
protocol error, a refusal or a closed connection; the server logs no traceback
and no ERROR; the bystanders keep their seats, hear nothing addressed to
others, and their newest room list is the server's directory.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import trio
from hypothesis import example, given
from hypothesis import strategies as st
from robustness.test_fuzz_codecs import ALL_FIELDS, VALID, Nested, mutate
from support.logcheck import server_errors
from support.soak import LeanClient, http_request, open_lean_client
import trio_websocket
from trio_websocket import ConnectionClosed, open_websocket_url

from roomactors import RoomServerConfig, serve_roomserver
from roomactors.actors.validation import ERROR_CODES

TRANSPORTS = ["websocket", "polling"]
DECK = VALID["create_room"]["deck"]
#: Bystander ids no mutation of the attacker's packets can produce.
HOST_ID = "bystander-host-7f3c"
PLAYER_ID = "bystander-player-9a1e"
SEND_FAILURES = (ConnectionClosed, EOFError, trio.BrokenResourceError, trio.ClosedResourceError, OSError)


@asynccontextmanager
async def open_roomserver(**fields: Any) -> AsyncIterator[Any]:
    """A room server for one hypothesis example (fixtures outlive examples)."""
    async with trio.open_nursery() as nursery:
        config = RoomServerConfig(host="127.0.0.1", port=0, **fields)
        yield await nursery.start(serve_roomserver, config)
        nursery.cancel_scope.cancel()


@dataclass
class Bystanders:
    host: LeanClient
    player: LeanClient
    room_id: int
    version: int
    """The directory's version once both sat down."""

    def quiet_lists(self) -> tuple[int, int]:
        return self.host.lists, self.player.lists


@asynccontextmanager
async def bystanders(server: Any) -> AsyncIterator[Bystanders]:
    async with open_lean_client(server.port, transport="websocket", name="host") as host, open_lean_client(
        server.port, transport="polling", namespace="/", name="player"
    ) as player:
        assert (await host.call("join_lobby", {"id": HOST_ID, "username": "h"}))[0]["ok"]
        (created,) = await host.call("create_room", {"name": "quiet room", "deck": DECK})
        room_id = created["room"]["id"]
        assert (await player.call("join_lobby", {"id": PLAYER_ID, "username": "p"}))[0]["ok"]
        assert (await player.call("join_room", {"id": room_id}))[0]["ok"]
        snapshot = await server.app.lobby.snapshot()
        for client in (host, player):
            await client.wait_for(lambda client=client: client.last_list == snapshot.rooms.to_json())
        yield Bystanders(host, player, room_id, snapshot.rooms.version)


async def check_bystanders(server: Any, by: Bystanders, lists_before: tuple[int, int] | None = None) -> None:
    """The bystanders still sit where they sat, got no event, and hold the newest list."""
    snapshot = await server.app.lobby.snapshot()
    assert snapshot.places.get(HOST_ID) == by.room_id
    assert snapshot.places.get(PLAYER_ID) == by.room_id
    for client in (by.host, by.player):
        assert client.joined and not client.ended, client.name
        others = [event for event in client.events if event[0] != "roomupdated"]  # their own room's summary
        assert others == [], (client.name, others)
        await client.wait_for(lambda client=client: client.last_list == snapshot.rooms.to_json(), timeout=5)
    if lists_before is not None and snapshot.rooms.version == by.version:
        assert by.quiet_lists() == lists_before, "a bystander got a list although nothing changed"
    # Still served: a command of each bystander is answered.
    for client, user in ((by.host, HOST_ID), (by.player, PLAYER_ID)):
        (reply,) = await client.call("join_lobby", {"id": user})
        assert reply["ok"] and reply["room"] == by.room_id


def assert_no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    assert not server_errors(caplog.records), server_errors(caplog.records)


async def settle(attacker: LeanClient, probe: str) -> None:
    """Wait until the server has handled everything the attacker sent: either
    its session ended, or an ack'd probe sent after the rest came back."""
    if attacker.ended:
        return
    try:
        await attacker.send(probe)
    except SEND_FAILURES:
        pass
    await attacker.wait_for(lambda: 424242 in attacker.acks or attacker.ended or not attacker.joined, timeout=15)


PROBE = '2/lobby,424242["join_lobby",{"id":"attacker-probe"}]'


# -- mutated Socket.IO packets ------------------------------------------------------

BASE_PACKETS = [
    '2/lobby,["join_lobby",{"id":1,"username":"x"}]',
    '2/lobby,3["create_room",{"name":"r","deck":' + json.dumps(DECK) + "}]",
    '2/lobby,4["join_room",{"id":1}]',
    '2/lobby,5["leave_room",{"id":1}]',
    '2/lobby,6["leave_lobby",{"id":1}]',
    '2/lobby,7["join_room",{"id":1},{"id":2}]',
    "0/lobby,",
    "1/lobby,",
    '3/lobby,0["ok"]',
    '5/lobby,1-8["join_room",{"_placeholder":true,"num":0}]',
    '2/lobby,["rejected",{}]',
    '2/nope,["join_lobby",{"id":1}]',
]


def hostile_command(command: str, path: tuple[Any, ...], new: Any, ack: bool) -> str:
    """A command packet with one field replaced by ``new``, as JSON text (deep
    nesting spliced in as text: json.dumps would recurse)."""
    payload = json.loads(json.dumps(VALID[command]))
    marker = "@@deep@@"
    if path:
        holder = payload
        for key in path[:-1]:
            holder = holder[key]
        holder[path[-1]] = marker if isinstance(new, Nested) else new
    else:
        payload = marker if isinstance(new, Nested) else new
    text = json.dumps([command, payload])
    if isinstance(new, Nested):
        text = text.replace(f'"{marker}"', "[" * new.depth + "]" * new.depth)
    return "2/lobby," + ("9" if ack else "") + text


wrong_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**300), max_value=10**300),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=120),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.sampled_from([10, 500, 2000, 10_000]).map(Nested),
)


@st.composite
def attacks(draw: st.DrawFn) -> list[str | bytes]:
    packets: list[str | bytes] = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["mutated", "command", "raw", "binary"]))
        if kind == "mutated":
            packets.append(mutate(draw(st.sampled_from(BASE_PACKETS)), draw(st.data())))
        elif kind == "command":
            command, path = draw(st.sampled_from(ALL_FIELDS))
            packets.append(hostile_command(command, path, draw(wrong_values), draw(st.booleans())))
        elif kind == "raw":
            packets.append(draw(st.text(min_size=1, max_size=30)))
        else:
            packets.append(draw(st.binary(min_size=1, max_size=16)))
    return packets


async def send_attack(attacker: LeanClient, packets: list[str | bytes]) -> None:
    for packet in packets:
        if attacker.ended:
            return
        try:
            if isinstance(packet, bytes):
                await attacker.send_eio(packet)
            else:
                await attacker.send(packet)
        except SEND_FAILURES:
            return


@pytest.mark.parametrize("transport", TRANSPORTS)
@given(packets=attacks())
@example(packets=['2/lobby,9["join_room",{"id":' + "[" * 10_000 + "]" * 10_000 + "}]"])
@example(packets=['2/lobby,9["join_room",{"id":' + "[" * 940 + "]" * 940 + "}]"])
@example(packets=['2/lobby,9["join_room",{"id":' + "9" * 4300 + "}]"])
@example(packets=['51-["x",{"_placeholder":true,"num":0}]'])  # an attachment that never comes
@example(packets=["0/\\ud800,", '2/lobby,["join_lobby",{"id":"\\ud800","username":"\\udfff"}]'])
async def test_mutated_packets_hurt_only_their_sender(
    caplog: pytest.LogCaptureFixture, transport: str, packets: list[str | bytes]
) -> None:
    caplog.clear()
    caplog.set_level(logging.INFO)
    async with open_roomserver(max_rooms=5) as server, bystanders(server) as by, open_lean_client(
        server.port, transport=transport, name="attacker"
    ) as attacker:
        lists_before = by.quiet_lists()
        await send_attack(attacker, packets)
        await settle(attacker, PROBE)
        for args in attacker.acks.values():
            assert args and isinstance(args[0], dict) and isinstance(args[0].get("ok"), bool), args
            if not args[0]["ok"]:
                assert args[0]["error"]["code"] in ERROR_CODES - {"internal"}, args
        for name, args in attacker.events:
            assert name in ("rejected", "disconnect", "roomclosed", "replaced") or name.startswith("?"), (name, args)
            if name == "rejected":
                assert args[0]["code"] in ERROR_CODES - {"internal"}, args
        await check_bystanders(server, by, lists_before)
    assert_no_errors_logged(caplog)


async def test_pending_attachment_that_never_comes_ends_with_the_session(
    start_roomserver: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    """A binary packet whose attachment never arrives holds nothing but its own
    connection, and only until the heartbeat ends it (here: a short one)."""
    server = await start_roomserver(ping_interval=0.2, ping_timeout=0.2)
    async with bystanders(server) as by:
        url = f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket"
        async with open_websocket_url(url) as ws:
            await ws.get_message()
            await ws.send_message("40/lobby,")
            assert (await ws.get_message()).startswith("40/lobby,")
            await ws.send_message('451-/lobby,["join_lobby",{"_placeholder":true,"num":0}]')
            with trio.fail_after(5):  # never pong: the session ends by the heartbeat
                with pytest.raises(ConnectionClosed):
                    while True:
                        await ws.get_message()
        await check_bystanders(server, by)
        assert server.statistics().connections == 2  # the attacker's session is gone
    assert_no_errors_logged(caplog)


# -- sizes ----------------------------------------------------------------------------


@pytest.mark.parametrize("payload", ["harmless", "commands"])
async def test_ten_thousand_tiny_packets_in_one_post(
    start_roomserver: Callable[..., Any], caplog: pytest.LogCaptureFixture, payload: str
) -> None:
    caplog.set_level(logging.INFO)
    server = await start_roomserver()
    async with bystanders(server) as by, open_lean_client(server.port, transport="polling", name="post") as attacker:
        lists_before = by.quiet_lists()
        if payload == "harmless":
            tiny = ["6", "3", '42/lobby,["nope"]', '42/lobby,["nope",{"id":1}]']
        else:  # 10,000 commands: the rate limit answers, and may expel the flooder
            tiny = ['42/lobby,["join_room",{"id":99}]', '42/lobby,["leave_lobby",{"id":1}]']
        body = "\x1e".join(tiny[i % len(tiny)] for i in range(10_000))
        with trio.fail_after(30):
            await attacker.send_eio(*body.split("\x1e"))
            await settle(attacker, PROBE)
        if payload == "harmless":
            (probe_ack,) = attacker.acks.get(424242, [{}])
            assert isinstance(probe_ack.pop("token", None), str)  # the seat's token (race.md, "Identity")
            assert attacker.acks.get(424242) == [
                {"ok": True, "user": {"id": "attacker-probe", "username": None, "auth_level": None}, "room": None}
            ]
            assert attacker.events == []
        else:
            codes = {args[0]["code"] for args in attacker.received("rejected")}
            assert codes <= {"not_in_lobby", "rate_limited"} and codes, codes
        await check_bystanders(server, by, lists_before)
    assert_no_errors_logged(caplog)


async def test_websocket_message_just_over_max_payload_closes_with_1009(
    start_roomserver: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    max_payload = 10_000
    server = await start_roomserver(max_payload=max_payload)
    async with bystanders(server) as by:
        url = f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket"
        async with open_websocket_url(url) as ws:
            await ws.get_message()
            await ws.send_message("40/lobby,")
            assert (await ws.get_message()).startswith("40/lobby,")
            head = '42/lobby,0["join_lobby",{"id":"big","username":null,"x":"'
            fits = head + "x" * (max_payload - len(head) - 3) + '"}]'
            assert len(fits.encode()) == max_payload
            await ws.send_message(fits)
            answer = await ws.get_message()
            while answer.startswith('42/lobby,["updaterooms"'):
                answer = await ws.get_message()
            assert answer.startswith('43/lobby,0[{"ok":true'), answer
            await ws.send_message(fits[:-3] + 'x"}]')  # one byte more
            with trio.fail_after(5), pytest.raises(ConnectionClosed) as closed:
                while True:
                    await ws.get_message()
            assert closed.value.reason.code == 1009
        await check_bystanders(server, by)
    assert_no_errors_logged(caplog)


async def test_polling_post_just_over_max_payload_is_refused(
    start_roomserver: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    max_payload = 10_000
    server = await start_roomserver(max_payload=max_payload)
    async with bystanders(server) as by, open_lean_client(server.port, transport="polling", name="post") as attacker:
        target = f"/socket.io/?EIO=4&transport=polling&sid={attacker.sid}"
        body = ('42/lobby,["nope","' + "x" * max_payload + '"]').encode()[: max_payload + 1]
        reply = await http_request(server.port, "POST", target, body)
        assert reply.status == 413
        await attacker.wait_ended()
        await check_bystanders(server, by)
    assert_no_errors_logged(caplog)


@pytest.mark.parametrize(
    "body",
    [b"\xff\xfe\xfd", b"4hello\x1e\xc3", b"", b"\x1e\x1e", b"b!!!", b"9x", "4\ud800".encode("utf-8", "surrogatepass")],
    ids=["latin1", "truncated-utf8", "empty", "empty-packets", "bad-base64", "bad-type", "surrogate"],
)
async def test_non_utf8_and_broken_post_bodies_close_only_their_session(
    start_roomserver: Callable[..., Any], caplog: pytest.LogCaptureFixture, body: bytes
) -> None:
    server = await start_roomserver()
    async with bystanders(server) as by, open_lean_client(server.port, transport="polling", name="post") as attacker:
        reply = await http_request(server.port, "POST", f"/socket.io/?EIO=4&transport=polling&sid={attacker.sid}", body)
        assert reply.status == 400 and json.loads(reply.body)["code"] == 3
        await attacker.wait_ended()
        await check_bystanders(server, by)
    assert_no_errors_logged(caplog)


# -- room commands with wrong types in every field -------------------------------------

WRONG = [None, True, 0, -1, 1.5, 10**400, "", "x" * 200, [], {}, Nested(500)]


@pytest.mark.parametrize("command,path", ALL_FIELDS, ids=[f"{c}:{'.'.join(map(str, p)) or '-'}" for c, p in ALL_FIELDS])
async def test_wrong_types_in_every_field_are_refused_and_the_connection_stays(
    start_roomserver: Callable[..., Any], caplog: pytest.LogCaptureFixture, command: str, path: tuple[Any, ...]
) -> None:
    server = await start_roomserver(command_rate=0)
    async with AsyncExitStack() as stack:
        by = await stack.enter_async_context(bystanders(server))
        lists_before = by.quiet_lists()
        for transport in TRANSPORTS:
            client = await stack.enter_async_context(open_lean_client(server.port, transport=transport, name=transport))
            for value in WRONG:
                for ack in (True, False):
                    await client.send(hostile_command(command, path, value, ack))
                    await settle(client, PROBE)
                    assert client.joined and not client.ended, (value, client.eio_frames)
                    replies = [client.acks.pop(9)[0]] if ack else [
                        {"ok": False, "error": args[0]} for args in client.received("rejected")
                    ]
                    client.events.clear()
                    client.acks.pop(424242, None)
                    for reply in replies:
                        if not reply["ok"]:
                            assert reply["error"]["code"] in ERROR_CODES - {"internal", "rate_limited"}, reply
                            if reply["error"]["code"] == "invalid_payload":  # quotes no huge value
                                assert len(reply["error"]["message"]) < 300, reply
        await check_bystanders(server, by, lists_before)
    assert_no_errors_logged(caplog)


# -- the polling -> WebSocket upgrade, abused ------------------------------------------

UPGRADE_PACKETS = ["2probe", "2probe", "5", "5", "6", "3", "3probe", "2", "1", "4x", '42/lobby,["nope"]', "", "9", "b!!"]


@pytest.mark.parametrize("then", ["poll", "hang up"])
@given(probe=st.lists(st.sampled_from(UPGRADE_PACKETS) | st.text(max_size=8), max_size=6))
@example(probe=["5"])  # upgrade without a probe
@example(probe=["2probe", "2probe"])
@example(probe=["2probe", "5", "2probe"])
async def test_abused_upgrade_hurts_only_its_session(caplog: pytest.LogCaptureFixture, probe: list[str], then: str) -> None:
    """Random packets on the probe WebSocket of a polling session. Then the
    probe goes away (a probe left open but silent holds the session's
    messages until the upgrade timeout, 10 s, as the reference server does),
    and the session either polls on or hangs up."""
    caplog.clear()
    caplog.set_level(logging.INFO)
    async with open_roomserver() as server, bystanders(server) as by, open_lean_client(
        server.port, transport="polling", name="upgrader"
    ) as client:
        lists_before = by.quiet_lists()
        url = f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket&sid={client.sid}"
        try:
            async with open_websocket_url(url) as ws:
                for packet in probe:
                    await ws.send_message(packet)
        except (ConnectionClosed, trio_websocket.HandshakeError):
            pass
        if then == "poll":
            await settle(client, PROBE)
            if probe[:2] != ["2probe", "5"]:  # no upgrade happened: the session polls on, untouched
                assert client.acks.get(424242), (client.eio_frames, client.events)
        await check_bystanders(server, by, lists_before)
    assert_no_errors_logged(caplog)


# -- legacy clients (Engine.IO v3): the same limits, the same answers ---------------------


async def open_v3_polling(port: int) -> str:
    """A v3 polling session (socket.io-client 2.x under Node asks b64=1); its sid."""
    reply = await http_request(port, "GET", "/socket.io/?EIO=3&transport=polling&t=x&b64=1")
    assert reply.status == 200, reply
    length, _, packet = reply.body.decode().partition(":")
    assert packet.startswith("0") and len(packet) == int(length)
    return str(json.loads(packet[1:])["sid"])


async def test_v3_polling_post_just_over_max_payload_is_refused(
    start_roomserver: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    max_payload = 10_000
    server = await start_roomserver(max_payload=max_payload)
    async with bystanders(server) as by:
        sid = await open_v3_polling(server.port)
        target = f"/socket.io/?EIO=3&transport=polling&sid={sid}"
        packet = '42/lobby,["nope","' + "x" * max_payload + '"]'
        body = f"{len(packet)}:{packet}".encode()[: max_payload + 1]
        reply = await http_request(server.port, "POST", target, body)
        assert reply.status == 413
        gone = await http_request(server.port, "GET", target)
        assert json.loads(gone.body)["code"] == 1  # the session is closed
        await check_bystanders(server, by)
    assert_no_errors_logged(caplog)


@pytest.mark.parametrize(
    "body",
    [b"\xff\xfe\xfd", b"6:4hello\xc3", b"", b"0:", b"9:4short", b"4:b4!!", b"2:9x", b"\x00\x09\xff4", b"\x01\x01\xff\x02"],
    ids=["latin1", "truncated-utf8", "empty", "zero-length", "short", "bad-base64", "bad-type", "binary-short", "binary-type"],
)
async def test_broken_v3_post_bodies_close_only_their_session(
    start_roomserver: Callable[..., Any], caplog: pytest.LogCaptureFixture, body: bytes
) -> None:
    server = await start_roomserver()
    async with bystanders(server) as by:
        sid = await open_v3_polling(server.port)
        reply = await http_request(server.port, "POST", f"/socket.io/?EIO=3&transport=polling&sid={sid}", body)
        assert reply.status == 400 and json.loads(reply.body)["code"] == 3
        assert server.sio.engineio.lookup(sid) is None
        await check_bystanders(server, by)
    assert_no_errors_logged(caplog)


async def test_v3_websocket_message_just_over_max_payload_closes_with_1009(
    start_roomserver: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    max_payload = 10_000
    server = await start_roomserver(max_payload=max_payload)
    async with bystanders(server) as by:
        url = f"ws://127.0.0.1:{server.port}/socket.io/?EIO=3&transport=websocket"
        async with open_websocket_url(url, max_message_size=2**24) as ws:
            assert (await ws.get_message()).startswith("0{")
            assert await ws.get_message() == "40"  # joined to "/" at open (Socket.IO protocol 4)
            await ws.send_message(b"\x04" + b"x" * max_payload)
            with trio.fail_after(5), pytest.raises(ConnectionClosed) as closed:
                while True:
                    await ws.get_message()
            assert closed.value.reason.code == 1009
        await check_bystanders(server, by)
    assert_no_errors_logged(caplog)
