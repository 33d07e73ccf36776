"""Sans-IO answers for the lobby page: ``/``, ``/static/<asset>`` and, when the
operator hands us a local copy, the socket.io-client bundle.

Why sans-IO: the Engine.IO HTTP layer owns sockets, h11 and error pages; this module
only decides *what* to answer for a method and a path, so it is tested without a
server and plugged into whatever HTTP hook the server composes (``http_fallback``).
All files are read once, when the routes are built, so a request never touches the
disk and a missing ``client_js_path`` fails at start-up instead of on the first visit.

Only the files listed in ``_ASSETS`` are served, looked up by exact path: there is
no file-system path built from the request, hence no traversal to guard against.
"""

from __future__ import annotations

import html
import logging
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

from ..config import DEFAULT_CLIENT_JS_URL
from ..engineio.httpmessages import HttpRequest, HttpResponse

__all__ = ("CLIENT_JS_ROUTE", "DEFAULT_CLIENT_JS_URL", "LobbyPageRoutes")

logger = logging.getLogger(__name__)

#: Where the page loads the client from when the server serves a local copy.
CLIENT_JS_ROUTE = "/static/socket.io.min.js"

_PAGE_ROUTE = "/"
_URL_PLACEHOLDER = "{{CLIENT_JS_URL}}"

_HTML = "text/html; charset=utf-8"
_CSS = "text/css; charset=utf-8"
_JS = "text/javascript; charset=utf-8"

#: Request path -> (file under ``static/``, content type). Nothing else is served.
_ASSETS: dict[str, tuple[str, str]] = {
    "/static/lobby.css": ("lobby.css", _CSS),
    "/static/lobby.js": ("lobby.js", _JS),
}

_ALLOWED_METHODS = "GET, HEAD"


@dataclass(frozen=True)
class _Resource:
    body: bytes
    content_type: str
    cache_control: str
    extra_headers: tuple[tuple[str, str], ...] = ()


class LobbyPageRoutes:
    """The lobby page's HTTP routes, decided without any I/O.

    ``client_js_url`` is where the page loads socket.io-client 4 from (default: the
    official CDN). With ``client_js_path`` the server serves that local file at
    :data:`CLIENT_JS_ROUTE` instead and the page points there; this is how offline
    deployments and the browser tests work.
    """

    def __init__(
        self,
        *,
        client_js_url: str = DEFAULT_CLIENT_JS_URL,
        client_js_path: str | os.PathLike[str] | None = None,
    ) -> None:
        resources_by_path: dict[str, _Resource] = {}
        if client_js_path is not None:
            client_js_url = CLIENT_JS_ROUTE
            resources_by_path[CLIENT_JS_ROUTE] = _Resource(
                body=Path(client_js_path).read_bytes(),
                content_type=_JS,
                # The file only changes with a redeploy; an hour keeps reloads cheap.
                cache_control="public, max-age=3600",
            )
        self.client_js_url = client_js_url
        static = resources.files(__package__).joinpath("static")
        for route, (name, content_type) in _ASSETS.items():
            resources_by_path[route] = _Resource(
                body=static.joinpath(name).read_bytes(),
                content_type=content_type,
                # Revalidate every time: a redeployed page must not pair with stale JS.
                cache_control="no-cache",
            )
        page = static.joinpath("index.html").read_text(encoding="utf-8")
        resources_by_path[_PAGE_ROUTE] = _Resource(
            body=_render_page(page, client_js_url).encode("utf-8"),
            content_type=_HTML,
            cache_control="no-cache",
            extra_headers=(("content-security-policy", _content_security_policy(client_js_url)),),
        )
        self._resources = resources_by_path
        logger.debug("lobby page: client JS from %s; serving %s", client_js_url, sorted(resources_by_path))

    @property
    def paths(self) -> frozenset[str]:
        """Every path these routes answer (for logs and the server's route table)."""
        return frozenset(self._resources)

    async def route(self, request: HttpRequest) -> HttpResponse | None:
        """The same answer in the shape of the Engine.IO server's ``http_fallback``
        hook (:data:`roomactors.engineio.httpmessages.HttpRoute`)."""
        return self.respond(request.method, request.path)

    def respond(self, method: str, target: str) -> HttpResponse | None:
        """The answer for ``method`` on ``target`` (a request target: path plus an
        optional query, which is ignored), or None when the path is not ours so the
        caller can fall through to its own 404."""
        path = target.split("?", 1)[0].split("#", 1)[0]
        resource = self._resources.get(path)
        if resource is None:
            return None
        method = method.upper()
        if method not in ("GET", "HEAD"):
            body = b"Method Not Allowed\n"
            return HttpResponse(
                status=405,
                headers=(
                    ("allow", _ALLOWED_METHODS),
                    ("content-type", "text/plain; charset=utf-8"),
                    ("content-length", str(len(body))),
                ),
                body=body,
            )
        headers = (
            ("content-type", resource.content_type),
            ("content-length", str(len(resource.body))),
            ("cache-control", resource.cache_control),
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "no-referrer"),
            *resource.extra_headers,
        )
        return HttpResponse(
            status=200,
            headers=headers,
            body=b"" if method == "HEAD" else resource.body,
        )


def _render_page(template: str, client_js_url: str) -> str:
    """Put the client's URL (HTML-escaped: it is operator input) into the page."""
    if _URL_PLACEHOLDER not in template:
        raise ValueError("index.html lost its client-JS placeholder")
    return template.replace(_URL_PLACEHOLDER, html.escape(client_js_url, quote=True))


def _content_security_policy(client_js_url: str) -> str:
    """Scripts only from us and the client's origin; sockets only back to a server.

    ``connect-src`` lists ``ws:``/``wss:`` besides ``'self'`` because older Safari
    does not count a same-host WebSocket as ``'self'``.
    """
    script_sources = ["'self'"]
    parts = urlsplit(client_js_url)
    if parts.netloc:
        # A scheme-less source ("cdn.example") matches the page's own scheme.
        script_sources.append(f"{parts.scheme}://{parts.netloc}" if parts.scheme else parts.netloc)
    return "; ".join(
        (
            "default-src 'self'",
            "script-src " + " ".join(script_sources),
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self' ws: wss:",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )
