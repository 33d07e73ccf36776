"""``roomserver``: the command line that configures logging and runs the server.

This is the only module that reads the environment, configures logging or
installs signal handlers; the library below it does none of that, so embedders
keep control of their process. Every option can also come from an environment
variable (``ROOMSERVER_<OPTION>``) because container platforms configure that way;
the command line wins over the environment, and the environment over the
defaults of :class:`~roomactors.config.RoomServerConfig`.

Exit codes: 0 after a graceful shutdown, 1 when the server failed or its shutdown
overran, 2 for bad options, 128 + signal number when a second signal cut the
shutdown short.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import logging
import os
import signal
import sys
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol, cast

import trio

from roomactors.config import LOG_FORMATS, LOG_LEVELS, RoomServerConfig

__all__ = (
    "OPTIONS",
    "CliOption",
    "UsageError",
    "build_parser",
    "load_config",
    "main",
    "run_until_signal",
)

logger = logging.getLogger(__name__)

PROG = "roomserver"

SHUTDOWN_GRACE = 2.0

#: The cyclic garbage collector's first threshold while roomserver runs (Python's
#: default is 700 allocations). Every connection keeps a few hundred long-lived
#: objects, and at 700 the collector ran so often that it took about 45% of the
#: server's CPU while 10,000 clients connected (bench/, "connections"). A process
#: setting, so the command sets it, not the library; embedders may do the same.
GC_THRESHOLD = 50_000
"""Seconds we wait beyond ``shutdown_timeout`` before giving up on a shutdown
that does not keep its promise, so a stuck server still exits (with code 1)."""


class UsageError(ValueError):
    """A bad option or environment value; ``main`` prints it as one line and exits 2."""


class _HelpShown(Exception):
    """argparse finished on its own (``--help``); carries the exit status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _ServerStopped(RuntimeError):
    """The server's serve function returned although nobody asked it to stop."""


class RunningServer(Protocol):
    """What the CLI needs of the object ``serve_roomserver`` reports as started."""

    @property
    def url(self) -> str: ...

    async def shutdown(self, reason: str = "shutdown") -> None: ...


ServeFunction = Callable[..., Awaitable[object]]
"""``serve_roomserver``'s shape: ``(config, *, task_status) -> None``."""


# --- options -------------------------------------------------------------------


def _parse_str(raw: str) -> str:
    return raw.strip()


def _parse_int(raw: str) -> int:
    try:
        return int(raw.strip(), 10)
    except ValueError:
        raise ValueError("must be a whole number") from None


def _parse_float(raw: str) -> float:
    try:
        return float(raw.strip())
    except ValueError:
        raise ValueError("must be a number of seconds, e.g. 10 or 2.5") from None


def _parse_rate(raw: str) -> float:
    try:
        return float(raw.strip())
    except ValueError:
        raise ValueError("must be a number of commands per second, e.g. 20 or 0.5") from None


def _parse_origins(raw: str) -> tuple[str, ...]:
    """Origins never contain commas, so a comma always separates two of them."""
    origins = tuple(part.strip() for part in raw.split(",") if part.strip())
    if not origins:
        raise ValueError("must name at least one origin, or '*' for every origin")
    return origins


def _parse_list(raw: str) -> tuple[str, ...]:
    """Host names and addresses never contain commas: a comma separates two."""
    items = tuple(part.strip() for part in raw.split(",") if part.strip())
    if not items:
        raise ValueError("must name at least one, or '*' for any")
    return items


def _parse_log_level(raw: str) -> str:
    level = raw.strip().lower()
    if level not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
    return level


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _parse_bool(raw: str) -> bool:
    word = raw.strip().lower()
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    raise ValueError(f"must be one of {', '.join(_TRUE)} (on) or {', '.join(_FALSE)} (off)")


def _parse_secret(raw: str) -> str:
    """A secret as given: only a line ending at its end is not part of it."""
    secret = raw.rstrip("\r\n")
    if not secret:
        raise ValueError("must not be empty")
    return secret


