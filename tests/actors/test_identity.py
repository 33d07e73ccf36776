"""Signed identity (race.md, "Identity"): credentials checked with PyJWT, and the
lobby taking the identity from their claims alone; seat tokens kept out of logs."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
import trio
import trio.testing
from actors.helpers import make_deck

from roomactors.actors import (
    IdentityPolicy,
    Lobby,
    MemoryClient,
    ProtocolError,
    RoomLimits,
    User,
    open_lobby,
)

SECRET = "a-school-secret-of-at-least-32-bytes!!"
POLICY = IdentityPolicy(secret=SECRET)


def credential(secret: str = SECRET, algorithm: str = "HS256", **claims: Any) -> str:
    body = {"sub": "u-17", "name": "Mia", "role": "student", "exp": int(time.time()) + 600}
    body.update(claims)
    return jwt.encode({k: v for k, v in body.items() if v is not None}, secret, algorithm=algorithm)


def refusal(policy: IdentityPolicy, token: str) -> str:
    with pytest.raises(ProtocolError) as caught:
        policy.verify(token)
    assert caught.value.code == "unauthenticated"
    return caught.value.message


def test_a_good_credential_gives_the_identity_of_its_claims() -> None:
    assert POLICY.verify(credential()) == User("u-17", "Mia", "student")
    assert POLICY.verify(credential(name=None, role=None)) == User("u-17", None, None)


@pytest.mark.parametrize(
    ("token", "says"),
    [
        (credential(exp=int(time.time()) - 60), "expired"),
        (credential(secret="another-secret-of-at-least-32-bytes!!"), "signature"),
        (credential(exp=None), "no exp claim"),
        (credential(sub=None), "no sub claim"),
        (credential(sub=""), "sub claim"),
        (credential(sub=17), "sub"),
        (credential(sub="x" * 65), "65 characters"),
        (credential(name=["Mia"]), "name claim must be a string"),
        (jwt.encode({"sub": "u", "exp": int(time.time()) + 60}, SECRET * 2, algorithm="HS512"), "HS256"),
        (jwt.encode({"sub": "u", "exp": int(time.time()) + 60}, None, algorithm="none"), "HS256"),
        ("not.a.jwt", "not a valid JWT"),
        ("garbage", "not a valid JWT"),
    ],
)
def test_a_bad_credential_is_refused_saying_what_is_wrong(token: str, says: str) -> None:
    message = refusal(POLICY, token)
    assert says in message
    assert token not in message


def test_open_identity_refuses_credentials() -> None:
    assert "does not use signed identities" in refusal(IdentityPolicy(), credential())


@pytest.fixture
async def signed_lobby(autojump_clock: trio.testing.MockClock) -> AsyncIterator[Lobby]:
    policy = IdentityPolicy(secret=SECRET, teachers_only_create=True)
    async with open_lobby(RoomLimits(command_rate=None, reconnect_grace=30), identity=policy) as lobby:
        yield lobby


async def connected(lobby: Lobby, name: str) -> MemoryClient:
    client = MemoryClient(name)
    await lobby.connect(client)
    return client


def code(ack: dict[str, Any]) -> str:
    assert ack["ok"] is False, ack
    return str(ack["error"]["code"])


async def test_the_signed_lobby_takes_identities_from_credentials(
    signed_lobby: Lobby, autojump_clock: trio.testing.MockClock
) -> None:
    lobby = signed_lobby
    student = await connected(lobby, "s")
    assert code(await lobby.join_lobby(student, "u-17")) == "unauthenticated"  # no credential
    ack = await lobby.command(student, "join_lobby", {"credential": credential(exp=int(time.time()) - 5000)})
    assert code(ack) == "unauthenticated" and "expired" in ack["error"]["message"]
    # the id in the payload is ignored: the claims alone say who this is
    ack = await lobby.command(student, "join_lobby", {"id": "admin", "credential": credential()})
    assert ack == {"ok": True, "user": {"id": "u-17", "username": "Mia", "auth_level": "student"}, "room": None}
    # --teachers-only-create: a student may not create rooms
    ack = await lobby.create_room(student, "Mine", make_deck())
    assert code(ack) == "forbidden" and "teachers" in ack["error"]["message"]

    teacher = await connected(lobby, "t")
    ack = await lobby.create_room(teacher, "R", make_deck(), host={"id": "t-1", "auth_level": "teacher"})
    assert code(ack) == "unauthenticated"  # create_room's host is ignored: sign in first
    teacher_credential = credential(sub="t-1", name="Ms T", role="teacher")
    assert (await lobby.command(teacher, "join_lobby", {"credential": teacher_credential}))["ok"] is True
    room = (await lobby.create_room(teacher, "R", make_deck(), host={"id": "t-1"}))["room"]["id"]
    assert (await lobby.join_room(student, room))["ok"] is True

    # the same signed identity takes its seat over from another connection ...
    tab = await connected(lobby, "s-tab")
    ack = await lobby.command(tab, "join_lobby", {"credential": credential()})
    assert ack["room"] == room and student.detached == "replaced"
    # ... and comes back to it after a drop within the grace
    await lobby.disconnect(tab, dropped=True)
    await trio.sleep(29)
    back = await connected(lobby, "s-back")
    ack = await lobby.command(back, "join_lobby", {"credential": credential()})
    assert ack["ok"] is True and ack["room"] == room and "token" not in ack
    # a connection signed in as one user cannot sign in as another
    ack = await lobby.command(back, "join_lobby", {"credential": teacher_credential})
    assert code(ack) == "identity_mismatch"


async def test_no_token_or_credential_reaches_the_logs(
    caplog: pytest.LogCaptureFixture, autojump_clock: trio.testing.MockClock
) -> None:
    signed = credential()
    with caplog.at_level(logging.DEBUG, logger="roomactors"):
        async with open_lobby(RoomLimits(command_rate=None)) as lobby:
            client = await connected(lobby, "c")
            token = (await lobby.join_lobby(client, "u"))["token"]
            thief = await connected(lobby, "thief")
            await lobby.join_lobby(thief, "u", token="wrong-token-value")
            await lobby.join_lobby(thief, "u", token=token)
            await lobby.disconnect(thief, dropped=True)
            await lobby.command(client, "join_lobby", {"credential": signed})
        async with open_lobby(RoomLimits(command_rate=None), identity=POLICY) as lobby:
            client = await connected(lobby, "c")
            await lobby.command(client, "join_lobby", {"credential": signed})
            await lobby.command(client, "join_lobby", {"credential": signed + "x"})
    assert caplog.records, "the lobby logs at DEBUG: the check means something"
    text = caplog.text
    for secret in (token, "wrong-token-value", signed, SECRET):
        assert secret not in text
    assert "token" not in repr(IdentityPolicy(secret=SECRET)) or SECRET not in repr(IdentityPolicy(secret=SECRET))


def test_the_policy_and_the_config_never_show_the_secret() -> None:
    from roomactors.config import RoomServerConfig

    assert SECRET not in repr(POLICY)
    assert SECRET not in repr(RoomServerConfig(identity_secret=SECRET))
    with pytest.raises(ValueError, match="at least 32 bytes") as caught:
        RoomServerConfig(identity_secret="short")
    assert "short" not in str(caught.value)
