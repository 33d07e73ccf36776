"""The roomserver command line: --help, options, environment variables, precedence, errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from roomactors.cli import OPTIONS, UsageError, load_config, main
from roomactors.config import RoomServerConfig

FLAGS = (
    "--host", "--port", "--path", "--ping-interval", "--ping-timeout", "--max-payload",
    "--cors-origin", "--max-rooms", "--max-players", "--max-connections",
    "--max-sessions-per-address", "--allowed-host", "--forwarded-allow-ips", "--connect-timeout", "--command-rate", "--command-burst",
    "--flood-limit", "--flood-window", "--shutdown-timeout",
    "--client-js-url", "--client-js-path", "--log-level",
    # deployment (tests/ops has their own tests)
    "--certfile", "--keyfile", "--metrics", "--log-format",
    "--eio3",
    "--reconnect-grace", "--identity-secret", "--identity-secret-file", "--teachers-only-create",
    # many nodes on Redis
    "--redis", "--node-id", "--redis-prefix", "--redis-channel", "--node-ttl",
)


@pytest.fixture(autouse=True)
def _no_roomserver_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own ROOMSERVER_* variables must not leak into these tests."""
    for option in OPTIONS:
        monkeypatch.delenv(option.env, raising=False)


def _env_name(flag: str) -> str:
    return "ROOMSERVER_" + flag.removeprefix("--").replace("-", "_").upper()


