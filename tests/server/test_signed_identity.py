"""Signed identity end to end: ``roomserver`` with an identity secret and
``teachers_only_create``, real clients (python-socketio, and socket.io-client under
Node) sending credentials made the way a school's site makes them (PyJWT)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
import trio
from support.clients import ClientSocket, client_params, open_clients

from roomactors.config import RoomServerConfig
from roomactors.server import RoomServer, serve_roomserver

SECRET = "the-school-and-the-server-share-this-secret"
DECK = {"name": "Week 3", "flashcards": [{"id": 1, "problem": "1/2+1/4", "answer": "3/4"}]}


def credential(secret: str = SECRET, **claims: Any) -> str:
    body = {"sub": "s-1", "name": "Sam", "role": "student", "exp": int(time.time()) + 600, **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, secret, algorithm="HS256")


@pytest.fixture
async def server(nursery: trio.Nursery) -> AsyncIterator[RoomServer]:
    config = RoomServerConfig(port=0, shutdown_timeout=5, identity_secret=SECRET, teachers_only_create=True)
    started: RoomServer = await nursery.start(serve_roomserver, config)
    yield started
    nursery.cancel_scope.cancel()


async def ack_of(sock: ClientSocket, event: str, payload: Any) -> dict[str, Any]:
    (ack,) = await sock.call(event, payload)
    assert isinstance(ack, dict)
    return ack


@pytest.mark.parametrize("client_kind", client_params())
async def test_credentials_good_expired_wrongly_signed_and_claimless(server: RoomServer, client_kind: str) -> None:
    async with open_clients(client_kind) as clients:
        sock = clients.connect(server.url, "/lobby")
        await sock.wait_connected()
        for token, says in (
            (credential(exp=int(time.time()) - 3600), "expired"),
            (credential(secret="some-other-site-with-its-own-secret"), "signature"),
            (credential(sub=None), "no sub claim"),
            (credential(exp=None), "no exp claim"),
        ):
            ack = await ack_of(sock, "join_lobby", {"credential": token})
            assert ack["ok"] is False and ack["error"]["code"] == "unauthenticated", ack
            assert says in ack["error"]["message"]
        # an open claim is not enough on this server
        ack = await ack_of(sock, "join_lobby", {"id": "s-1", "username": "Sam", "auth_level": "teacher"})
        assert ack["error"]["code"] == "unauthenticated" and "credential" in ack["error"]["message"]
        ack = await ack_of(sock, "create_room", {"name": "R", "deck": DECK, "host": {"id": "t", "auth_level": "teacher"}})
        assert ack["error"]["code"] == "unauthenticated"

        ack = await ack_of(sock, "join_lobby", {"credential": credential()})
        assert ack == {"ok": True, "user": {"id": "s-1", "username": "Sam", "auth_level": "student"}, "room": None}
        ack = await ack_of(sock, "create_room", {"name": "R", "deck": DECK})
        assert ack["error"]["code"] == "forbidden"

        teacher = clients.connect(server.url, "/")
        await teacher.wait_connected()
        ack = await ack_of(teacher, "join_lobby", {"credential": credential(sub="t-1", name="Ms T", role="teacher")})
        assert ack["ok"] is True and ack["user"]["auth_level"] == "teacher"
        room = (await ack_of(teacher, "create_room", {"name": "R", "deck": DECK}))["room"]
        assert room["host"] == {"id": "t-1", "username": "Ms T", "auth_level": "teacher", "connected": True}
        assert (await ack_of(sock, "join_room", {"id": room["id"]}))["ok"] is True
