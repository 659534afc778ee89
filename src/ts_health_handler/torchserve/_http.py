"""HTTP for talking to TorchServe: one bounded request, standard library only.

The only module that imports ``http.client`` (rather than ``urllib.request``: it imports in
half the time, and the probe runs every few seconds), and only when a request is sent: it
brings ``email`` and ``ssl`` with it. Every failure becomes an :class:`Unreachable` or a
:class:`BadAnswer` with a one-line message naming the server.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, NamedTuple
from urllib.parse import urlsplit

from .._text import one_line
from .._version import __version__
from ._errors import BadAnswer, Unreachable

if TYPE_CHECKING:
    import http.client

__all__ = ["BadAnswer", "Response", "Unreachable", "request"]

#: Longest answer read; a describe of a few hundred models stays far below it.
BODY_LIMIT: Final = 16 * 1024 * 1024


class Response(NamedTuple):
    """An HTTP answer, read in full; error statuses are answers too, not exceptions."""

    status: int
    body: bytes
    headers: Mapping[str, str] = MappingProxyType({})

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON.

        Raises:
            BadAnswer: the body is not JSON.
        """
        try:
            return json.loads(self.body)
        except ValueError:
            raise BadAnswer(f"expected JSON, got HTTP {self.status}: {self.text[:500]!r}") from None

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
            return None, one_line(self.body[:120].decode("utf-8", "replace")) or None
        if not isinstance(data, dict):
            return None, None
        kind, message = data.get("type"), data.get("message")
        return (
            kind if isinstance(kind, str) else None,
            message if isinstance(message, str) else None,
        )


def request(
    method: str,
    url: str,
    *,
    timeout: float,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    where: str | None = None,
) -> Response:
    """Send one request and read the whole answer within ``timeout`` seconds in total.

    Args:
        where: how messages name the server (default: the URL's scheme, host and port).

    Raises:
        Unreachable: no answer in time, refused, reset, unknown host.
        BadAnswer: the answer is not HTTP or longer than :data:`BODY_LIMIT`.
    """
    import http.client  # here, not above: only a request needs it (and its email, ssl)

    parts = urlsplit(url)
    host = parts.hostname or ""
    where = where or f"{parts.scheme}://{parts.netloc}"
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    what = f"{method} {path}"
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    deadline = time.monotonic() + timeout
    sent = {
        "Accept": "application/json",
        "User-Agent": f"ts-health/{__version__}",
        "Connection": "close",
        **(headers or {}),
    }
    connection = kind(host, parts.port, timeout=max(timeout, 0.001))
    # Socket timeouts bound each recv(), not the whole answer: a server trickling a byte
    # at a time would outlast any of them. The watchdog shuts the socket at the deadline.
    expired = threading.Event()
    watchdog: threading.Timer | None = None
    try:
        try:
            connection.request(method, path or "/", body=body, headers=sent)
            # getresponse() drops connection.sock when the server closes; keep the socket.
            sock = connection.sock
            watchdog = threading.Timer(
                max(0.0, deadline - time.monotonic()), _expire, (sock, expired)
            )
            watchdog.daemon = True
            watchdog.start()
            _shrink_timeout(sock, deadline)
            answer = connection.getresponse()
            content = _read(answer, sock, deadline)
        except Exception:
            if expired.is_set():
                raise TimeoutError from None
            raise
        if expired.is_set():
            raise TimeoutError
        return Response(answer.status, content, dict(answer.getheaders()))
    except ConnectionRefusedError:
        raise Unreachable(f"cannot connect to {where}: connection refused") from None
    except (TimeoutError, socket.timeout):  # one class since 3.10, two on 3.9
        raise Unreachable(f"{where} did not answer {what} within {timeout:g} s") from None
    except socket.gaierror:
        raise Unreachable(f"cannot resolve host {host!r} of {where}") from None
    except (http.client.RemoteDisconnected, ConnectionResetError):
        raise Unreachable(f"{where} closed the connection without answering {what}") from None
    except http.client.HTTPException as exc:
        raise BadAnswer(
            f"{where} answered {what} with something that is not HTTP ({type(exc).__name__})"
        ) from None
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise Unreachable(f"cannot reach {where}: {reason}") from None
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
            import http.client  # already loaded by request()

            raise http.client.HTTPException("answer longer than 16 MiB")
        chunks.append(chunk)
