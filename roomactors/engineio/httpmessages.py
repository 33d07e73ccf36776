"""The plain request/response records of the ``http_fallback`` route hook,
so an embedder can serve a few pages (health check, lobby page) on the
Engine.IO port without knowing h11."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["HttpRequest", "HttpResponse", "HttpRoute"]


@dataclass(frozen=True)
class HttpRequest:
    method: str                      #: "GET", "POST", ...
    target: str                      #: the raw request target, path and query
    path: str                        #: the target's path, percent-decoded
    query: Mapping[str, str]         #: first value of each query parameter
    headers: Mapping[str, str]       #: lower-case names; repeated headers joined with ", "
    body: bytes = b""
    remote_address: str | None = None


@dataclass(frozen=True)
class HttpResponse:
    status: int = 200
    headers: Sequence[tuple[str, str]] = field(default_factory=tuple)
    body: bytes | str = b""


#: A route for paths outside the Engine.IO path; None means 404. A HEAD request
#: reaches the route as a GET; the server sends that response's headers and
#: Content-Length without its body.
HttpRoute = Callable[[HttpRequest], Awaitable[HttpResponse | None]]
