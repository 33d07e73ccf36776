"""The package's public names: everything in __all__ exists and is exported
from the package itself (anyio's check), so the app layer can rely on it."""

from __future__ import annotations

import dataclasses

import pytest

import roomactors.socketio as sio


def test_all_names_exist_and_belong_to_the_package() -> None:
    assert isinstance(sio.__all__, tuple)
    for name in sio.__all__:
        assert hasattr(sio, name), name
    public = {name for name in vars(sio) if not name.startswith("_")}
    modules = {"config", "errors", "packets", "protocol", "session", "sockets", "server", "annotations"}
    assert public - modules == set(sio.__all__)


def test_config_is_frozen_with_node_like_defaults() -> None:
    config = sio.SocketIOConfig()
    assert config.connect_timeout == 45.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.connect_timeout = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="connect_timeout"):
        sio.SocketIOConfig(connect_timeout=0)


def test_connection_refused_carries_message_and_data() -> None:
    exc = sio.ConnectionRefused("no", {"why": 1})
    assert (exc.message, exc.data) == ("no", {"why": 1})
    assert sio.ConnectionRefused("no").data is None


def test_namespace_names_are_checked() -> None:
    server = sio.SocketIOServer()
    with pytest.raises(ValueError):
        server.namespace("lobby")
    server.namespace("/lobby")
