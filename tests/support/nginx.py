"""Debian's nginx in front of a room server, for the reverse-proxy tests.

``open_nginx`` writes a config from ``tests/proxy/nginx.conf.template`` into a
directory of the test's, starts ``nginx`` in the foreground on 127.0.0.1 with
the test's certificate, waits until it listens, and stops it (gracefully,
then for good) when the block ends. ``tests/proxy/setup.sh`` installs nginx
(``tests/run`` calls it).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import trio

from support.certs import TestCertificates

__all__ = ("NginxProxy", "find_nginx", "open_nginx")

TEMPLATE = Path(__file__).resolve().parent.parent / "proxy" / "nginx.conf.template"


@dataclass(frozen=True)
class NginxProxy:
    url: str
    """``https://127.0.0.1:<port>``: where clients connect."""
    port: int
    workdir: Path

    def error_log(self) -> str:
        path = self.workdir / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


def find_nginx() -> str | None:
    """The nginx binary (Debian puts it in /usr/sbin, often not on a user's PATH)."""
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)


def _free_port() -> int:
    """A port free now; nginx cannot listen on port 0 and say which it got."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _render(values: dict[str, str]) -> str:
    """Fill ``{name}`` placeholders; nginx's own braces stay as they are."""
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), TEMPLATE.read_text())


@asynccontextmanager
async def open_nginx(
    upstream_ports: list[int], certificates: TestCertificates, workdir: Path
) -> AsyncIterator[NginxProxy]:
    binary = find_nginx()
    if binary is None:
        raise RuntimeError("nginx is not installed: run tests/proxy/setup.sh (tests/run does)")
    port = _free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(_render({
        "workdir": str(workdir),
        "port": str(port),
        "certfile": str(certificates.cert),
        "keyfile": str(certificates.key),
        "upstream_servers": "\n".join(f"        server 127.0.0.1:{p};" for p in upstream_ports),
        # As root, nginx's workers would run as nobody, who cannot enter the test's directory.
        "user_directive": "user root;" if os.geteuid() == 0 else "",
    }))
    command = [binary, "-p", str(workdir), "-c", str(conf), "-e", str(workdir / "error.log"), "-g", "daemon off;"]
    proxy = NginxProxy(url=f"https://127.0.0.1:{port}", port=port, workdir=workdir)
    async with trio.open_nursery() as nursery:
        process: trio.Process = await nursery.start(
            partial(trio.run_process, command, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )
        try:
            await _wait_listening(process, proxy)
            yield proxy
        finally:
            with trio.CancelScope(shield=True):
                if process.returncode is None:
                    process.send_signal(signal.SIGQUIT)  # graceful: finish what is in flight
                    with trio.move_on_after(10):
                        await process.wait()
                    if process.returncode is None:
                        process.kill()
                        await process.wait()


async def _wait_listening(process: trio.Process, proxy: NginxProxy) -> None:
    """Until nginx accepts connections; its error log if it exits or takes 20 s.

    A loop of connection attempts: another process's readiness has no event
    this test could wait on (nginx -g 'daemon off;' prints nothing when ready).
    """
    with trio.move_on_after(20):
        while process.returncode is None:
            try:
                stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
            except OSError:
                await trio.sleep(0.05)
                continue
            await stream.aclose()
            return
    raise RuntimeError(f"nginx did not start (exit status {process.returncode}); its log:\n{proxy.error_log()}")
