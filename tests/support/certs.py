"""Self-signed certificates made by the tests, with the openssl command line.

A certificate for ``127.0.0.1`` and ``localhost`` (subjectAltName, which TLS
clients check, not the CN), signed by a throw-away CA whose file the clients
may trust (``NODE_EXTRA_CA_CERTS``, ``requests``' ``verify``). EC P-256 keys:
made in milliseconds.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

__all__ = ("TestCertificates", "make_certificates", "tls_options")


@dataclass(frozen=True)
class TestCertificates:
    __test__ = False  # not a test class, whatever its name

    ca: Path
    """The CA's certificate: what a client trusts."""
    cert: Path
    """The server's certificate (for 127.0.0.1 and localhost)."""
    key: Path
    """The server's private key (unencrypted)."""
    combined: Path
    """Certificate and key in one file (``--certfile`` without ``--keyfile``)."""


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=30)


def make_certificates(directory: Path) -> TestCertificates:
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    ca_key, ca = directory / "ca.key", directory / "ca.pem"
    _openssl("req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=roomactors test CA")
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.pem"
    _openssl("req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1")
    extensions = directory / "server.ext"
    extensions.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
    )
    _openssl(
        "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-out", cert, "-days", "2", "-extfile", extensions,
    )
    combined = directory / "combined.pem"
    combined.write_bytes(cert.read_bytes() + key.read_bytes())
    return TestCertificates(ca=ca, cert=cert, key=key, combined=combined)


def tls_options(kind: str, ca: Path) -> dict[str, Any]:
    """python-socketio checks nginx's certificate against the test's CA (in a
    session that ignores REQUESTS_CA_BUNDLE and the like); socket.io-client is
    told not to check."""
    if kind == "node":
        return {"rejectUnauthorized": False}
    session = requests.Session()
    session.trust_env = False
    session.verify = str(ca)
    return {"http_session": session}