def _read_secret_file(raw: str) -> str:
    """The secret held by a file (its trailing newline is not part of it)."""
    path = raw.strip()
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except OSError as exc:
        raise ValueError(f"cannot read it ({exc.strerror or exc}); give the path of a file holding the secret") from None
    except UnicodeDecodeError:
        raise ValueError("the file is not UTF-8 text; write the secret as text") from None
    secret = text.rstrip("\r\n")
    if not secret:
        raise ValueError("the file is empty; write the secret in it")
    return secret


def _parse_existing_file(raw: str) -> str:
    """Checked here, not in the config, so that the server refuses to start at once."""
    path = raw.strip()
    if not os.path.isfile(path):
        raise ValueError("no such file; give the path of a socket.io.min.js bundle")
    if not os.access(path, os.R_OK):
        raise ValueError("the file is not readable by this user")
    return path


def _parse_tls_file(raw: str) -> str:
    path = raw.strip()
    if not os.path.isfile(path):
        raise ValueError("no such file; give the path of a PEM file")
    if not os.access(path, os.R_OK):
        raise ValueError("the file is not readable by this user")
    return path


def _parse_log_format(raw: str) -> str:
    word = raw.strip().lower()
    if word not in LOG_FORMATS:
        raise ValueError(f"must be one of {', '.join(LOG_FORMATS)}")
    return word


def _check_deployment(config: RoomServerConfig) -> None:
    """What can only be checked by trying: the TLS files load, the metrics library is there."""
    if config.keyfile is not None and config.certfile is None:
        raise UsageError("--keyfile needs --certfile: give the certificate too")
    if config.certfile is not None:
        from roomactors.tls import server_ssl_context

        try:
            server_ssl_context(config.certfile, config.keyfile)
        except ValueError as exc:
            raise UsageError(f"--certfile/--keyfile: {exc}") from None
    if config.metrics:
        try:
            import prometheus_client  # noqa: F401
        except ImportError:
            raise UsageError(
                "--metrics needs the prometheus-client package: pip install 'roomactors[metrics]'"
            ) from None


@dataclass(frozen=True)
class CliOption:
    """One option: its flag, its environment variable and the config field it sets."""

    field: str
    flag: str
    env: str
    parse: Callable[[str], object]
    metavar: str
    help: str
    default_text: str | None = None  # when the field's default needs words, not a value
    repeatable: bool = False  # the flag may be given again; the env var takes a comma-separated list
    dest: str | None = None  # when two options set one field (a value, or a file holding it)
    secret: bool = False  # never echo the value (nor what was given) in an error

    @property
    def key(self) -> str:
        """The option's name in the parsed arguments."""
        return self.dest or self.field


