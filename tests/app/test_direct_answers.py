"""A seated player's answers go straight to their room (roomactors/actors/routes.py).

Real python-socketio clients on 127.0.0.1, port 0. What the clients receive must
be exactly what the lobby's way gave: the acks, the progress, and every error in
protocol.md's order, also when the player's direct line went stale (a kick, a
closed room) and when a flood meets the rate limit. The route itself is looked
at only to know which way an answer went.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
from support.clients import ClientSocket, open_clients
from support.roomapp import NO_RATE_LIMIT, Served, ack_of, serve_room_app
from support.waiting import wait_until

from roomactors.actors import RoomLimits, RoomRoute
from roomactors.app import SocketClient

ANSWERS = ("two", "four", "six", "eight")
DECK = {"name": "Direct", "flashcards": [{"id": i, "problem": f"p{i}", "answer": a} for i, a in enumerate(ANSWERS)]}


async def code_of(sock: ClientSocket, event: str, payload: Any) -> str:
    ack = await ack_of(sock, event, payload)
    assert ack["ok"] is False and ack["error"]["message"], ack
    return str(ack["error"]["code"])


async def socket_client(served: Served, user_id: str, namespace: str) -> SocketClient:
    """The server's side of the socket that speaks for ``user_id``."""
    snapshot = await served.app.lobby.snapshot()
    (sid,) = [cid for cid, uid in snapshot.connections.items() if uid == user_id]
    client = served.app.client(namespace, str(sid))
    assert client is not None
    return client


async def racing(served: Served, clients: Any, *, listed: bool = True, players: int = 2
                 ) -> tuple[int, ClientSocket, list[ClientSocket]]:
    """A host on ``/`` and players on ``/lobby`` in one room, its race running."""
    socks = []
    for name in ["host", *(f"p{i}" for i in range(1, players + 1))]:
        sock = clients.connect(served.url, "/" if name == "host" else "/lobby")
        await sock.wait_connected()
        assert (await ack_of(sock, "join_lobby", {"id": name}))["ok"] is True
        socks.append(sock)
    host, *seated = socks
    created = (await ack_of(host, "create_room", {"name": "R", "deck": DECK, "listed": listed}))["room"]
    room = created["id"]
    for sock in seated:  # an unlisted room is joined by its code
        target = {"id": room} if listed else {"code": created["code"]}
        assert (await ack_of(sock, "join_room", target))["ok"] is True
    assert (await ack_of(host, "start_race", {"id": room, "countdown": 0}))["ok"] is True
    for sock in seated:
        await sock.next_event("racestart")
    return room, host, seated


def answer(room: int, card: int, value: str = "x") -> dict[str, Any]:
    return {"id": room, "race_id": 1, "card": card, "answer": value}


@pytest.fixture
async def served() -> Any:
    async with serve_room_app(NO_RATE_LIMIT) as served:
        yield served


async def test_after_the_first_answer_the_player_answers_the_room_directly(served: Served) -> None:
    async with open_clients("python") as clients:
        room, host, (p1, p2) = await racing(served, clients)
        client = await socket_client(served, "p1", "/lobby")
        assert client.route is None  # seated, but not yet seen answering
        first = await ack_of(p1, "answer", answer(room, 0, ANSWERS[0]))
        assert first == {"ok": True, "card": 0, "correct": True, "next": 1}
        route = client.route
        assert isinstance(route, RoomRoute) and (route.room_id, route.user_id) == (room, "p1")
        # the direct way: the same acks, errors and progress as the lobby's
        assert await ack_of(p1, "answer", answer(room, 1, "wrong")) == {
            "ok": True, "card": 1, "correct": False, "next": 2
        }
        assert await code_of(p1, "answer", answer(room, 3)) == "wrong_card"
        assert await code_of(p1, "answer", {**answer(room, 2), "race_id": 7}) == "not_racing"
        assert await code_of(p1, "answer", {**answer(room, 2), "answer": "x" * 101}) == "invalid_payload"
        assert await code_of(p1, "answer", {**answer(room, 2), "id": room + 100}) == "room_not_found"
        assert client.route is route  # refusals the lobby gives leave the line as it was

        def shows(answered: int) -> Any:
            def check(args: list[Any]) -> bool:
                return any(p["id"] == "p1" and p["answered"] == answered for p in args[0]["players"])
            return check

        await host.next_event("raceprogress", where=shows(2))
        for card in (2, 3):
            assert (await ack_of(p1, "answer", answer(room, card, ANSWERS[card])))["correct"] is True
        for card, value in enumerate(ANSWERS):
            assert (await ack_of(p2, "answer", answer(room, card, value)))["ok"] is True
        (over,) = await host.next_event("raceover")
        assert over["reason"] == "all_done"
        assert [(r["id"], r["correct"]) for r in over["ranking"]] == [("p2", 4), ("p1", 3)]
        assert await code_of(p1, "answer", answer(room, 0)) == "race_over"


