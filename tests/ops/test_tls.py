"""TLS of the server's own: https and wss to real clients, and bad files refused.

The server runs in the test's loop (``serve_roomserver``) with a certificate the
test made (``support.certs``); python-socketio and socket.io-client connect over
``https``, on long-polling and on WebSocket, and play the lobby's opening moves.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from support.clientapi import wait_websocket
from support.certs import TestCertificates, tls_options
from support.clients import client_params, open_clients

from roomactors.cli import main
from roomactors.config import RoomServerConfig
from roomactors.server import RoomServer, serve_roomserver
from roomactors.tls import TLSFileError, server_ssl_context

DECK = {"name": "Week 3", "flashcards": [{"id": 1, "problem": "1/2+1/4", "answer": "3/4"}]}


@pytest.fixture
async def tls_server(nursery: trio.Nursery, certificates: TestCertificates) -> AsyncIterator[RoomServer]:
    config = RoomServerConfig(
        port=0, shutdown_timeout=5, certfile=str(certificates.cert), keyfile=str(certificates.key)
    )
    yield await nursery.start(serve_roomserver, config)
    nursery.cancel_scope.cancel()


async def https_get(port: int, target: str, ca: Path) -> tuple[int, bytes]:
    """A GET over TLS that checks the certificate against the test's CA."""
    context = ssl.create_default_context(cafile=str(ca))
    stream = await trio.open_ssl_over_tcp_stream("127.0.0.1", port, ssl_context=context, https_compatible=True)
    async with stream:
        await stream.send_all(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def test_url_is_https_and_healthz_answers_over_tls(tls_server: RoomServer, certificates: TestCertificates) -> None:
    assert tls_server.url == f"https://127.0.0.1:{tls_server.port}"
    with trio.fail_after(10):
        status, body = await https_get(tls_server.port, "/healthz", certificates.ca)
    assert status == 200 and json.loads(body)["status"] == "ok"


async def test_plain_http_to_a_tls_port_is_dropped_and_the_server_goes_on(
    tls_server: RoomServer, certificates: TestCertificates
) -> None:
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream("127.0.0.1", tls_server.port)
        async with stream:
            await stream.send_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = b""
            while chunk := await stream.receive_some(1024):
                reply += chunk
        assert not reply.startswith(b"HTTP/")
        status, _ = await https_get(tls_server.port, "/healthz", certificates.ca)
    assert status == 200


@pytest.mark.parametrize("transports", [None, ["websocket"]], ids=["polling-then-upgrade", "websocket"])
@pytest.mark.parametrize("client_kind", client_params())
async def test_real_clients_play_over_https_and_wss(
    tls_server: RoomServer, client_kind: str, transports: list[str] | None, certificates: TestCertificates
) -> None:
    options = tls_options(client_kind, certificates.ca)
    if transports:
        options["transports"] = transports
    async with open_clients(client_kind) as clients:
        a = clients.connect(tls_server.url, "/lobby", **options)
        b = clients.connect(tls_server.url, "/lobby", **options)
        await a.wait_connected()
        await b.wait_connected()
        await a.call("join_lobby", {"id": 1, "username": "mia", "auth_level": "teacher"})
        await b.call("join_lobby", {"id": 2, "username": "sam"})
        (ack,) = await a.call("create_room", {"name": "Fractions", "deck": DECK})
        assert ack["ok"] is True
        (joined,) = await b.call("join_room", {"id": ack["room"]["id"]})
        assert joined["ok"] is True
        (rooms,) = await a.next_event("updaterooms", where=lambda args: args[0] and args[0][0]["players"])
        assert [p["id"] for p in rooms[0]["players"]] == [2]
        await wait_websocket(a)  # wss, whether from the start or by the upgrade


# -- bad files: one clear line, exit 2 ---------------------------------------


def test_context_from_a_pair_and_from_one_combined_file(certificates: TestCertificates) -> None:
    assert isinstance(server_ssl_context(str(certificates.cert), str(certificates.key)), ssl.SSLContext)
    assert isinstance(server_ssl_context(str(certificates.combined)), ssl.SSLContext)


def test_bad_files_are_named_with_what_to_do(certificates: TestCertificates, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(TLSFileError, match="does not exist"):
        server_ssl_context(str(tmp_path / "missing.pem"))
    with pytest.raises(TLSFileError, match="not a usable PEM"):
        server_ssl_context(str(garbage), str(certificates.key))
    with pytest.raises(TLSFileError, match="not a usable PEM"):
        server_ssl_context(str(certificates.cert), str(garbage))
    with pytest.raises(TLSFileError, match="not a usable PEM|does not belong"):
        server_ssl_context(str(certificates.cert), str(certificates_other_key(tmp_path)))


def certificates_other_key(directory: Path) -> Path:
    from support.certs import make_certificates

    other = directory / "other"
    other.mkdir()
    return make_certificates(other).key


@pytest.mark.parametrize(
    "args, says",
    [
        (["--certfile", "{missing}"], "--certfile '{missing}': no such file"),
        (["--certfile", "{garbage}", "--keyfile", "{key}"], "not a usable PEM certificate and key"),
        (["--keyfile", "{key}"], "--keyfile needs --certfile"),
    ],
    ids=["missing", "garbage", "key-without-certificate"],
)
def test_cli_refuses_bad_tls_files_in_one_line_with_exit_2(
    args: list[str], says: str, certificates: TestCertificates, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    names = {"missing": str(tmp_path / "missing.pem"), "garbage": str(garbage), "key": str(certificates.key)}
    argv = [arg.format(**names) for arg in args]
    assert main(["--port", "0", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("roomserver: error: ")
    assert says.format(**names) in err


def test_cli_takes_the_files_from_the_environment(
    certificates: TestCertificates, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROOMSERVER_CERTFILE", str(tmp_path / "nope.pem"))
    assert main(["--port", "0"]) == 2
    assert "ROOMSERVER_CERTFILE=" in capsys.readouterr().err