OPTIONS: tuple[CliOption, ...] = (
    CliOption("host", "--host", "ROOMSERVER_HOST", _parse_str, "ADDR",
              "address to listen on; 0.0.0.0 accepts clients from other machines"),
    CliOption("port", "--port", "ROOMSERVER_PORT", _parse_int, "PORT",
              "TCP port to listen on; 0 picks a free one"),
    CliOption("path", "--path", "ROOMSERVER_PATH", _parse_str, "PATH",
              "URL path of the Socket.IO endpoint, with leading and trailing '/'"),
    CliOption("ping_interval", "--ping-interval", "ROOMSERVER_PING_INTERVAL", _parse_float,
              "SECONDS", "seconds between heartbeat pings"),
    CliOption("ping_timeout", "--ping-timeout", "ROOMSERVER_PING_TIMEOUT", _parse_float,
              "SECONDS", "seconds a client has to answer a ping"),
    CliOption("max_payload", "--max-payload", "ROOMSERVER_MAX_PAYLOAD", _parse_int, "BYTES",
              "largest HTTP POST body or WebSocket message, in bytes"),
    CliOption("cors_origins", "--cors-origin", "ROOMSERVER_CORS_ORIGIN", _parse_origins, "ORIGIN",
              "an origin (scheme://host[:port]) whose pages may connect; repeat it for "
              "several (the env var takes them comma-separated); '*' allows every origin",
              default_text="only the server's own origin", repeatable=True),
    CliOption("max_rooms", "--max-rooms", "ROOMSERVER_MAX_ROOMS", _parse_int, "N",
              "rooms that may exist at once"),
    CliOption("max_players", "--max-players", "ROOMSERVER_MAX_PLAYERS", _parse_int, "N",
              "players per room besides the host"),
    CliOption("max_connections", "--max-connections", "ROOMSERVER_MAX_CONNECTIONS", _parse_int, "N",
              "connections open at once; more are refused with HTTP 503; 0: no limit"),
    CliOption("max_sessions_per_address", "--max-sessions-per-address",
              "ROOMSERVER_MAX_SESSIONS_PER_ADDRESS", _parse_int, "N",
              "connections open at once from one IP address (behind a reverse proxy, name it "
              "with --forwarded-allow-ips so that clients are counted, not the proxy)"),
    CliOption("allowed_hosts", "--allowed-host", "ROOMSERVER_ALLOWED_HOST", _parse_list, "NAME",
              "a host name clients may reach the server by (requests for other hosts get HTTP "
              "400: DNS rebinding); repeat it for several (the env var takes them "
              "comma-separated); '.example.org' allows its subdomains too; '*' any host",
              default_text="any IP address, localhost and this machine's names", repeatable=True),
    CliOption("forwarded_allow_ips", "--forwarded-allow-ips", "ROOMSERVER_FORWARDED_ALLOW_IPS",
              _parse_list, "ADDR",
              "a reverse proxy (IP address or network) whose X-Forwarded-For/-Proto/-Host and "
              "Forwarded headers are believed; repeat it or separate them with commas; '*' "
              "trusts any peer",
              default_text="none, forwarded headers are ignored", repeatable=True),
    CliOption("connect_timeout", "--connect-timeout", "ROOMSERVER_CONNECT_TIMEOUT", _parse_float,
              "SECONDS", "seconds a connection may stay without joining a namespace"),
    CliOption("command_rate", "--command-rate", "ROOMSERVER_COMMAND_RATE", _parse_rate, "N",
              "commands per second one client may send on average, else rate_limited; "
              "0: no limit"),
    CliOption("command_burst", "--command-burst", "ROOMSERVER_COMMAND_BURST", _parse_int, "N",
              "commands one client may send at once before rate_limited"),
    CliOption("flood_limit", "--flood-limit", "ROOMSERVER_FLOOD_LIMIT", _parse_int, "N",
              "rate_limited answers per --flood-window after which the client is "
              "disconnected; 0: never"),
    CliOption("flood_window", "--flood-window", "ROOMSERVER_FLOOD_WINDOW", _parse_float, "SECONDS",
              "seconds over which --flood-limit counts"),
    CliOption("shutdown_timeout", "--shutdown-timeout", "ROOMSERVER_SHUTDOWN_TIMEOUT",
              _parse_float, "SECONDS", "seconds a graceful shutdown may take"),
    CliOption("client_js_url", "--client-js-url", "ROOMSERVER_CLIENT_JS_URL", _parse_str, "URL",
              "where the lobby page loads socket.io-client from"),
    CliOption("client_js_path", "--client-js-path", "ROOMSERVER_CLIENT_JS_PATH",
              _parse_existing_file, "FILE",
              "a local socket.io-client bundle to serve instead of --client-js-url",
              default_text="none, browsers load --client-js-url"),
    CliOption("log_level", "--log-level", "ROOMSERVER_LOG_LEVEL", _parse_log_level, "LEVEL",
              f"one of {', '.join(LOG_LEVELS)}"),
    # -- deployment: TLS of its own, metrics, log format (docs/deployment.md) --
    CliOption("certfile", "--certfile", "ROOMSERVER_CERTFILE", _parse_tls_file, "FILE",
              "PEM certificate (chain after it) to serve https and wss with",
              default_text="none, plain HTTP"),
    CliOption("keyfile", "--keyfile", "ROOMSERVER_KEYFILE", _parse_tls_file, "FILE",
              "PEM private key of --certfile, unencrypted",
              default_text="none, the key is in --certfile"),
    CliOption("metrics", "--metrics", "ROOMSERVER_METRICS", _parse_bool, "",
              "serve Prometheus metrics at /metrics (needs pip install 'roomactors[metrics]'); "
              "--no-metrics turns them off (env: 1/0, true/false, yes/no, on/off)",
              default_text="off"),
    CliOption("log_format", "--log-format", "ROOMSERVER_LOG_FORMAT", _parse_log_format, "FORMAT",
              "text, or json: one JSON object a line"),
    # -- Engine.IO v3 (issue 14): a switch, --eio3 / --no-eio3
    CliOption("eio3", "--eio3", "ROOMSERVER_EIO3", _parse_bool, "",
              "serve socket.io-client 1.x/2.x (Engine.IO v3) in the room protocol's legacy "
              "mode; --no-eio3 refuses them (env: 1/0, true/false, yes/no, on/off)",
              default_text="on"),
    # -- seats and identity (issue 12)
    CliOption("reconnect_grace", "--reconnect-grace", "ROOMSERVER_RECONNECT_GRACE", _parse_float, "SECONDS",
              "seconds a user whose connection dropped keeps their place (lobby, room, host seat, race) "
              "to come back to; 0: a drop leaves at once"),
    CliOption("identity_secret", "--identity-secret", "ROOMSERVER_IDENTITY_SECRET", _parse_secret, "SECRET",
              "turn on signed identity: the HS256 secret (at least 32 bytes) shared with the school's site "
              "that signs join_lobby credentials; prefer --identity-secret-file or the env var, which "
              "other users of the machine cannot read in the process list",
              default_text="none: open identity with seat tokens", secret=True),
    CliOption("identity_secret", "--identity-secret-file", "ROOMSERVER_IDENTITY_SECRET_FILE", _read_secret_file,
              "FILE", "a file holding the identity secret (a trailing newline is not part of it)",
              default_text="none", dest="identity_secret_file", secret=True),
    CliOption("teachers_only_create", "--teachers-only-create", "ROOMSERVER_TEACHERS_ONLY_CREATE", _parse_bool, "",
              "only users whose role is teacher or admin may create rooms (forbidden otherwise); "
              "meaningful with --identity-secret (env: 1/0, true/false, yes/no, on/off)",
              default_text="off"),
    # --- many nodes on Redis (docs/cluster.md) ---
    CliOption("redis_url", "--redis", "ROOMSERVER_REDIS", _parse_str, "URL",
              "redis://HOST:PORT/DB of the Redis that joins several nodes into one server",
              default_text="none, one node in memory"),
    CliOption("node_id", "--node-id", "ROOMSERVER_NODE_ID", _parse_str, "NAME",
              "this node's unique name in the cluster", default_text="host name and process id"),
    CliOption("redis_prefix", "--redis-prefix", "ROOMSERVER_REDIS_PREFIX", _parse_str, "PREFIX",
              "prefix of every Redis key the nodes write"),
    CliOption("redis_channel", "--redis-channel", "ROOMSERVER_REDIS_CHANNEL", _parse_str, "CHANNEL",
              "python-socketio's Redis channel, on which Python programs emit to our clients"),
    CliOption("node_ttl", "--node-ttl", "ROOMSERVER_NODE_TTL", _parse_float, "SECONDS",
              "seconds after which a node that stopped refreshing counts as dead"),
)