def test_help_names_every_option_its_default_and_env_var(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: roomserver")
    text = " ".join(out.split())  # argparse wraps lines
    for flag in FLAGS:
        assert flag in text
        assert f"env {_env_name(flag)})" in text
    for default in ("127.0.0.1", "8000", "/socket.io/", "25.0", "20.0", "1000000", "10000",
                    "50", "10.0", "https://cdn.socket.io/4.", "info", "only the server's own origin"):
        assert f"default: {default}" in text
    assert text.count("(default: ") == len(FLAGS)
    assert "command line wins over the environment" in text


def test_every_config_field_has_exactly_one_option() -> None:
    fields = {f.name for f in dataclasses.fields(RoomServerConfig)}
    # the identity secret alone has two: the value, or a file holding it
    assert sorted(option.field for option in OPTIONS) == sorted([*fields, "identity_secret"])
    assert tuple(option.flag for option in OPTIONS) == FLAGS
    assert all(option.env == _env_name(option.flag) for option in OPTIONS)


def test_no_options_no_env_gives_the_defaults() -> None:
    assert load_config([], {}) == RoomServerConfig()


def test_every_option_from_the_command_line(tmp_path: Path) -> None:
    bundle = tmp_path / "socket.io.min.js"
    bundle.write_text("/* client */")
    config = load_config(
        [
            "--host", "0.0.0.0", "--port", "0", "--path", "/game/", "--ping-interval", "5",
            "--ping-timeout", "2.5", "--max-payload", "4096", "--cors-origin", "https://a.example",
            "--cors-origin", "http://localhost:3000", "--max-rooms", "7", "--max-players", "3",
            "--shutdown-timeout", "0", "--client-js-url", "/static/io.js",
            "--client-js-path", str(bundle), "--log-level", "WARNING",
            "--max-connections", "100", "--max-sessions-per-address", "0", "--connect-timeout", "3",
            "--command-rate", "2.5", "--command-burst", "5", "--flood-limit", "0", "--flood-window", "30",
        ],
        {},
    )
    assert config == RoomServerConfig(
        host="0.0.0.0", port=0, path="/game/", ping_interval=5.0, ping_timeout=2.5,
        max_payload=4096, cors_origins=("https://a.example", "http://localhost:3000"),
        max_rooms=7, max_players=3, shutdown_timeout=0.0, client_js_url="/static/io.js",
        client_js_path=str(bundle), log_level="warning", max_connections=100,
        max_sessions_per_address=0, connect_timeout=3.0, command_rate=2.5, command_burst=5,
        flood_limit=0, flood_window=30.0,
    )


def test_every_option_from_the_environment(tmp_path: Path) -> None:
    bundle = tmp_path / "socket.io.min.js"
    bundle.write_text("/* client */")
    environ = {
        "ROOMSERVER_HOST": "::1", "ROOMSERVER_PORT": " 9000 ", "ROOMSERVER_PATH": "/io/",
        "ROOMSERVER_PING_INTERVAL": "1.5", "ROOMSERVER_PING_TIMEOUT": "3",
        "ROOMSERVER_MAX_PAYLOAD": "100", "ROOMSERVER_CORS_ORIGIN": "https://a.example, https://b.example",
        "ROOMSERVER_MAX_ROOMS": "2", "ROOMSERVER_MAX_PLAYERS": "4",
        "ROOMSERVER_SHUTDOWN_TIMEOUT": "0.5", "ROOMSERVER_CLIENT_JS_URL": "https://cdn.example/io.js",
        "ROOMSERVER_CLIENT_JS_PATH": str(bundle), "ROOMSERVER_LOG_LEVEL": "debug",
        "ROOMSERVER_MAX_CONNECTIONS": "0", "ROOMSERVER_MAX_SESSIONS_PER_ADDRESS": "8",
        "ROOMSERVER_CONNECT_TIMEOUT": "0.5", "ROOMSERVER_COMMAND_RATE": "0",
        "ROOMSERVER_COMMAND_BURST": "1", "ROOMSERVER_FLOOD_LIMIT": "3", "ROOMSERVER_FLOOD_WINDOW": "1.5",
    }
    config = load_config([], environ)
    assert config == RoomServerConfig(
        host="::1", port=9000, path="/io/", ping_interval=1.5, ping_timeout=3.0, max_payload=100,
        cors_origins=("https://a.example", "https://b.example"), max_rooms=2, max_players=4,
        shutdown_timeout=0.5, client_js_url="https://cdn.example/io.js",
        client_js_path=str(bundle), log_level="debug", max_connections=0, max_sessions_per_address=8,
        connect_timeout=0.5, command_rate=0.0, command_burst=1, flood_limit=3, flood_window=1.5,
    )


def test_the_command_line_wins_over_the_environment() -> None:
    environ = {"ROOMSERVER_PORT": "9000", "ROOMSERVER_HOST": "0.0.0.0",
               "ROOMSERVER_CORS_ORIGIN": "https://env.example,https://env2.example"}
    config = load_config(["--port", "9001", "--cors-origin", "https://cli.example"], environ)
    assert config.port == 9001
    assert config.host == "0.0.0.0"  # not on the command line: the environment's
    assert config.cors_origins == ("https://cli.example",)  # replaced, not merged


def test_main_reads_os_environ(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ROOMSERVER_MAX_PLAYERS", "0")
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("roomserver: error: ROOMSERVER_MAX_PLAYERS='0': max_players must be at least 1")


def test_empty_env_var_counts_as_unset() -> None:
    assert load_config([], {"ROOMSERVER_PORT": "", "ROOMSERVER_CORS_ORIGIN": "  "}) == RoomServerConfig()


def test_star_origin_from_env_and_cli() -> None:
    assert load_config(["--cors-origin", "*"], {}).cors_origins == ("*",)
    assert load_config([], {"ROOMSERVER_CORS_ORIGIN": "*"}).cors_origins == ("*",)


def test_a_repeated_single_option_keeps_the_last() -> None:
    assert load_config(["--port", "1", "--port", "2"], {}).port == 2


@pytest.mark.parametrize(
    ("argv", "start"),
    [
        (["--port", "x"], "--port 'x': must be a whole number"),
        (["--port", "70000"], "--port '70000': port must be between 0 and 65535"),
        (["--port", "8000.5"], "--port '8000.5': must be a whole number"),
        (["--ping-interval", "soon"], "--ping-interval 'soon': must be a number of seconds"),
        (["--ping-timeout", "-1"], "--ping-timeout '-1': ping_timeout must be a finite number"),
        (["--path", "socket.io"], "--path 'socket.io': path must start and end with '/'"),
        (["--cors-origin", "*", "--cors-origin", "https://a.example"], "--cors-origin '*' --cors-origin"),
        (["--cors-origin", "https://a.example/"], "--cors-origin 'https://a.example/': each of cors_origins"),
        (["--cors-origin", ","], "--cors-origin ',': must name at least one origin"),
        (["--log-level", "loud"], "--log-level 'loud': must be one of debug, info"),
        (["--client-js-path", "/nonexistent/socket.io.min.js"], "--client-js-path '/nonexistent/socket.io.min.js': no such file"),
        (["--max-rooms", "0"], "--max-rooms '0': max_rooms must be at least 1"),
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--port"], "argument --port: expected one argument"),
        (["extra"], "unrecognized arguments: extra"),
        (["--ping-interval", "2000000", "--ping-timeout", "200000"], "ping_interval + ping_timeout"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    argv: list[str], start: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("roomserver: error: " + start)
    assert captured.err.endswith("(see roomserver --help)\n")


@pytest.mark.parametrize(
    ("env", "value", "start"),
    [
        ("ROOMSERVER_PORT", "eighty", "ROOMSERVER_PORT='eighty': must be a whole number"),
        ("ROOMSERVER_PORT", "-5", "ROOMSERVER_PORT='-5': port must be between 0 and 65535"),
        ("ROOMSERVER_PING_INTERVAL", "nan", "ROOMSERVER_PING_INTERVAL='nan': ping_interval must be a finite"),
        ("ROOMSERVER_MAX_PAYLOAD", "1e6", "ROOMSERVER_MAX_PAYLOAD='1e6': must be a whole number"),
        ("ROOMSERVER_CORS_ORIGIN", "example.org", "ROOMSERVER_CORS_ORIGIN='example.org': each of cors_origins"),
        ("ROOMSERVER_CORS_ORIGIN", "*,https://a.example", "ROOMSERVER_CORS_ORIGIN='*,https://a.example': cors_origins: '*'"),
        ("ROOMSERVER_LOG_LEVEL", "chatty", "ROOMSERVER_LOG_LEVEL='chatty': must be one of"),
        ("ROOMSERVER_SHUTDOWN_TIMEOUT", "-1", "ROOMSERVER_SHUTDOWN_TIMEOUT='-1': shutdown_timeout"),
        ("ROOMSERVER_CLIENT_JS_URL", "socket.io.js", "ROOMSERVER_CLIENT_JS_URL='socket.io.js': client_js_url"),
    ],
)
def test_bad_env_values_exit_2_with_one_line(
    env: str, value: str, start: str,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(env, value)
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("roomserver: error: " + start)


def test_a_good_command_line_value_hides_a_bad_env_value() -> None:
    assert load_config(["--port", "1"], {"ROOMSERVER_PORT": "bad"}).port == 1


def test_load_config_raises_usage_error() -> None:
    with pytest.raises(UsageError, match="ROOMSERVER_MAX_ROOMS='many'"):
        load_config([], {"ROOMSERVER_MAX_ROOMS": "many"})


# --allowed-host and --forwarded-allow-ips (issue 10 finding 8, issue 15) ------


def test_allowed_hosts_and_forwarded_ips_repeat_on_the_command_line_and_split_in_the_environment() -> None:
    config = load_config(
        ["--allowed-host", "school.example", "--allowed-host", ".games.example",
         "--forwarded-allow-ips", "127.0.0.1,10.0.0.0/8", "--forwarded-allow-ips", "::1"],
        {},
    )
    assert config.allowed_hosts == ("school.example", ".games.example")
    assert config.forwarded_allow_ips == ("127.0.0.1", "10.0.0.0/8", "::1")
    config = load_config(
        [], {"ROOMSERVER_ALLOWED_HOST": "a.example, b.example", "ROOMSERVER_FORWARDED_ALLOW_IPS": "*"}
    )
    assert config.allowed_hosts == ("a.example", "b.example")
    assert config.forwarded_allow_ips == ("*",)
    assert RoomServerConfig().allowed_hosts == () and RoomServerConfig().forwarded_allow_ips == ()


@pytest.mark.parametrize(
    ("argv", "start"),
    [
        (["--allowed-host", "https://school.example"], "--allowed-host 'https://school.example': each of allowed_hosts"),
        (["--allowed-host", "*", "--allowed-host", "a.example"], "--allowed-host '*' --allowed-host 'a.example': allowed_hosts: '*'"),
        (["--forwarded-allow-ips", "proxy.lan"], "--forwarded-allow-ips 'proxy.lan': forwarded_allow_ips: 'proxy.lan' is not an IP address"),
        (["--forwarded-allow-ips", ","], "--forwarded-allow-ips ',': must name at least one"),
    ],
)
def test_bad_hosts_and_proxies_exit_2_with_one_line(
    argv: list[str], start: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("roomserver: error: " + start), err


def test_eio3_is_a_switch_on_by_default() -> None:
    assert load_config([], {}).eio3 is True
    assert load_config(["--no-eio3"], {}).eio3 is False
    assert load_config(["--no-eio3", "--eio3"], {}).eio3 is True  # the last one wins
    for word, value in (("0", False), ("off", False), ("No", False), ("1", True), ("true", True), ("on", True)):
        assert load_config([], {"ROOMSERVER_EIO3": word}).eio3 is value
    assert load_config(["--eio3"], {"ROOMSERVER_EIO3": "off"}).eio3 is True  # the command line wins
    with pytest.raises(UsageError, match="ROOMSERVER_EIO3='maybe': must be one of 1, true, yes, on"):
        load_config([], {"ROOMSERVER_EIO3": "maybe"})
    with pytest.raises(UsageError):
        load_config(["--eio3=yes"], {})
