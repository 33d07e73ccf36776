"""The public surface of roomactors.engineio."""

import dataclasses

import pytest

import roomactors.engineio as engineio_pkg
from roomactors.engineio import EngineIOConfig, EngineIOServer


def test_all_is_complete_and_importable() -> None:
    public = {name for name in dir(engineio_pkg) if not name.startswith("_")}
    modules = {"coalesce", "config", "engine_socket", "errors", "forwarded", "hosts", "http", "httpmessages", "inbox", "outbox", "packets", "packets_v3", "protocol", "routing", "server", "websocket", "wsconnection", "wsframes", "wshandshake"}
    assert set(engineio_pkg.__all__) == public - modules
    for name in engineio_pkg.__all__:
        assert getattr(engineio_pkg, name) is not None


def test_config_defaults_match_the_reference() -> None:
    config = EngineIOConfig()
    assert (config.path, config.ping_interval, config.ping_timeout, config.max_payload) == ("/socket.io/", 25.0, 20.0, 1_000_000)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.path = "/x/"  # type: ignore[misc]


def test_statistics_is_a_frozen_record() -> None:
    async def handler(sock: object) -> None: ...

    stats = EngineIOServer(handler).statistics()
    assert (stats.sessions, stats.http_connections, stats.sessions_opened) == (0, 0, 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.sessions = 1  # type: ignore[misc]