_EPILOG = """\
Every option can also be set through its environment variable; an option given on
the command line wins over the environment. An empty environment variable counts
as unset. docs/limits.md says what a client sees when it hits each limit.

Exit status: 0 after a graceful shutdown (SIGINT or SIGTERM), 1 when the server
failed or its shutdown overran --shutdown-timeout, 2 for a bad option, 128 + the
signal number when a second signal cut the shutdown short."""


class _ArgumentParser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so ``main`` returns its exit code."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            sys.stderr.write(message)
        raise _HelpShown(status)


def _default_text(option: CliOption) -> str:
    if option.default_text is not None:
        return option.default_text
    defaults = {f.name: f.default for f in dataclasses.fields(RoomServerConfig)}
    return str(defaults[option.field])


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; every default is read from :class:`RoomServerConfig`."""
    parser = _ArgumentParser(
        prog=PROG,
        description="The roomactors lobby and game-room server (Socket.IO v5 on trio).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for option in OPTIONS:
        help_text = f"{option.help} (default: {_default_text(option)}; env {option.env})"
        if option.parse is _parse_bool:  # a switch: --name / --no-name
            parser.add_argument(
                option.flag, dest=option.field, action=argparse.BooleanOptionalAction, default=None,
                help=help_text.replace("%", "%%"),
            )
            continue
        parser.add_argument(
            option.flag,
            dest=option.key,
            metavar=option.metavar,
            action="append" if option.repeatable else "store",
            default=None,
            help=help_text.replace("%", "%%"),
        )
    return parser


def load_config(argv: Sequence[str], environ: Mapping[str, str]) -> RoomServerConfig:
    """The configuration that ``argv`` and ``environ`` describe, or :class:`UsageError`.

    Each value is checked on its own first, so the error names where the bad value
    came from (``--port 'x'`` or ``ROOMSERVER_PORT='x'``); the whole record is
    checked last for rules that span fields.
    """
    namespace = build_parser().parse_args(list(argv))
    values: dict[str, Any] = {}
    sources: dict[str, tuple[bool, str]] = {}  # field -> (from the command line, where)
    for option in OPTIONS:
        given = getattr(namespace, option.key)
        if given is not None:
            from_cli = True
            raws = given if isinstance(given, list) else [given]
            if not option.repeatable:
                raws = raws[-1:]  # a repeated single-valued option: the last one wins
            where = " ".join(f"{option.flag} {_shown(option, raw)}" for raw in raws)
            if isinstance(given, bool):  # a switch: no value to parse
                values[option.field] = given
                continue
        elif environ.get(option.env, "").strip():
            from_cli = False
            raws = [environ[option.env]]
            where = f"{option.env}={_shown(option, raws[0])}"
        else:
            continue
        earlier = sources.get(option.field)
        if earlier is not None:
            if earlier[0] and not from_cli:
                continue  # the command line wins over the environment
            if earlier[0] == from_cli:
                raise UsageError(f"{earlier[1]} and {where} set the same thing; give only one of them")
        try:
            if option.repeatable:
                value: Any = tuple(item for raw in raws for item in cast("tuple[str, ...]", option.parse(raw)))
            else:
                value = option.parse(raws[0])
            RoomServerConfig(**{option.field: value})
        except (ValueError, TypeError) as exc:
            raise UsageError(f"{where}: {exc}") from None
        values[option.field] = value
        sources[option.field] = (from_cli, where)
    try:
        config = RoomServerConfig(**values)
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    _check_deployment(config)
    return config


def _shown(option: CliOption, raw: str) -> str:
    """How an error names a given value: never a secret's."""
    if option.secret and option.dest is None:
        return "(secret not shown)"
    return repr(raw)


