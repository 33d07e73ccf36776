"""The race end to end: real Socket.IO clients on 127.0.0.1, port 0.

python-socketio's client and socket.io-client 4 under Node (marked ``node``),
on both namespaces; everything asserted on what the clients received. Real
time (Node cannot follow a mock clock), so the tests wait on events: the list
that shows the room ``racing`` before anyone answers.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from actors.race_helpers import MATCHING
from support.clients import Clients, ClientSocket, client_params, open_clients
from support.roomapp import Served, ack_of, serve_room_app

ANSWERS = ("kiwi-ANSWER-zero", "3/4", "lynx-ANSWER-two")
TOKENS: dict[str, str] = {}
"""The seat token of each user id's last join_lobby in ``seated`` (a reloaded tab keeps it)."""
DECK = {"name": "Race", "flashcards": [{"id": i, "problem": f"p{i}", "answer": a} for i, a in enumerate(ANSWERS)]}


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    async with serve_room_app() as served:
        yield served


async def code_of(sock: ClientSocket, event: str, payload: Any) -> str:
    ack = await ack_of(sock, event, payload)
    assert ack["ok"] is False and ack["error"]["message"], ack
    return str(ack["error"]["code"])


async def seated(clients: Clients, url: str, names: list[tuple[str, str]], deck: dict[str, Any] = DECK
                 ) -> tuple[int, ClientSocket, list[ClientSocket]]:
    """A host and players (name, namespace) in one room; returns (room, host, players)."""
    socks = []
    for name, namespace in names:
        sock = clients.connect(url, namespace)
        await sock.wait_connected()
        joined = await ack_of(sock, "join_lobby", {"id": name, "username": name.upper()})
        assert joined["ok"] is True
        TOKENS[name] = joined["token"]
        socks.append(sock)
    host, *players = socks
    room = (await ack_of(host, "create_room", {"name": "Race room", "deck": deck}))["room"]["id"]
    for sock in players:
        assert (await ack_of(sock, "join_room", {"id": room}))["ok"] is True
    return room, host, players


def state_is(room: int, state: str) -> Any:
    def check(args: list[Any]) -> bool:
        return any(r["id"] == room and r["state"] == state for r in args[0])
    return check


def assert_no_answer_before_raceover(sock: ClientSocket, answers: tuple[str, ...] = ANSWERS) -> None:
    """Every event this client received up to its first raceover: no expected answer in it."""
    secret = [a.casefold() for a in answers if "ANSWER" in a]
    for record in sock.events:
        if record.event == "raceover":
            return
        text = json.dumps(record.args, default=repr).casefold()
        assert not any(s in text for s in secret), (record.event, record.args)


@pytest.mark.parametrize("client_kind", client_params())
async def test_a_whole_race_with_three_players_on_both_namespaces(served: Served, client_kind: str) -> None:
    async with open_clients(client_kind) as clients:
        room, host, (p1, p2, p3) = await seated(
            clients, served.url, [("host", "/"), ("p1", "/lobby"), ("p2", "/"), ("p3", "/lobby")]
        )
        sync = await ack_of(host, "time_sync", {"t0": 123.5})
        assert sync["ok"] is True and sync["t0"] == 123.5 and isinstance(sync["server_ms"], int)
        start = await ack_of(host, "start_race", {"id": room, "countdown": 0.3, "time_limit": 60})
        assert start["race_id"] == 1 and start["end_at"] - start["start_at"] == 60_000
        assert start["start_at"] - sync["server_ms"] >= 300
        for sock in (host, p1, p2, p3):
            (racestart,) = await sock.next_event("racestart")
            assert racestart["cards"] == [{"index": i, "problem": f"p{i}"} for i in range(3)]
            assert [p["id"] for p in racestart["players"]] == ["p1", "p2", "p3"]
            assert racestart["start_at"] == start["start_at"]
            await sock.next_event("updaterooms", where=state_is(room, "racing"))

        script = {p1: list(ANSWERS), p2: [ANSWERS[0], "0.75", "wrong"], p3: ["no", "no", "no"]}
        for sock, given in script.items():
            for card, value in enumerate(given):
                ack = await ack_of(sock, "answer", {"id": room, "race_id": 1, "card": card, "answer": value})
                assert ack == {"ok": True, "card": card, "correct": ack["correct"], "next": card + 1 if card < 2 else None}
        for sock in (host, p1, p2, p3):
            (over,) = await sock.next_event("raceover")
            assert over["reason"] == "all_done" and over["race_id"] == 1
            assert [(r["place"], r["id"], r["correct"], r["answered"]) for r in over["ranking"]] == [
                (1, "p1", 3, 3), (2, "p2", 2, 3), (3, "p3", 0, 3)
            ]
            assert [c["answer"] for c in over["cards"]] == list(ANSWERS)
            assert all(r["left"] is False and r["time_ms"] >= 0 for r in over["ranking"])
            assert sock.received("raceprogress"), "everyone sees progress"
            assert_no_answer_before_raceover(sock)
        assert host.received("raceover")[0][0]["mine"] == []
        mine = p2.received("raceover")[0][0]["mine"]
        assert [(m["index"], m["given"], m["correct"]) for m in mine] == [
            (0, ANSWERS[0], True), (1, "0.75", True), (2, "wrong", False)
        ]
        progress = p3.received("raceprogress")[-1][0]
        assert progress["race_id"] == 1 and {p["id"] for p in progress["players"]} == {"p1", "p2", "p3"}
        await host.next_event("updaterooms", where=state_is(room, "finished"))
        results = await ack_of(host, "race_results", {"id": room})
        assert [a["id"] for a in results["results"]["answers"]] == ["p1", "p2", "p3"]
        # the rematch
        again = await ack_of(host, "start_race", {"id": room, "countdown": 0})
        assert again["race_id"] == 2
        assert (await p1.next_event("racestart"))[0]["race_id"] == 2


