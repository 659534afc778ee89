"""A small, bounded HTTP GET for the probe: standard library only, no torch, no ts.

``http.client`` rather than ``urllib.request``: it imports in half the time, and the probe
runs every few seconds. Every failure becomes a :class:`ProbeError` carrying a one-line
message and the exit code the probe returns for it.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from ._version import __version__

__all__ = [
    "EXIT_BAD_ANSWER",
    "EXIT_NOT_READY",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "Api",
    "ProbeError",
    "Response",
    "check_base_url",
]

EXIT_OK: Final = 0
#: The model (or server) answered and is not ready, unhealthy, or ``wait`` gave up.
EXIT_NOT_READY: Final = 1
#: Bad arguments or configuration: unknown option, bad URL, unreadable key file, token
#: refused, unknown model.
EXIT_USAGE: Final = 2
#: No answer: connection refused or reset, timeout, unknown host.
EXIT_UNREACHABLE: Final = 3
#: An answer, but not one TorchServe gives: not HTTP, not JSON, wrong shape, odd status.
EXIT_BAD_ANSWER: Final = 4

#: Longest answer read; a describe of a few hundred models stays far below it.
BODY_LIMIT: Final = 16 * 1024 * 1024


class ProbeError(Exception):
    """A probe failure with a one-line ``message`` and the ``exit_code`` it maps to."""

    def __init__(self, message: str, exit_code: int) -> None:
        self.message: Final = message
        self.exit_code: Final = exit_code
        super().__init__(message)


@dataclass(frozen=True)
class Response:
    """An HTTP answer: status and body (already read in full)."""

    status: int
    body: bytes

    def error_summary(self) -> str:
        """``400 InvalidKeyException: Token ...`` from TorchServe's JSON error body."""
        kind, message = self.error_fields()
        text = f"{self.status} {kind}" if kind else str(self.status)
        return f"{text}: {message}" if message else text

    def error_fields(self) -> tuple[str | None, str | None]:
        """``type`` and ``message`` of TorchServe's ``{"code", "type", "message"}`` body."""
        try:
            data = json.loads(self.body)
        except ValueError:
            snippet = self.body[:120].decode("utf-8", "replace").strip()
            return None, " ".join(snippet.split()) or None
        if not isinstance(data, dict):
            return None, None
        kind, message = data.get("type"), data.get("message")
        return (
            kind if isinstance(kind, str) else None,
            message if isinstance(message, str) else None,
        )


def check_base_url(option: str, url: str) -> str:
    """``url`` without a trailing slash, or a usage :class:`ProbeError` naming ``option``."""
    expected = "expected http://HOST:PORT or https://HOST:PORT"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ProbeError(f"invalid {option} {url!r}: {expected}", EXIT_USAGE) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProbeError(f"invalid {option} {url!r}: {expected}", EXIT_USAGE)
    if parts.username is not None or parts.password is not None:
        # Do not echo the URL: it holds a secret.
        raise ProbeError(
            f"invalid {option}: credentials in the URL are not supported; use --token",
            EXIT_USAGE,
        )
    if parts.query or parts.fragment:
        raise ProbeError(f"invalid {option} {url!r}: {expected} (no query)", EXIT_USAGE)
    del port  # parsed only to reject a malformed port early
    return url.rstrip("/")


@dataclass(frozen=True)
class Api:
    """One TorchServe API (inference or management): where it is and the token it wants.

    ``repr`` leaves the token out, so that no traceback or log line can show it.
    """

    name: str
    base: str
    token: str | None = None

    def __repr__(self) -> str:
        token = "set" if self.token else "none"
        return f"Api({self.name!r}, {self.base!r}, token={token})"

    def get(self, path: str, timeout: float) -> Response:
        """GET ``path`` (relative to :attr:`base`) within ``timeout`` seconds in total.

        Raises:
            ProbeError: unreachable (exit 3) or not HTTP (exit 4).
        """
        parts = urlsplit(self.base)
        host = parts.hostname or ""
        kind = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        deadline = time.monotonic() + timeout
        headers = {
            "Accept": "application/json",
            "User-Agent": f"ts-health/{__version__}",
            "Connection": "close",
        }
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        where = f"the {self.name} at {self.base}"
        connection = kind(host, parts.port, timeout=max(timeout, 0.001))
        # Socket timeouts bound each recv(), not the whole answer: a server trickling a byte
        # at a time would outlast any of them. The watchdog shuts the socket at the deadline.
        expired = threading.Event()
        watchdog: threading.Timer | None = None
        try:
            try:
                connection.request("GET", parts.path + path, headers=headers)
                # getresponse() drops connection.sock when the server closes; keep the socket.
                sock = connection.sock
                watchdog = threading.Timer(
                    max(0.0, deadline - time.monotonic()), _expire, (sock, expired)
                )
                watchdog.daemon = True
                watchdog.start()
                _shrink_timeout(sock, deadline)
                answer = connection.getresponse()
                body = _read(answer, sock, deadline)
            except Exception:
                if expired.is_set():
                    raise TimeoutError from None
                raise
            if expired.is_set():
                raise TimeoutError
            return Response(answer.status, body)
        except ConnectionRefusedError:
            raise ProbeError(
                f"cannot connect to {where}: connection refused", EXIT_UNREACHABLE
            ) from None
        except TimeoutError:  # socket.timeout too (an alias since 3.10)
            raise ProbeError(
                f"{where} did not answer GET {path} within {timeout:g} s", EXIT_UNREACHABLE
            ) from None
        except socket.gaierror:
            raise ProbeError(f"cannot resolve host {host!r} of {where}", EXIT_UNREACHABLE) from None
        except (http.client.RemoteDisconnected, ConnectionResetError):
            raise ProbeError(
                f"{where} closed the connection without answering GET {path}", EXIT_UNREACHABLE
            ) from None
        except http.client.HTTPException as exc:
            raise ProbeError(
                f"{where} answered GET {path} with something that is not HTTP "
                f"({type(exc).__name__})",
                EXIT_BAD_ANSWER,
            ) from None
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise ProbeError(f"cannot reach {where}: {reason}", EXIT_UNREACHABLE) from None
        finally:
            if watchdog is not None:
                watchdog.cancel()
            connection.close()


def _expire(sock: socket.socket | None, expired: threading.Event) -> None:
    expired.set()
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _shrink_timeout(sock: socket.socket | None, deadline: float) -> None:
    """Bound the next socket operation by what is left of the whole request's time."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    if sock is not None:
        # Closed by getresponse() (the answer holds its own reference): each read keeps the
        # timeout set before, and the deadline is still checked between reads.
        with contextlib.suppress(OSError):
            sock.settimeout(left)


def _read(answer: http.client.HTTPResponse, sock: socket.socket | None, deadline: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        _shrink_timeout(sock, deadline)
        chunk = answer.read(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > BODY_LIMIT:
            raise http.client.HTTPException("answer longer than 16 MiB")
        chunks.append(chunk)