# --- running -------------------------------------------------------------------


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


SignalStream = trio.MemoryReceiveChannel[int]
"""Signal numbers as they arrive. trio lets only one task iterate a signal receiver,
so one task forwards them here, where whichever task waits now takes the next one."""


async def _forward_signals(signals: AsyncIterator[int], send: trio.MemorySendChannel[int]) -> None:
    async for signum in signals:
        await send.send(signum)


async def _next_signal(signals: SignalStream) -> int:
    return await signals.receive()


async def _serve_or_fail(
    serve: ServeFunction,
    config: RoomServerConfig,
    stopping: trio.Event,
    *,
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
) -> None:
    await serve(config, task_status=task_status)
    if not stopping.is_set():
        raise _ServerStopped("the server stopped although no shutdown was asked for")


async def _cancel_on_signal(signals: SignalStream, watch: trio.CancelScope, target: trio.CancelScope) -> None:
    with watch:
        signum = await _next_signal(signals)
        logger.info("%s before the server was ready: stopping", _signal_name(signum))
        target.cancel()


async def _shut_down(server: RunningServer, signals: SignalStream, timeout: float) -> int:
    """Graceful shutdown, cut short by the next signal or by an overrun; the exit code."""
    exit_code = 0
    async with trio.open_nursery() as race:

        async def graceful() -> None:
            nonlocal exit_code
            with trio.move_on_after(timeout + SHUTDOWN_GRACE) as deadline:
                await server.shutdown(reason="shutdown")
            if deadline.cancelled_caught:
                logger.error("shutdown overran %.1f s; exiting anyway", timeout)
                exit_code = 1
            race.cancel_scope.cancel()

        async def hurry() -> None:
            nonlocal exit_code
            signum = await _next_signal(signals)
            logger.warning("%s again: exiting at once", _signal_name(signum))
            exit_code = 128 + signum
            race.cancel_scope.cancel()

        race.start_soon(graceful)
        race.start_soon(hurry)
    return exit_code