@pytest.mark.parametrize("client_kind", client_params())
async def test_every_error_code_in_order(served: Served, client_kind: str) -> None:
    async with open_clients(client_kind) as clients:
        room, host, (p1, p2) = await seated(clients, served.url, [("host", "/lobby"), ("p1", "/lobby"), ("p2", "/")])
        anonymous = clients.connect(served.url, "/lobby")
        outsider = clients.connect(served.url, "/")
        await anonymous.wait_connected()
        await outsider.wait_connected()
        await ack_of(outsider, "join_lobby", {"id": "outsider"})
        answer = {"id": room, "race_id": 1, "card": 0, "answer": "4"}

        # start_race: invalid_payload, not_in_lobby, room_not_found, not_host, race_in_progress, no_players
        assert await code_of(host, "start_race", {"id": room, "countdown": 10.5}) == "invalid_payload"
        assert await code_of(host, "start_race", {"id": room, "time_limit": 5}) == "invalid_payload"
        assert await code_of(anonymous, "start_race", {"id": room}) == "not_in_lobby"
        assert await code_of(host, "start_race", {"id": 999}) == "room_not_found"
        assert await code_of(p1, "start_race", {"id": room}) == "not_host"
        lonely_host = clients.connect(served.url, "/")
        await lonely_host.wait_connected()
        await ack_of(lonely_host, "join_lobby", {"id": "lonely"})
        lonely = (await ack_of(lonely_host, "create_room", {"name": "Empty", "deck": DECK}))["room"]["id"]
        assert await code_of(lonely_host, "start_race", {"id": lonely}) == "no_players"
        # race_results before any race: race_not_found; end_race: not_racing
        assert await code_of(host, "race_results", {"id": room}) == "race_not_found"
        assert await code_of(host, "end_race", {"id": room}) == "not_racing"
        # answer: not_racing (no race), then a long countdown: race_not_started
        assert await code_of(p1, "answer", answer) == "not_racing"
        await ack_of(host, "start_race", {"id": room, "countdown": 10})
        assert await code_of(host, "start_race", {"id": room}) == "race_in_progress"
        assert await code_of(host, "race_results", {"id": room}) == "race_in_progress"
        assert await code_of(anonymous, "answer", answer) == "not_in_lobby"
        assert await code_of(p1, "answer", {**answer, "id": 999}) == "room_not_found"
        assert await code_of(outsider, "answer", answer) == "not_racing"
        assert await code_of(p1, "answer", {**answer, "race_id": 2}) == "not_racing"
        assert await code_of(p1, "answer", answer) == "race_not_started"
        # join_room during the race: room_locked (start_race locked it); unlocked: race_in_progress
        assert await code_of(outsider, "join_room", {"id": room}) == "room_locked"
        assert await code_of(p1, "lock_room", {"id": room, "locked": False}) == "not_host"
        assert (await ack_of(host, "lock_room", {"id": room, "locked": False}))["ok"] is True
        assert await code_of(outsider, "join_room", {"id": room}) == "race_in_progress"
        # kick_player: not_host, not_in_room; a kicked player: kicked, not_racing, banned
        assert await code_of(p1, "kick_player", {"id": room, "user": "p2"}) == "not_host"
        assert await code_of(host, "kick_player", {"id": room, "user": "outsider"}) == "not_in_room"
        assert (await ack_of(host, "kick_player", {"id": room, "user": "p2"})) == {"ok": True}
        assert await p2.next_event("kicked") == [{"id": room}]
        assert await code_of(p2, "answer", answer) == "not_racing"
        assert await code_of(p2, "join_room", {"id": room}) == "banned"
        # end_race during the countdown: answers get race_over
        assert await code_of(p1, "end_race", {"id": room}) == "not_host"
        assert (await ack_of(host, "end_race", {"id": room})) == {"ok": True}
        assert (await p1.next_event("raceover"))[0]["reason"] == "host_ended"
        assert await code_of(p1, "answer", answer) == "race_over"
        # wrong_card: a racing race
        await ack_of(host, "start_race", {"id": room, "countdown": 0})
        await p1.next_event("updaterooms", where=state_is(room, "racing"))
        assert await code_of(p1, "answer", {**answer, "race_id": 2, "card": 1}) == "wrong_card"
        assert await code_of(p1, "answer", {**answer, "race_id": 2, "answer": "x" * 101}) == "invalid_payload"
        assert await code_of(host, "race_results", {"id": room, "race_id": 9}) == "race_not_found"
        assert (await ack_of(host, "race_results", {"id": room, "race_id": 1}))["results"]["reason"] == "host_ended"
        # without an ack, a refusal is a rejected event
        p1.emit("answer", {**answer, "race_id": 2, "card": 2})
        (rejected,) = await p1.next_event("rejected")
        assert rejected["event"] == "answer" and rejected["code"] == "wrong_card" and rejected["message"]
        for sock in (host, p1, p2, outsider, anonymous):
            assert_no_answer_before_raceover(sock)


