"""The lobby and rooms through the embedding API: every command, every error, in order."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
import trio.testing
from actors.helpers import NO_RATE_LIMIT, make_deck

from roomactors.actors import REGISTRY, Lobby, MemoryClient, RoomLimits, open_lobby
from roomactors.actors.messages import Command, JoinRoom
from roomactors.actors.room import RoomActor

Ack = dict[str, Any]


def error_code(ack: Ack) -> str:
    assert ack["ok"] is False, ack
    assert set(ack) == {"ok", "error"} and set(ack["error"]) == {"code", "message"}
    assert ack["error"]["message"]
    return str(ack["error"]["code"])


class Member(MemoryClient):
    """A MemoryClient that remembers the seat token of its last join."""

    token: str | None = None


async def joined(lobby: Lobby, name: str, user_id: Any = None, **profile: Any) -> Member:
    client = Member(name)
    await lobby.connect(client)
    ack = await lobby.join_lobby(client, user_id if user_id is not None else name, **profile)
    assert ack["ok"] is True, ack
    client.token = ack["token"]
    return client


def without_token(ack: Ack) -> Ack:
    assert isinstance(ack.get("token"), str) and len(ack["token"]) >= 22, ack  # >= 128 bits of base64url
    return {key: value for key, value in ack.items() if key != "token"}


async def room_of(lobby: Lobby, host: MemoryClient, name: str = "Room", **deck: Any) -> int:
    ack = await lobby.create_room(host, name, make_deck(**deck))
    assert ack["ok"] is True, ack
    return int(ack["room"]["id"])


async def test_worked_example_of_protocol_md(lobby: Lobby) -> None:
    a, b = MemoryClient("A"), MemoryClient("B")
    await lobby.connect(a)
    await lobby.connect(b)
    ack = await lobby.command(a, "join_lobby", {"id": 1, "username": "mia", "auth_level": "teacher"})
    assert without_token(ack) == {"ok": True, "user": {"id": 1, "username": "mia", "auth_level": "teacher"}, "room": None}
    assert (await a.next_room_list()).to_json() == []
    await lobby.command(b, "join_lobby", {"id": 2, "username": "sam", "auth_level": "student"})
    assert (await b.next_room_list()).to_json() == []

    deck = {"name": "Week 3", "flashcards": [{"id": 1, "problem": "1/2+1/4", "answer": "3/4"}]}
    ack = await lobby.command(a, "create_room", {"name": "Fractions", "deck": deck})
    room = {
        "id": 1,
        "name": "Fractions",
        "host": {"id": 1, "username": "mia", "auth_level": "teacher", "connected": True},
        "deck": {
            "id": None, "name": "Week 3", "description": None, "numProblems": 1, "user_id": None,
            "user_name": None, "created": None, "changed": None, "private": None,
        },
        "players": [],
        "max_players": 50,
        "state": "waiting",
        "locked": False,
    }
    room["code"] = ack["room"]["code"]  # random (see test_lobby_feed.py)
    assert ack == {"ok": True, "room": room}
    assert (await a.next_room_list()).to_json() == [room]
    assert (await b.next_room_list()).to_json() == [room]

    assert (await lobby.command(b, "join_room", {"id": 1}))["ok"] is True
    with_sam = {**room, "players": [{"id": 2, "username": "sam", "auth_level": "student", "connected": True}]}
    assert (await a.next_room_list()).to_json() == [with_sam]
    assert (await b.next_room_list()).to_json() == [with_sam]

    assert await lobby.command(a, "leave_room", {"id": 1}) == {"ok": True}
    assert b.events == [("roomclosed", {"id": 1, "reason": "host_left"})]
    assert a.events == []  # the host left by itself: no roomclosed for them
    assert (await a.next_room_list()).to_json() == []
    assert (await b.next_room_list()).to_json() == []
    assert "3/4" not in repr(a.room_list) and "3/4" not in str(ack)


async def test_watcher_gets_every_list_without_joining(lobby: Lobby) -> None:
    watcher = MemoryClient("watcher")
    await lobby.connect(watcher)
    host = await joined(lobby, "h")
    await room_of(lobby, host, "R")
    assert [r["name"] for r in (await watcher.next_room_list()).to_json()] == ["R"]
    assert lobby.statistics().clients == 2 and lobby.statistics().users == 1


async def test_join_lobby_sends_the_current_list_to_that_client_only(lobby: Lobby) -> None:
    host = await joined(lobby, "h")
    await room_of(lobby, host)
    seen_by_host = host.room_lists_received
    late = await joined(lobby, "late")
    assert len((await late.next_room_list()).to_json()) == 1
    assert host.room_lists_received == seen_by_host


async def test_repeated_join_lobby_updates_profile_and_broadcasts_when_it_shows(lobby: Lobby) -> None:
    host = await joined(lobby, "h", username="old", auth_level="teacher")
    other = await joined(lobby, "o")
    # Not seated: the change does not show in the list, so nothing is broadcast.
    before = other.room_lists_received
    ack = await lobby.join_lobby(host, "h", username="new")
    assert ack["user"] == {"id": "h", "username": "new", "auth_level": "teacher"}
    assert other.room_lists_received == before
    room_id = await room_of(lobby, host)
    await other.next_room_list()
    ack = await lobby.command(host, "join_lobby", {"id": "h", "auth_level": None})
    assert without_token(ack) == {"ok": True, "user": {"id": "h", "username": "new", "auth_level": None}, "room": room_id}
    assert (await other.next_room_list()).to_json()[0]["host"] == {**ack["user"], "connected": True}


async def test_leave_lobby(lobby: Lobby) -> None:
    host = await joined(lobby, "h")
    player = await joined(lobby, "p")
    room_id = await room_of(lobby, host)
    await lobby.join_room(player, room_id)
    assert await lobby.leave_lobby(player, "p") == {"ok": True}
    assert (await host.next_room_list()).to_json()[0]["players"] == []
    # The connection stays, anonymous: it still watches, and must join again to act.
    assert error_code(await lobby.join_room(player, room_id)) == "not_in_lobby"
    await lobby.create_room(host, "second", make_deck())  # refused, host is seated; no change
    assert await lobby.leave_lobby(host, "h") == {"ok": True}
    assert player.events == []
    assert (await player.next_room_list()).to_json() == []
    assert lobby.statistics().users == 0 and lobby.statistics().clients == 2


async def test_host_leave_lobby_disbands_with_host_left(lobby: Lobby) -> None:
    host = await joined(lobby, "h")
    player = await joined(lobby, "p")
    room_id = await room_of(lobby, host)
    await lobby.join_room(player, room_id)
    await lobby.leave_lobby(host, "h")
    assert player.events == [("roomclosed", {"id": room_id, "reason": "host_left"})]
    assert host.events == []
    snapshot = await lobby.snapshot()
    assert snapshot.places == {"p": None}


async def test_create_room_with_host_binds_an_anonymous_connection(lobby: Lobby) -> None:
    client = MemoryClient("c")
    await lobby.connect(client)
    ack = await lobby.create_room(client, "R", make_deck(), host={"id": 5, "username": "ann"})
    assert ack["ok"] is True and ack["room"]["host"] == {"id": 5, "username": "ann", "auth_level": None, "connected": True}
    assert (await lobby.snapshot()).places == {5: 1}
    assert error_code(await lobby.join_lobby(client, 6)) == "identity_mismatch"


async def test_room_ids_count_from_one_and_are_never_reused(lobby: Lobby) -> None:
    host = await joined(lobby, "h")
    ids = []
    for _ in range(3):
        ids.append(await room_of(lobby, host))
        await lobby.leave_room(host, ids[-1])
    assert ids == [1, 2, 3]


async def test_join_room_same_room_is_a_no_op_and_rooms_list_players_in_order(lobby: Lobby) -> None:
    host = await joined(lobby, "h")
    p1, p2 = await joined(lobby, "p1"), await joined(lobby, "p2")
    room_id = await room_of(lobby, host)
    await lobby.join_room(p1, room_id)
    await lobby.join_room(p2, room_id)
    version = (await lobby.snapshot()).rooms.version
    ack = await lobby.join_room(p1, room_id)
    assert [p["id"] for p in ack["room"]["players"]] == ["p1", "p2"]
    assert (await lobby.join_room(host, room_id))["ok"] is True  # the host sits in it too
    assert (await lobby.snapshot()).rooms.version == version


async def test_player_leave_room_goes_back_to_the_lobby(lobby: Lobby) -> None:
    host, player = await joined(lobby, "h"), await joined(lobby, "p")
    room_id = await room_of(lobby, host)
    await lobby.join_room(player, room_id)
    assert await lobby.leave_room(player, room_id) == {"ok": True}
    assert (await lobby.snapshot()).places == {"h": room_id, "p": None}
    assert player.events == [] and host.events == []
    assert error_code(await lobby.leave_room(player, room_id)) == "not_in_room"


async def test_room_full(lobby: Lobby) -> None:
    async with open_lobby(RoomLimits(max_players=2, command_rate=None)) as small:
        host = await joined(small, "h")
        room_id = await room_of(small, host)
        for name in ("p1", "p2"):
            assert (await small.join_room(await joined(small, name), room_id))["ok"] is True
        late = await joined(small, "p3")
        version = (await small.snapshot()).rooms.version
        ack = await small.join_room(late, room_id)
        assert error_code(ack) == "room_full"
        assert f"room {room_id} is full (2 players)" in ack["error"]["message"]
        assert (await small.snapshot()).rooms.version == version  # a failed command changes nothing
        assert (await small.snapshot()).places["p3"] is None


async def test_too_many_rooms() -> None:
    async with open_lobby(RoomLimits(max_rooms=2, command_rate=None)) as small:
        for name in ("a", "b"):
            await room_of(small, await joined(small, name))
        ack = await small.create_room(await joined(small, "c"), "third", make_deck())
        assert error_code(ack) == "too_many_rooms" and "2 rooms" in ack["error"]["message"]
        assert small.statistics().rooms == 2


async def test_thirty_concurrent_create_rooms_all_show_in_the_list(lobby: Lobby) -> None:
    clients = [await joined(lobby, f"u{i}") for i in range(30)]
    watcher = MemoryClient("w")
    await lobby.connect(watcher)
    acks: list[Ack] = []

    async def create(client: MemoryClient) -> None:
        acks.append(await lobby.create_room(client, f"room of {client.name}", make_deck()))

    async with trio.open_nursery() as nursery:
        for client in clients:
            nursery.start_soon(create, client)
    assert all(ack["ok"] for ack in acks)
    assert sorted(ack["room"]["id"] for ack in acks) == list(range(1, 31))
    final = (await watcher.next_room_list()).to_json()
    assert [room["id"] for room in final] == list(range(1, 31))  # creation order
    assert {room["host"]["id"] for room in final} == {c.name for c in clients}
    for client in clients:
        assert client.rooms == final


async def test_errors_in_check_order(lobby: Lobby) -> None:
    anon = MemoryClient("anon")
    await lobby.connect(anon)
    host = await joined(lobby, "h")
    room_id = await room_of(lobby, host)
    # 1 invalid_payload before 2 not_in_lobby
    assert error_code(await lobby.command(anon, "join_room", {"id": 0})) == "invalid_payload"
    assert error_code(await lobby.command(anon, "join_room", ["not", "an", "object"])) == "invalid_payload"
    assert error_code(await lobby.command(anon, "create_room", {"name": "", "deck": {}})) == "invalid_payload"
    # 2 not_in_lobby before 3 forbidden and 4 room_not_found
    assert error_code(await lobby.command(anon, "leave_lobby", {"id": "h"})) == "not_in_lobby"
    assert error_code(await lobby.command(anon, "join_room", {"id": 999})) == "not_in_lobby"
    assert error_code(await lobby.command(anon, "leave_room", {"id": 999})) == "not_in_lobby"
    assert error_code(await lobby.command(anon, "create_room", {"name": "r", "deck": make_deck()})) == "not_in_lobby"
    # 3 forbidden / identity_mismatch before 5 already_in_room
    assert error_code(await lobby.command(host, "leave_lobby", {"id": "someone"})) == "forbidden"
    assert error_code(await lobby.command(host, "join_lobby", {"id": "someone"})) == "identity_mismatch"
    bad_host = {"name": "r", "host": {"id": "x"}, "deck": make_deck()}
    assert error_code(await lobby.command(host, "create_room", bad_host)) == "identity_mismatch"
    # 4 room_not_found before 5 already_in_room / not_in_room
    assert error_code(await lobby.command(host, "join_room", {"id": 999})) == "room_not_found"
    assert error_code(await lobby.command(host, "leave_room", {"id": 999})) == "room_not_found"
    # 5
    other_host = await joined(lobby, "h2")
    other_room = await room_of(lobby, other_host)
    assert error_code(await lobby.command(host, "join_room", {"id": other_room})) == "already_in_room"
    assert error_code(await lobby.command(host, "leave_room", {"id": other_room})) == "not_in_room"
    assert error_code(await lobby.command(host, "create_room", {"name": "r", "deck": make_deck()})) == "already_in_room"
    assert (await lobby.snapshot()).places == {"h": room_id, "h2": other_room}


async def test_already_in_room_comes_before_too_many_rooms() -> None:
    async with open_lobby(RoomLimits(max_rooms=1, command_rate=None)) as small:
        host = await joined(small, "h")
        await room_of(small, host)
        assert error_code(await small.create_room(host, "again", make_deck())) == "already_in_room"


async def test_rate_limited_comes_first_and_refills(autojump_clock: trio.testing.MockClock) -> None:
    async with open_lobby(RoomLimits(command_rate=2.0, command_burst=3)) as limited:
        client = MemoryClient("c")
        await limited.connect(client)
        codes = [error_code(await limited.command(client, "join_room", {"id": 0})) for _ in range(4)]
        assert codes == ["invalid_payload"] * 3 + ["rate_limited"]
        await trio.sleep(0.5)  # one token back at 2 per second
        assert error_code(await limited.command(client, "join_room", {"id": 0})) == "invalid_payload"
        assert error_code(await limited.command(client, "join_room", {"id": 0})) == "rate_limited"


async def test_disconnect_of_host_disbands_with_host_disconnected(lobby: Lobby) -> None:
    host, player = await joined(lobby, "h"), await joined(lobby, "p")
    room_id = await room_of(lobby, host)
    await lobby.join_room(player, room_id)
    await player.next_room_list()
    await lobby.disconnect(host)
    assert player.events == [("roomclosed", {"id": room_id, "reason": "host_disconnected"})]
    assert (await player.next_room_list()).to_json() == []
    assert lobby.statistics() == type(lobby.statistics())(clients=1, users=1, rooms=0)


async def test_disconnect_of_player_and_of_unknown_clients(lobby: Lobby) -> None:
    host, player = await joined(lobby, "h"), await joined(lobby, "p")
    room_id = await room_of(lobby, host)
    await lobby.join_room(player, room_id)
    await lobby.disconnect(player)
    await lobby.disconnect(player)
    await lobby.disconnect(MemoryClient("never-connected"))
    assert (await host.next_room_list()).to_json()[0]["players"] == []
    assert (await lobby.snapshot()).places == {"h": room_id}


async def test_takeover_keeps_the_place_and_replaces_the_old_connection(lobby: Lobby) -> None:
    host_old = await joined(lobby, "h", username="mia")
    player = await joined(lobby, "p")
    room_id = await room_of(lobby, host_old)
    await lobby.join_room(player, room_id)
    host_new = MemoryClient("h-new")
    await lobby.connect(host_new)
    ack = await lobby.join_lobby(host_new, "h", auth_level="teacher", token=host_old.token)
    assert without_token(ack) == {"ok": True, "user": {"id": "h", "username": "mia", "auth_level": "teacher"}, "room": room_id}
    assert host_old.events and host_old.events[-1][0] == "replaced" and "reason" in host_old.events[-1][1]
    assert host_old.detached == "replaced"
    # The old connection is gone from the lobby: its disconnect and commands do nothing.
    await lobby.disconnect(host_old)
    assert error_code(await lobby.join_lobby(host_old, "h")) == "not_in_lobby"
    assert (await lobby.snapshot()).places == {"h": room_id, "p": room_id}
    # The new connection holds the host seat.
    assert await lobby.leave_room(host_new, room_id) == {"ok": True}
    assert player.events == [("roomclosed", {"id": room_id, "reason": "host_left"})]


async def test_create_room_with_host_takes_over_a_lobby_user(lobby: Lobby) -> None:
    old = await joined(lobby, 7)
    new = MemoryClient("new")
    await lobby.connect(new)
    assert error_code(await lobby.create_room(new, "R", make_deck(), host={"id": 7})) == "identity_taken"
    assert old.detached is None
    ack = await lobby.create_room(new, "R", make_deck(), host={"id": 7, "token": old.token})
    assert ack["ok"] is True and isinstance(ack["token"], str) and ack["token"] != old.token
    assert old.detached == "replaced"
    assert (await lobby.snapshot()).connections == {"new": 7}


async def test_failed_create_room_with_host_does_not_take_over(lobby: Lobby) -> None:
    host = await joined(lobby, 7)
    await room_of(lobby, host)
    thief = MemoryClient("thief")
    await lobby.connect(thief)
    ack = await lobby.create_room(thief, "R", make_deck(), host={"id": 7})
    assert error_code(ack) == "identity_taken"  # step 3, before already_in_room
    ack = await lobby.create_room(thief, "R", make_deck(), host={"id": 7, "token": host.token})
    assert error_code(ack) == "already_in_room"
    assert host.detached is None and host.events == []


async def test_a_room_that_raises_returns_its_people_to_the_lobby(
    lobby: Lobby, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    original = RoomActor.handle

    async def explode(self: RoomActor, message: Any) -> Any:
        if isinstance(message, JoinRoom) and message.user.id == "b":
            raise RuntimeError("room bug")
        return await original(self, message)

    monkeypatch.setattr(RoomActor, "handle", explode)
    host, player, bystander = await joined(lobby, "h"), await joined(lobby, "p"), await joined(lobby, "b")
    doomed = await room_of(lobby, host, "doomed")
    other_host = await joined(lobby, "oh")
    survivor = await room_of(lobby, other_host, "survivor")
    await lobby.join_room(player, doomed)
    with caplog.at_level(logging.ERROR):
        ack = await lobby.join_room(bystander, doomed)
    assert error_code(ack) == "internal"
    crashed = ("roomclosed", {"id": doomed, "reason": "crashed"})
    assert player.events == [crashed] and host.events == [crashed]
    assert bystander.events == []
    assert any(r.exc_info and "room bug" in str(r.exc_info[1]) for r in caplog.records)
    await trio.testing.wait_all_tasks_blocked()
    snapshot = await lobby.snapshot()
    assert [room.id for room in snapshot.rooms.rooms] == [survivor]
    assert snapshot.places == {"h": None, "p": None, "b": None, "oh": survivor}
    assert [room["id"] for room in (await player.next_room_list()).to_json()] == [survivor]
    # The lobby and the other room go on.
    assert (await lobby.join_room(player, survivor))["ok"] is True
    assert (await lobby.create_room(host, "again", make_deck()))["room"]["id"] == survivor + 1


async def test_a_slow_client_does_not_block_others(lobby: Lobby) -> None:
    slow = MemoryClient("slow")  # never reads
    await lobby.connect(slow)
    host = await joined(lobby, "h")
    player = await joined(lobby, "p")
    with trio.fail_after(5):
        for _ in range(200):
            room_id = await room_of(lobby, host)
            await lobby.join_room(player, room_id)
            await lobby.leave_room(host, room_id)
        assert (await player.next_room_list()).to_json() == []
    assert slow.room_list is not None and slow.room_list.version == (await lobby.snapshot()).rooms.version
    assert slow.room_list.to_json() == []


async def test_a_raising_client_does_not_stop_the_lobby(lobby: Lobby, caplog: pytest.LogCaptureFixture) -> None:
    class Broken(MemoryClient):
        def send_room_list(self, rooms: Any) -> None:
            raise RuntimeError("broken pipe")

    await lobby.connect(Broken("broken"))
    host = await joined(lobby, "h")
    await room_of(lobby, host)
    assert len((await host.next_room_list()).to_json()) == 1
    assert any("broken" in r.getMessage() for r in caplog.records)


async def test_shutdown_closes_every_room_and_tells_host_and_players() -> None:
    async with open_lobby(NO_RATE_LIMIT) as lobby:
        host, player = await joined(lobby, "h"), await joined(lobby, "p")
        room_id = await room_of(lobby, host)
        await lobby.join_room(player, room_id)
        await lobby.shutdown()
        closed = ("roomclosed", {"id": room_id, "reason": "shutdown"})
        assert host.events == [closed] and player.events == [closed]
        assert host.rooms == [] and player.rooms == []
        assert error_code(await lobby.join_lobby(MemoryClient("x"), "x")) == "internal"
        await lobby.shutdown()  # idempotent
        await lobby.disconnect(host)


async def test_answers_never_leave_the_room(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with open_lobby(NO_RATE_LIMIT) as lobby:
        host, player = await joined(lobby, "h"), await joined(lobby, "p")
        acks = [await lobby.create_room(host, "R", make_deck(cards=3))]
        acks.append(await lobby.join_room(player, 1))
        acks.append(await lobby.create_room(player, "R2", make_deck()))  # refused: logged at debug
        snapshot = await lobby.snapshot()
    text = " ".join([str(acks), repr(snapshot), str(host.rooms), caplog.text])
    assert "secret" not in text


async def test_commands_must_be_known(lobby: Lobby) -> None:
    with pytest.raises(ValueError, match="unknown command"):
        await lobby.command(MemoryClient("c"), "start_game", {})


async def test_roomclosed_comes_before_the_list_without_the_room(lobby: Lobby) -> None:
    host = await joined(lobby, "h")
    player = MemoryClient("p", transcript=True)
    await lobby.connect(player)
    await lobby.join_lobby(player, "p")
    room_id = await room_of(lobby, host)
    await lobby.join_room(player, room_id)
    await lobby.disconnect(host)
    names = [name for name, _ in player.events]
    assert names[-2:] == ["roomclosed", "updaterooms"]
    assert player.events[-3][1].to_json()[0]["id"] == room_id  # still listed before roomclosed
    assert player.events[-1][1].to_json() == []


async def test_commands_queued_together_go_out_as_one_list(lobby: Lobby) -> None:
    """A burst handled in one batch costs every client one list, not one per change."""
    clients = [await joined(lobby, f"u{i}") for i in range(5)]
    watcher = MemoryClient("w")
    await lobby.connect(watcher)
    await trio.testing.wait_all_tasks_blocked()
    received = watcher.room_lists_received
    for client in clients:  # queued while the lobby is not running: one batch
        payload = {"name": f"room of {client.name}", "deck": make_deck()}
        lobby.ref.tell_nowait(Command(client, REGISTRY["create_room"], REGISTRY["create_room"].request(payload)))
    await trio.testing.wait_all_tasks_blocked()
    assert watcher.room_lists_received == received + 1
    assert [room["host"]["id"] for room in watcher.rooms or []] == [c.name for c in clients]


async def test_submit_answers_from_the_lobby_after_the_list_it_caused() -> None:
    async with open_lobby(NO_RATE_LIMIT) as lobby:
        host = await joined(lobby, "h")
        replies: list[tuple[Ack, Any]] = []
        await lobby.submit(
            host, "create_room", {"name": "R", "deck": make_deck()}, lambda r: replies.append((r, host.rooms))
        )
        await trio.testing.wait_all_tasks_blocked()
        [(reply, rooms_then)] = replies
        assert reply["ok"] is True and reply["room"]["id"] == 1
        assert [room["id"] for room in rooms_then] == [1]  # the list was there before the ack
        with pytest.raises(ValueError):
            await lobby.submit(host, "explode", {}, replies.append)
    await lobby.submit(host, "leave_room", {"id": 1}, lambda r: replies.append((r, None)))
    assert error_code(replies[-1][0]) == "internal"


async def test_submit_nowait_queues_in_order_without_waiting_and_says_when_the_mailbox_is_full() -> None:
    """What a cluster node's inbox reader uses for other nodes' players: no checkpoint,
    answers in the order queued, and False (nothing queued) once the mailbox is full."""
    async with open_lobby(NO_RATE_LIMIT) as lobby:
        host = await joined(lobby, "h")
        replies: list[tuple[int, Ack]] = []
        queued = 0
        while queued < 100_000:  # the lobby cannot run meanwhile: no checkpoint in between
            n = queued
            if not lobby.submit_nowait(host, "leave_room", {"id": 1}, lambda r, n=n: replies.append((n, r))):
                break
            queued += 1
        assert 0 < queued < 100_000  # the mailbox filled up, and said so
        await trio.testing.wait_all_tasks_blocked()
        assert [n for n, _ in replies] == list(range(queued))
        assert {error_code(r) for _, r in replies} == {"room_not_found"}
        with pytest.raises(ValueError):
            lobby.submit_nowait(host, "explode", {}, lambda r: None)
