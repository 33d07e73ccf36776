"""The lobby page's HTTP routes, without a server or a browser.

Each test asserts on the bytes a browser would get, because those are the contract:
the right file, the right content type, the client-JS URL in the page, and nothing
served that is not on the list.
"""

from __future__ import annotations

import re
from pathlib import Path

import h11
import pytest
import trio

from roomactors.config import DEFAULT_CLIENT_JS_URL
from roomactors.engineio.httpmessages import HttpRequest, HttpResponse
from roomactors.web import CLIENT_JS_ROUTE, LobbyPageRoutes

STATIC = Path(__file__).resolve().parents[2] / "roomactors" / "web" / "static"


def headers_of(response: HttpResponse) -> dict[str, str]:
    names = [name for name, _ in response.headers]
    assert len(names) == len(set(names)), f"repeated header in {names}"
    assert all(name == name.lower() for name in names)
    return dict(response.headers)


def script_srcs(page: bytes) -> list[str]:
    return re.findall(r'<script src="([^"]*)"', page.decode("utf-8"))


@pytest.fixture
def client_js(tmp_path: Path) -> Path:
    path = tmp_path / "socket.io.min.js"
    path.write_bytes(b"/* pretend socket.io-client */ window.io = function () {};\n")
    return path


def test_page_uses_the_default_cdn_client() -> None:
    routes = LobbyPageRoutes()
    response = routes.respond("GET", "/")
    assert response is not None
    assert response.status == 200
    headers = headers_of(response)
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["content-length"] == str(len(response.body))
    assert isinstance(response.body, bytes)
    assert script_srcs(response.body) == [DEFAULT_CLIENT_JS_URL, "/static/lobby.js"]
    assert b"{{" not in response.body
    csp = headers["content-security-policy"]
    assert "script-src 'self' https://cdn.socket.io" in csp
    # The local copy is not served when nobody configured one.
    assert routes.respond("GET", CLIENT_JS_ROUTE) is None


def test_operator_url_is_escaped_into_the_page() -> None:
    url = 'https://js.example.org/sio.js?v=4&x="><script>alert(1)</script>'
    response = LobbyPageRoutes(client_js_url=url).respond("GET", "/")
    assert response is not None
    assert isinstance(response.body, bytes)
    page = response.body.decode()
    assert "<script>alert(1)" not in page
    assert 'src="https://js.example.org/sio.js?v=4&amp;x=&quot;&gt;&lt;script&gt;' in page
    assert "script-src 'self' https://js.example.org;" in headers_of(response)["content-security-policy"]


def test_relative_client_url_needs_no_extra_script_origin() -> None:
    response = LobbyPageRoutes(client_js_url="/vendor/socket.io.js").respond("GET", "/")
    assert response is not None
    assert isinstance(response.body, bytes)
    assert script_srcs(response.body)[0] == "/vendor/socket.io.js"
    assert "script-src 'self';" in headers_of(response)["content-security-policy"]


def test_local_client_js_is_served_and_linked(client_js: Path) -> None:
    routes = LobbyPageRoutes(client_js_path=client_js)
    page = routes.respond("GET", "/")
    assert page is not None
    assert isinstance(page.body, bytes)
    assert script_srcs(page.body) == [CLIENT_JS_ROUTE, "/static/lobby.js"]
    served = routes.respond("GET", CLIENT_JS_ROUTE)
    assert served is not None
    assert served.status == 200
    assert served.body == client_js.read_bytes()
    assert headers_of(served)["content-type"] == "text/javascript; charset=utf-8"
    assert CLIENT_JS_ROUTE in routes.paths


def test_missing_local_client_js_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        LobbyPageRoutes(client_js_path=tmp_path / "nope.js")


@pytest.mark.parametrize(
    ("path", "file", "content_type"),
    [
        ("/static/lobby.css", "lobby.css", "text/css; charset=utf-8"),
        ("/static/lobby.js", "lobby.js", "text/javascript; charset=utf-8"),
    ],
)
def test_assets_are_the_files_with_their_types(path: str, file: str, content_type: str) -> None:
    response = LobbyPageRoutes().respond("GET", path)
    assert response is not None
    assert response.status == 200
    assert response.body == (STATIC / file).read_bytes()
    headers = headers_of(response)
    assert headers["content-type"] == content_type
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-length"] == str((STATIC / file).stat().st_size)


