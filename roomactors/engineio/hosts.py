"""Which ``Host`` headers the server answers (sans-IO): a defence against DNS rebinding.

A page on ``http://evil.example`` whose name its owner re-points at the
server's address is, to the browser, same-origin with ``evil.example``: its
requests reach the server with ``Host: evil.example`` and ``Origin:
http://evil.example``, which a same-origin check alone accepts. The names the
server is really reached by are few and known, so any other ``Host`` is
answered 400 before anything else is done with the request.

The server always answers:

* any IP address literal (``127.0.0.1:8000``, ``[::1]``, a LAN address): a
  rebinding attack needs a name of its own; a page served from an address is
  same-origin with nothing else;
* ``localhost`` and names under ``.localhost``;
* the machine's own names: its host name, its first label and
  ``<label>.local`` (mDNS, how LAN machines are often reached);
* the name the server was told to listen on, if a name.

Any other name must be added (``--allowed-host school.example``, the name
clients use, e.g. behind a proxy); ``*`` answers every host (no check). A
name beginning with a dot (``.school.example``) adds that domain and every
name under it.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

__all__ = ("HostPolicy", "host_name", "machine_names")


def machine_names() -> set[str]:
    """The machine's own names, without a DNS lookup (one could hang the start)."""
    names: set[str] = set()
    try:
        hostname = socket.gethostname().strip().lower().rstrip(".")
    except OSError:  # pragma: no cover - a machine without a name
        return names
    if hostname:
        label = hostname.split(".", 1)[0]
        names |= {hostname, label, f"{label}.local"}
    return names


def host_name(host: str) -> str | None:
    """The name or address part of a ``Host`` header, lower case, without its
    port, brackets or trailing dot; None when it is not a host at all."""
    host = host.strip().lower()
    if host.startswith("["):
        name, sep, rest = host[1:].partition("]")
        if not sep or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        return name
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit() and ":" not in name:
        host = name
    elif ":" in host:
        return None
    host = host.rstrip(".")
    return host or None


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostPolicy:
    """Decides whether a request's ``Host`` is one this server answers."""

    __slots__ = ("_any", "_names", "_suffixes")

    def __init__(self, allowed: Iterable[str] | None = None, *, bound_host: str | None = None) -> None:
        """``allowed``: names answered besides the machine's own (module
        docstring); ``*`` among them answers every host."""
        self._any = False
        names = {"localhost"} | machine_names()
        suffixes = [".localhost"]
        if bound_host:
            bound = host_name(bound_host)
            if bound is not None and not _is_address(bound):
                names.add(bound)
        for entry in allowed or ():
            entry = entry.strip().lower().rstrip(".")
            if entry == "*":
                self._any = True
            elif entry.startswith("."):
                suffixes.append(entry)
                names.add(entry[1:])
            elif entry:
                names.add(host_name(entry) or entry)
        self._names = frozenset(names)
        self._suffixes = tuple(suffixes)

    @property
    def checks(self) -> bool:
        """False when every host is answered (``*``)."""
        return not self._any

    def describe(self) -> str:
        """The hosts answered, for the start-up log: what an operator checks
        when students type a name the server refuses."""
        if self._any:
            return "any host"
        names = sorted(self._names)
        domains = sorted(f"*{suffix}" for suffix in self._suffixes)
        return "any IP address, " + ", ".join([*names, *domains])

    def allows(self, host: str | None) -> bool:
        """Whether a request with this ``Host`` header (None: none sent) is answered.

        A request without a ``Host`` (HTTP/1.0) comes from no browser page, so
        it is not what this check is about: it is answered.
        """
        if self._any or host is None:
            return True
        name = host_name(host)
        if name is None:
            return False
        if name in self._names or any(name.endswith(suffix) for suffix in self._suffixes):
            return True
        return _is_address(name)
