"""The plain request/response records of the ``http_fallback`` route hook,
so an embedder can serve a few pages (health check, lobby page) on the
Engine.IO port without knowing h11; and :class:`PackedMapping`, the query
and headers of a session's handshake as its :class:`EngineSocket` keeps them.

Why a mapping of our own: every session keeps the query and the headers of
its handshake for its whole life (``EngineSocket.query``/``headers``), and as
dicts they cost a dict and two string objects per entry, about 1 KB per idle
connection for the few headers a WebSocket client sends (issue 4). They are
read rarely (a connect handler looks at a header or two), so they are one
string, entries as length-prefixed key and value (``3:EIO1:4``), parsed again
on each lookup: a lookup scans a few hundred characters; the memory is that
of the characters alone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, ItemsView, Iterable, Iterator, Mapping, Sequence, ValuesView
from dataclasses import dataclass, field

__all__ = ["HttpRequest", "HttpResponse", "HttpRoute", "PackedMapping"]


@dataclass(frozen=True)
class HttpRequest:
    method: str                      #: "GET", "POST", ...
    target: str                      #: the raw request target, path and query
    path: str                        #: the target's path, percent-decoded
    query: Mapping[str, str]         #: first value of each query parameter
    headers: Mapping[str, str]       #: lower-case names; repeated headers joined with ", "
    body: bytes = b""
    remote_address: str | None = None  #: the client's (behind a trusted proxy, the one it forwarded)


@dataclass(frozen=True)
class HttpResponse:
    status: int = 200
    headers: Sequence[tuple[str, str]] = field(default_factory=tuple)
    body: bytes | str = b""


#: A route for paths outside the Engine.IO path; None means 404. A HEAD request
#: reaches the route as a GET; the server sends that response's headers and
#: Content-Length without its body.
HttpRoute = Callable[[HttpRequest], Awaitable[HttpResponse | None]]


class PackedMapping(Mapping[str, str]):
    """An immutable mapping with the entries of ``items`` (a mapping, or
    pairs of which the last wins, as for ``dict``), in the same order."""

    __slots__ = ("_packed",)

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        entries = items if isinstance(items, dict) else dict(items)
        self._packed = "".join([f"{len(key)}:{key}{len(value)}:{value}" for key, value in entries.items()])

    def _entries(self) -> Iterator[tuple[str, str]]:
        packed = self._packed
        at = 0
        end = len(packed)
        while at < end:
            colon = packed.index(":", at)
            key_end = colon + 1 + int(packed[at:colon])
            key = packed[colon + 1 : key_end]
            colon = packed.index(":", key_end)
            at = colon + 1 + int(packed[key_end:colon])
            yield key, packed[colon + 1 : at]

    def __getitem__(self, key: str) -> str:
        for name, value in self._entries():
            if name == key:
                return value
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (key for key, _ in self._entries())

    def __len__(self) -> int:
        return sum(1 for _ in self._entries())

    def items(self) -> ItemsView[str, str]:
        """The entries in order, in one pass (not one lookup per key)."""
        return dict(self._entries()).items()

    def values(self) -> ValuesView[str]:
        return dict(self._entries()).values()

    def __repr__(self) -> str:
        return f"PackedMapping({dict(self._entries())!r})"