@pytest.mark.parametrize("client_kind", client_params())
async def test_the_matching_rule_end_to_end(served: Served, client_kind: str) -> None:
    deck = {"name": "Table", "flashcards": [
        {"id": i, "problem": f"row {i}", "answer": expected} for i, (_, expected, _) in enumerate(MATCHING)
    ]}
    async with open_clients(client_kind) as clients:
        room, host, (player,) = await seated(clients, served.url, [("host", "/"), ("p", "/lobby")], deck)
        await ack_of(host, "start_race", {"id": room, "countdown": 0})
        await player.next_event("updaterooms", where=state_is(room, "racing"))
        verdicts = []
        for card, (given, _, _) in enumerate(MATCHING):
            ack = await ack_of(player, "answer", {"id": room, "race_id": 1, "card": card, "answer": given})
            verdicts.append((given, ack["correct"]))
        assert verdicts == [(given, correct) for given, _, correct in MATCHING]


@pytest.mark.parametrize("client_kind", client_params())
async def test_a_player_who_leaves_mid_race(served: Served, client_kind: str) -> None:
    async with open_clients(client_kind) as clients:
        room, host, (p1, p2) = await seated(clients, served.url, [("host", "/"), ("p1", "/lobby"), ("p2", "/")])
        await ack_of(host, "start_race", {"id": room, "countdown": 0})
        await p1.next_event("updaterooms", where=state_is(room, "racing"))
        await ack_of(p1, "answer", {"id": room, "race_id": 1, "card": 0, "answer": ANSWERS[0]})
        assert await ack_of(p1, "leave_room", {"id": room}) == {"ok": True}

        def p1_gone(args: list[Any]) -> bool:
            return any(p["id"] == "p1" and not p["connected"] for p in args[0]["players"])

        await host.next_event("raceprogress", where=p1_gone)
        for card, value in enumerate(ANSWERS):
            await ack_of(p2, "answer", {"id": room, "race_id": 1, "card": card, "answer": value})
        for sock in (host, p2):
            (over,) = await sock.next_event("raceover")
            assert over["reason"] == "all_done"
            assert [(r["place"], r["id"], r["answered"], r["left"]) for r in over["ranking"]] == [
                (1, "p2", 3, False), (2, "p1", 1, True)
            ]
        assert p1.received("raceover") == []
        assert await code_of(p1, "answer", {"id": room, "race_id": 1, "card": 1, "answer": "x"}) == "not_racing"