def test_page_links_every_asset_it_needs() -> None:
    routes = LobbyPageRoutes()
    page = routes.respond("GET", "/")
    assert page is not None
    assert isinstance(page.body, bytes)
    linked = re.findall(r'(?:href|src)="(/static/[^"]+)"', page.body.decode())
    assert sorted(linked) == ["/static/lobby.css", "/static/lobby.js"]
    for path in linked:
        assert routes.respond("GET", path) is not None


def test_query_string_is_ignored() -> None:
    response = LobbyPageRoutes().respond("GET", "/static/lobby.css?v=2")
    assert response is not None
    assert response.body == (STATIC / "lobby.css").read_bytes()


def test_head_has_the_length_but_no_body() -> None:
    routes = LobbyPageRoutes()
    get = routes.respond("GET", "/")
    head = routes.respond("head", "/")
    assert get is not None and head is not None
    assert head.status == 200
    assert head.body == b""
    assert headers_of(head)["content-length"] == str(len(get.body))


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
def test_other_methods_on_our_paths_are_405(method: str) -> None:
    response = LobbyPageRoutes().respond(method, "/static/lobby.js")
    assert response is not None
    assert response.status == 405
    assert headers_of(response)["allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    "path",
    [
        "/static/",
        "/static",
        "/static/index.html",
        "/static/../routes.py",
        "/static/..%2froutes.py",
        "/static/%2e%2e/routes.py",
        "/static/lobby.js/",
        "/static//lobby.js",
        "/static/LOBBY.JS",
        "/static/socket.io.min.js",
        "/index.html",
        "/healthz",
        "/socket.io/",
        "//",
        "",
        "lobby.js",
    ],
)
def test_anything_else_is_not_ours(path: str) -> None:
    assert LobbyPageRoutes().respond("GET", path) is None


async def test_route_adapter_answers_http_requests(client_js: Path) -> None:
    routes = LobbyPageRoutes(client_js_path=client_js)

    def request(method: str, path: str) -> HttpRequest:
        return HttpRequest(method=method, target=path, path=path, query={}, headers={})

    page = await routes.route(request("GET", "/"))
    assert page is not None and page.status == 200
    js = await routes.route(request("GET", CLIENT_JS_ROUTE))
    assert js is not None and js.body == client_js.read_bytes()
    assert await routes.route(request("GET", "/nothing")) is None


# ---- through the real server: the routes as a browser reaches them over HTTP ----


async def http_get(port: int, target: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request to 127.0.0.1:port, parsed with h11 (status, headers, body)."""
    client = h11.Connection(h11.CLIENT)
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        request = h11.Request(
            method=method, target=target, headers=[("Host", f"127.0.0.1:{port}"), ("Connection", "close")]
        )
        await stream.send_all(client.send(request) + client.send(h11.EndOfMessage()))
        status, headers, body = 0, {}, b""
        with trio.fail_after(10):
            while True:
                event = client.next_event()
                if event is h11.NEED_DATA:
                    client.receive_data(await stream.receive_some())
                elif isinstance(event, h11.Response):
                    status = event.status_code
                    headers = {k.decode().lower(): v.decode() for k, v in event.headers}
                elif isinstance(event, h11.Data):
                    body += bytes(event.data)
                elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                    return status, headers, body


async def test_the_room_server_serves_the_page(nursery: trio.Nursery, client_js: Path) -> None:
    server_module = pytest.importorskip("roomactors.server")
    from roomactors.config import RoomServerConfig

    server = await nursery.start(
        server_module.serve_roomserver, RoomServerConfig(port=0, client_js_path=str(client_js))
    )
    status, headers, body = await http_get(server.port, "/")
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert "content-security-policy" in headers
    assert script_srcs(body) == [CLIENT_JS_ROUTE, "/static/lobby.js"]
    status, headers, body = await http_get(server.port, "/static/lobby.js")
    assert (status, headers["content-type"]) == (200, "text/javascript; charset=utf-8")
    assert body == (STATIC / "lobby.js").read_bytes()
    status, _, body = await http_get(server.port, CLIENT_JS_ROUTE)
    assert (status, body) == (200, client_js.read_bytes())
    for target in ("/static/../routes.py", "/static/%2e%2e/routes.py", "/static/index.html", "/nope"):
        status, _, body = await http_get(server.port, target)
        assert status == 404, target
        assert b"client-JS" not in body and b"import" not in body