def _load_serve() -> ServeFunction:
    """Imported late: the CLI's options and help must work without the server's stack."""
    from roomactors.server import serve_roomserver

    return serve_roomserver


async def run_until_signal(config: RoomServerConfig, *, serve: ServeFunction | None = None) -> int:
    """Run the server until SIGINT or SIGTERM, shut it down gracefully; the exit code.

    ``serve`` defaults to :func:`roomactors.server.serve_roomserver`; tests pass a
    stand-in. A second signal during the shutdown cancels everything at once.
    """
    if serve is None:
        serve = _load_serve()
    stopping = trio.Event()
    exit_code = 0  # also when a signal stopped the start: nothing needed shutting down
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as receiver:
        async with trio.open_nursery() as nursery:
            send, signals = trio.open_memory_channel[int](16)
            nursery.start_soon(_forward_signals, receiver, send)
            # A signal while the server starts has nothing to shut down gracefully:
            # it just cancels the start (a start that hangs must stay interruptible).
            startup_watch = trio.CancelScope()
            nursery.start_soon(_cancel_on_signal, signals, startup_watch, nursery.cancel_scope)
            server: RunningServer = await nursery.start(_serve_or_fail, serve, config, stopping)
            startup_watch.cancel()
            logger.info("roomserver listening: clients connect to %s", server.url)
            logger.info("%s", client_js_notice(config))
            signum = await _next_signal(signals)
            logger.info(
                "%s: shutting down gracefully (send it again to exit at once)",
                _signal_name(signum),
            )
            stopping.set()
            exit_code = await _shut_down(server, signals, config.shutdown_timeout)
            nursery.cancel_scope.cancel()
    logger.info("roomserver stopped")
    return exit_code


def client_js_notice(config: RoomServerConfig) -> str:
    """Where the lobby page gets socket.io-client, said at start-up: on a machine
    without internet the default CDN is out of reach, and the page can only say
    "ask whoever runs the server"; this line tells that person what to do."""
    if config.client_js_path is not None:
        return (
            f"the lobby page loads socket.io-client from this server "
            f"(/static/socket.io.min.js, the file {config.client_js_path}); it works without internet"
        )
    if config.client_js_url.startswith("/"):
        return f"the lobby page loads socket.io-client from {config.client_js_url} (on this server)"
    return (
        f"the lobby page loads socket.io-client from {config.client_js_url}; browsers without internet "
        "cannot reach it: download that file once and start with --client-js-path FILE to serve it locally"
    )


def _configure_logging(level: str, log_format: str = "text") -> None:
    """Log lines to stderr; a process that configured logging already keeps its handlers."""
    numeric = getattr(logging, level.upper())
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        from roomactors.logformat import JsonLogFormatter

        handler.setFormatter(JsonLogFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=numeric, handlers=[handler])


def _leaves(exc: BaseException) -> Iterable[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


def main(argv: list[str] | None = None) -> int:
    """Parse options, configure logging, run the server; the process's exit code."""
    args = sys.argv[1:] if argv is None else argv
    try:
        config = load_config(args, os.environ)
    except _HelpShown as shown:
        return shown.status
    except UsageError as exc:
        line = " ".join(str(exc).split())
        print(f"{PROG}: error: {line} (see {PROG} --help)", file=sys.stderr)
        return 2
    _configure_logging(config.log_level, config.log_format)
    previous_gc = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, *previous_gc[1:])
    try:
        return trio.run(run_until_signal, config)
    except BaseException as exc:
        leaves = list(_leaves(exc))
        if leaves and all(isinstance(leaf, KeyboardInterrupt) for leaf in leaves):
            return 128 + signal.SIGINT  # Ctrl-C before the signal handlers were in place
        if not isinstance(exc, Exception):
            raise
        if len(leaves) == 1 and isinstance(leaves[0], OSError):
            logger.critical("cannot serve on %s:%d: %s", config.host, config.port, leaves[0])
        else:
            logger.critical("roomserver failed: %s", exc, exc_info=exc)
        return 1
    finally:
        gc.set_threshold(*previous_gc)  # main() may run inside another program (tests)


if __name__ == "__main__":
    sys.exit(main())
