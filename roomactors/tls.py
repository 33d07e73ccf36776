"""TLS of the server's own: an ``ssl.SSLContext`` from a certificate and key file.

A LAN machine with a certificate serves ``https``/``wss`` itself, without a
proxy. trio's :class:`~trio.SSLListener` wraps the TCP listeners; the Engine.IO
server then sees :class:`~trio.SSLStream` connections and reads them through
their stream methods (the raw-descriptor fast path of plain sockets cannot
read encrypted bytes).
"""

from __future__ import annotations

import os
import ssl

__all__ = ("TLSFileError", "server_ssl_context")


class TLSFileError(ValueError):
    """The certificate or key cannot be used; the message says which file and what to do."""


def server_ssl_context(certfile: str, keyfile: str | None = None) -> ssl.SSLContext:
    """A server context for ``certfile`` (PEM, the chain after the certificate)
    and ``keyfile`` (PEM; ``None`` when the key is in ``certfile``).

    Raises :class:`TLSFileError` with one line for an operator: a missing or
    unreadable file, a file that is no PEM certificate or key, a key that does
    not belong to the certificate, or a key protected by a passphrase (the
    server cannot ask for one).
    """
    for what, path in (("certificate", certfile), ("key", keyfile)):
        if path is None:
            continue
        if not os.path.isfile(path):
            raise TLSFileError(f"{what} file {path!r} does not exist; give the path of a PEM file")
        if not os.access(path, os.R_OK):
            raise TLSFileError(f"{what} file {path!r} is not readable by this user; fix its permissions")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # Our HTTP is HTTP/1.1 only; say so, so that no client tries h2.
    context.set_alpn_protocols(["http/1.1"])

    def no_passphrase() -> str:
        raise TLSFileError(
            f"the key in {keyfile or certfile!r} is protected by a passphrase; "
            "give an unencrypted key (openssl pkey -in KEY -out PLAIN.key)"
        )

    try:
        context.load_cert_chain(certfile, keyfile, password=no_passphrase)
    except TLSFileError:
        raise
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        if "KEY_VALUES_MISMATCH" in reason.upper():
            hint = "the key does not belong to the certificate; give the matching pair"
        else:
            hint = f"not a usable PEM certificate and key ({reason})"
        files = certfile if keyfile is None else f"{certfile!r} / {keyfile!r}"
        raise TLSFileError(f"{files}: {hint}") from None
    except OSError as exc:  # pragma: no cover - checked above, but the file may vanish
        raise TLSFileError(f"{exc.filename or certfile!r}: {exc.strerror}") from None
    return context