@pytest.mark.parametrize(("listed", "expected"), [(True, "not_racing"), (False, "room_not_found")])
async def test_a_kicked_player_is_refused_as_by_the_lobby(served: Served, listed: bool, expected: str) -> None:
    """Listed, the room refuses the kicked racer (not_racing); unlisted, it no
    longer exists for them (room_not_found): also when the answer crossed the kick."""
    async with open_clients("python") as clients:
        room, host, (p1, p2) = await racing(served, clients, listed=listed)
        client = await socket_client(served, "p1", "/lobby")
        await ack_of(p1, "answer", answer(room, 0, ANSWERS[0]))
        stale = client.route
        assert stale is not None
        assert await ack_of(host, "kick_player", {"id": room, "user": "p1"}) == {"ok": True}
        await p1.next_event("kicked")
        assert client.route is None  # the lobby dropped the line with the seat
        assert await code_of(p1, "answer", answer(room, 1)) == expected
        # an answer that crossed the kick: sent on the old line, the room hands it back
        client.route_room(stale)
        assert await code_of(p1, "answer", answer(room, 1)) == expected
        if listed:
            assert await code_of(p1, "join_room", {"id": room}) == "banned"
        # the race goes on for the others
        assert (await ack_of(p2, "answer", answer(room, 0, ANSWERS[0])))["correct"] is True


async def test_a_closed_room_refuses_direct_answers_with_room_not_found(served: Served) -> None:
    async with open_clients("python") as clients:
        room, host, (p1, _) = await racing(served, clients)
        client = await socket_client(served, "p1", "/lobby")
        await ack_of(p1, "answer", answer(room, 0, ANSWERS[0]))
        stale = client.route
        assert stale is not None
        assert await ack_of(host, "leave_room", {"id": room}) == {"ok": True}
        (closed,) = await p1.next_event("roomclosed")
        assert closed == {"id": room, "reason": "host_left"}
        assert client.route is None
        assert await code_of(p1, "answer", answer(room, 1)) == "room_not_found"
        client.route_room(stale)  # as if the answer had crossed the close
        assert await code_of(p1, "answer", answer(room, 1)) == "room_not_found"
        # back in the lobby, and it still answers this connection
        assert (await ack_of(p1, "time_sync", {"t0": 1}))["ok"] is True


async def test_a_player_back_on_a_new_connection_gets_a_new_line(served: Served) -> None:
    """A takeover (a reloaded tab, with the seat's token): the old connection's
    line is dropped; the new one answers through the lobby once, then directly."""
    async with open_clients("python") as clients:
        room, _, (p1, _) = await racing(served, clients)
        old = await socket_client(served, "p1", "/lobby")
        await ack_of(p1, "answer", answer(room, 0, ANSWERS[0]))
        assert old.route is not None
        token = (await ack_of(p1, "join_lobby", {"id": "p1"}))["token"]
        tab = clients.connect(served.url, "/lobby")
        await tab.wait_connected()
        assert (await ack_of(tab, "join_lobby", {"id": "p1", "token": token}))["ok"] is True
        assert old.route is None
        (state,) = await tab.next_event("racestate")
        assert state["next"] == 1
        new = await socket_client(served, "p1", "/lobby")
        assert new is not old and new.route is None
        assert (await ack_of(tab, "answer", answer(room, 1, ANSWERS[1])))["correct"] is True
        assert new.route is not None
        assert (await ack_of(tab, "answer", answer(room, 2, ANSWERS[2])))["correct"] is True


async def test_a_flood_of_direct_answers_is_rate_limited_then_expelled() -> None:
    """The direct line shares the connection's bucket: the same answers are
    refused (rate_limited) and the same flooder expelled as on the lobby's way."""
    limits = RoomLimits(command_rate=0.001, command_burst=6, flood_limit=2, flood_window=60)
    async with serve_room_app(limits) as served, open_clients("python") as clients:
        room, host, (p1, _) = await racing(served, clients)  # p1: join_lobby, join_room (2 tokens)
        client = await socket_client(served, "p1", "/lobby")
        codes = []
        for card in range(5):  # tokens 3 to 6 (the first through the lobby, then directly), then none
            ack = await ack_of(p1, "answer", answer(room, card, ANSWERS[card] if card < 4 else "x"))
            codes.append("ok" if ack["ok"] else ack["error"]["code"])
            if card == 0:
                assert client.route is not None
        assert codes == ["ok", "ok", "ok", "ok", "rate_limited"]
        assert await code_of(p1, "answer", answer(room, 4)) == "rate_limited"
        p1.emit("answer", answer(room, 4))  # one past flood_limit: expelled (no ack, as before)
        await wait_until(lambda: not p1.connected, timeout=5)
        with trio.fail_after(5):
            progress = await host.next_event(
                "raceprogress", where=lambda args: all(p["id"] != "p1" or not p["connected"] for p in args[0]["players"])
            )
        assert progress[0]["race_id"] == 1
