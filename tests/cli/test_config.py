"""RoomServerConfig: the documented defaults, and refusals whose messages say what to do."""

from __future__ import annotations

import dataclasses

import pytest

from roomactors.config import DEFAULT_CLIENT_JS_URL, RoomServerConfig


def test_defaults_are_the_documented_ones() -> None:
    config = RoomServerConfig()
    assert config.host == "127.0.0.1"
    assert config.port == 8000
    assert config.path == "/socket.io/"
    assert config.ping_interval == 25.0
    assert config.ping_timeout == 20.0
    assert config.max_payload == 1_000_000
    assert config.cors_origins is None
    assert config.max_rooms == 10_000
    assert config.max_players == 50
    assert config.shutdown_timeout == 10.0
    assert config.client_js_url == DEFAULT_CLIENT_JS_URL
    assert DEFAULT_CLIENT_JS_URL.startswith("https://cdn.socket.io/4.")
    assert config.client_js_path is None
    assert config.log_level == "info"
    assert config.max_connections == 10_000
    assert config.max_sessions_per_address == 500
    assert config.connect_timeout == 45.0
    assert (config.command_rate, config.command_burst) == (20.0, 40)
    assert (config.flood_limit, config.flood_window) == (50, 10.0)


def test_frozen_and_hashable() -> None:
    config = RoomServerConfig(cors_origins=("https://example.org",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.port = 1  # type: ignore[misc]
    assert hash(config) == hash(RoomServerConfig(cors_origins=("https://example.org",)))


@pytest.mark.parametrize(
    "changes",
    [
        {"port": 0},
        {"port": 65535},
        {"host": "0.0.0.0"},
        {"host": "::"},
        {"path": "/game/"},
        {"ping_interval": 0.5, "ping_timeout": 0.25},
        {"ping_interval": 1, "ping_timeout": 2},
        {"max_payload": 1},
        {"cors_origins": ("*",)},
        {"cors_origins": ("https://example.org", "http://localhost:3000")},
        {"max_rooms": 1, "max_players": 1},
        {"shutdown_timeout": 0},
        {"client_js_url": "/static/socket.io.min.js"},
        {"client_js_url": "http://127.0.0.1:9000/socket.io.js"},
        {"client_js_path": "vendor/socket.io.min.js"},
        {"log_level": "debug"},
        {"max_connections": 0, "max_sessions_per_address": 0, "command_rate": 0, "flood_limit": 0},
        {"max_connections": 1, "max_sessions_per_address": 1, "command_rate": 0.5, "command_burst": 1},
        {"connect_timeout": 0.25, "flood_window": 0.5},
    ],
)
def test_accepts_sensible_values(changes: dict[str, object]) -> None:
    config = RoomServerConfig(**changes)  # type: ignore[arg-type]
    for name, value in changes.items():
        assert getattr(config, name) == value


@pytest.mark.parametrize(
    ("changes", "exc_type", "words"),
    [
        ({"host": ""}, ValueError, "0.0.0.0"),
        ({"port": -1}, ValueError, "between 0 and 65535"),
        ({"port": 65536}, ValueError, "between 0 and 65535"),
        ({"port": "8000"}, TypeError, "whole number"),
        ({"port": True}, TypeError, "whole number"),
        ({"path": "socket.io"}, ValueError, "'/socket.io/'"),
        ({"path": "/socket.io"}, ValueError, "start and end with '/'"),
        ({"path": "/a?b/"}, ValueError, "no '?'"),
        ({"ping_interval": 0}, ValueError, "more than 0"),
        ({"ping_interval": float("nan")}, ValueError, "finite"),
        ({"ping_timeout": float("inf")}, ValueError, "finite"),
        ({"ping_timeout": -1.0}, ValueError, "more than 0"),
        ({"ping_interval": 0.0005}, ValueError, "whole number of milliseconds"),
        ({"ping_interval": "25"}, TypeError, "number of seconds"),
        ({"ping_interval": 2_000_000.0, "ping_timeout": 200_000.0}, ValueError, "JavaScript timers"),
        ({"max_payload": 0}, ValueError, "at least 1"),
        ({"cors_origins": "*"}, TypeError, "('*',)"),
        ({"cors_origins": ["https://example.org"]}, TypeError, "tuple"),
        ({"cors_origins": ()}, ValueError, "use None"),
        ({"cors_origins": ("*", "https://example.org")}, ValueError, "give it alone"),
        ({"cors_origins": ("https://example.org/",)}, ValueError, "no path or trailing slash"),
        ({"cors_origins": ("example.org",)}, ValueError, "scheme://host[:port]"),
        ({"max_rooms": 0}, ValueError, "at least 1"),
        ({"max_players": 0}, ValueError, "besides the host"),
        ({"max_players": 2.5}, TypeError, "whole number"),
        ({"shutdown_timeout": -1}, ValueError, "0 or more"),
        ({"client_js_url": "cdn.socket.io/x.js"}, ValueError, "http(s) URL or a path"),
        ({"client_js_url": ""}, ValueError, "http(s) URL or a path"),
        ({"client_js_path": ""}, ValueError, "socket.io.min.js"),
        ({"log_level": "INFO"}, ValueError, "debug, info, warning, error, critical"),
        ({"log_level": "verbose"}, ValueError, "debug, info, warning, error, critical"),
        ({"max_connections": -1}, ValueError, "0 for no limit"),
        ({"max_sessions_per_address": 1.5}, TypeError, "whole number"),
        ({"connect_timeout": 0}, ValueError, "more than 0"),
        ({"command_rate": -1}, ValueError, "commands per second"),
        ({"command_rate": "fast"}, TypeError, "commands per second"),
        ({"command_burst": 0}, ValueError, "at least 1"),
        ({"flood_limit": -1}, ValueError, "0 to never disconnect"),
        ({"flood_window": float("inf")}, ValueError, "finite"),
    ],
)
def test_refuses_bad_values_saying_what_to_do(
    changes: dict[str, object], exc_type: type[Exception], words: str
) -> None:
    with pytest.raises(exc_type) as info:
        RoomServerConfig(**changes)  # type: ignore[arg-type]
    message = str(info.value)
    assert words in message
    assert next(iter(changes)) in message  # the message names the field
    assert "\n" not in message