@pytest.mark.parametrize("client_kind", client_params())
async def test_a_host_who_leaves_mid_race(served: Served, client_kind: str) -> None:
    async with open_clients(client_kind) as clients:
        room, host, (p1, p2) = await seated(clients, served.url, [("host", "/lobby"), ("p1", "/"), ("p2", "/lobby")])
        await ack_of(host, "start_race", {"id": room, "countdown": 0})
        await p1.next_event("updaterooms", where=state_is(room, "racing"))
        await ack_of(p1, "answer", {"id": room, "race_id": 1, "card": 0, "answer": "nope"})
        assert await ack_of(host, "leave_room", {"id": room}) == {"ok": True}
        (over,) = await host.next_event("raceover")
        assert over["reason"] == "host_left" and over["mine"] == []
        for sock in (p1, p2):
            (closed,) = await sock.next_event("roomclosed")
            assert closed == {"id": room, "reason": "host_left"}
            names = [n for n in sock.names() if n in ("raceover", "roomclosed")]
            assert names == ["raceover", "roomclosed"]
            (over,) = sock.received("raceover")[0]
            assert over["reason"] == "host_left"
            assert [c["answer"] for c in over["cards"]] == list(ANSWERS)
            await sock.next_event("updaterooms", where=lambda args: all(r["id"] != room for r in args[0]))
        [mine] = p1.received("raceover")[0][0]["mine"]
        assert mine["index"] == 0 and mine["given"] == "nope" and mine["correct"] is False and mine["ms"] >= 0
        assert await code_of(p1, "answer", {"id": room, "race_id": 1, "card": 1, "answer": "x"}) == "room_not_found"


async def test_raceprogress_is_encoded_once_per_room_and_namespace(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fan-out cost: one encode per namespace for a whole room, not one per player."""
    encodes: list[tuple[str, str]] = []
    original = served.app.sio.encode_event

    def counting(event: str, *args: Any, namespace: str = "/") -> Any:
        encodes.append((event, namespace))
        return original(event, *args, namespace=namespace)

    monkeypatch.setattr(served.app.sio, "encode_event", counting)
    names = [("host", "/"), ("p1", "/"), ("p2", "/"), ("p3", "/lobby"), ("p4", "/lobby"), ("p5", "/")]
    async with open_clients("python") as clients:
        room, host, players = await seated(clients, served.url, names)
        await ack_of(host, "start_race", {"id": room, "countdown": 0})
        for sock in (host, *players):
            await sock.next_event("racestart")
            await sock.next_event("updaterooms", where=state_is(room, "racing"))
        assert sorted(n for e, n in encodes if e == "racestart") == ["/", "/lobby"]
        await ack_of(players[0], "answer", {"id": room, "race_id": 1, "card": 0, "answer": ANSWERS[0]})
        for sock in (host, *players):
            (progress,) = await sock.next_event("raceprogress")
            assert progress["players"][0]["answered"] == 1
        assert sorted(n for e, n in encodes if e == "raceprogress") == ["/", "/lobby"]


@pytest.mark.parametrize("client_kind", client_params())
async def test_a_reloaded_tab_gets_racestate_and_carries_on(served: Served, client_kind: str) -> None:
    async with open_clients(client_kind) as clients:
        room, host, (p1,) = await seated(clients, served.url, [("host", "/"), ("p1", "/lobby")])
        start = await ack_of(host, "start_race", {"id": room, "countdown": 0})
        await p1.next_event("updaterooms", where=state_is(room, "racing"))
        await ack_of(p1, "answer", {"id": room, "race_id": 1, "card": 0, "answer": ANSWERS[0]})
        reloaded = clients.connect(served.url, "/")
        await reloaded.wait_connected()
        assert (await ack_of(reloaded, "join_lobby", {"id": "p1", "token": TOKENS["p1"]}))["room"] == room
        (state,) = await reloaded.next_event("racestate")
        assert state["race_id"] == 1 and state["state"] == "racing" and state["next"] == 1
        assert state["start_at"] == start["start_at"] and state["end_at"] == start["end_at"]
        assert [c["problem"] for c in state["cards"]] == ["p0", "p1", "p2"]
        assert state["progress"][0]["answered"] == 1
        assert_no_answer_before_raceover(reloaded)
        for card in (1, 2):
            await ack_of(reloaded, "answer", {"id": room, "race_id": 1, "card": card, "answer": ANSWERS[card]})
        (over,) = await reloaded.next_event("raceover")
        assert over["ranking"][0]["correct"] == 3 and len(over["mine"]) == 3
