"""HTTP for talking to TorchServe: one bounded request, standard library only.

The only module that speaks HTTP as a client. It speaks the little HTTP/1.1 a TorchServe
client needs over a socket of its own, not through ``http.client``: importing that module
loads ``email`` and ``ssl``, about a third of the probe's start-up, and the probe runs every
few seconds. ``ssl`` is imported only for an ``https`` URL.

One request per connection (``Connection: close``). The answer's body ends where its
``Content-Length`` says, with its last chunk (``Transfer-Encoding: chunked``), or with the
connection (RFC 9112, section 6.3). Before every read the socket's timeout is set to the time
left, so a server trickling its answer cannot outlast the request's ``timeout``. Every failure
becomes an :class:`Unreachable` or a :class:`BadAnswer` with a one-line message naming the
server, whatever bytes the server sends: framing that ``http.client`` would refuse (differing
``Content-Length`` values, transfer codings no one asked for) is refused here too, never
guessed at.
"""

# No `from __future__ import annotations`: typing would compile each named-tuple field's
# annotation when ts-health starts (docs/architecture.md, "Start-up").
import json
import socket
import time
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Final, NamedTuple, Optional
from urllib.parse import SplitResult, urlsplit

from .._text import one_line, redact
from .._version import __version__
from ._errors import BadAnswer, Unreachable

__all__ = ["BadAnswer", "Response", "Unreachable", "request"]

#: Longest answer read; a describe of a few hundred models stays far below it.
BODY_LIMIT: Final = 16 * 1024 * 1024
#: Longest line of an answer's head (its status line, a header), as ``http.client`` allows.
LINE_LIMIT: Final = 65536
#: Most header lines in an answer's head, as ``http.client`` allows.
HEADER_LIMIT: Final = 100
#: Most digits of a ``Content-Length``: enough for any length up to :data:`BODY_LIMIT` with
#: leading zeros, and far below ``int()``'s limit on digits (Python >= 3.11).
LENGTH_DIGITS: Final = 18


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
        except (ValueError, RecursionError):  # RecursionError: nested deeper than Python goes
            shown = one_line(self.text, 500)
            raise BadAnswer(f"expected JSON, got HTTP {self.status}: {shown!r}") from None

    def error_summary(self, secrets: Iterable[str] = ()) -> str:
        """``400 InvalidKeyException: Token ...`` from TorchServe's JSON error body; any of
        ``secrets`` in a body that is not JSON is redacted before it is cut."""
        kind, message = self.error_fields(secrets)
        text = f"{self.status} {kind}" if kind else str(self.status)
        return f"{text}: {message}" if message else text

    def error_fields(self, secrets: Iterable[str] = ()) -> tuple[Optional[str], Optional[str]]:
        """``type`` and ``message`` of TorchServe's ``{"code", "type", "message"}`` body."""
        try:
            data = json.loads(self.body)
        except (ValueError, RecursionError):
            return None, one_line(redact(self.text, secrets), 120) or None
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
    headers: Optional[Mapping[str, str]] = None,
    body: Optional[bytes] = None,
    where: Optional[str] = None,
) -> Response:
    """Send one request and read the whole answer within ``timeout`` seconds in total.

    Args:
        where: how messages name the server (default: the URL's scheme, host and port).

    Raises:
        Unreachable: no answer in time, refused, reset, unknown host.
        BadAnswer: the answer is not HTTP or longer than :data:`BODY_LIMIT`.
        ValueError: a header or the path holds a line break or another control character.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    where = where or f"{parts.scheme}://{parts.netloc}"
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    what = f"{method} {path}"
    head = _head(method, path or "/", parts, headers or {}, body)
    return _exchange(
        method,
        head,
        body,
        host=host,
        port=port,
        secure=secure,
        timeout=timeout,
        where=where,
        what=what,
    )


def _exchange(
    method: str,
    head: bytes,
    body: Optional[bytes],
    *,
    host: str,
    port: int,
    secure: bool,
    timeout: float,
    where: str,
    what: str,
) -> Response:
    """Connect, send ``head`` and ``body``, and read the answer within ``timeout`` seconds;
    each failure becomes an :class:`Unreachable` or a :class:`BadAnswer` naming ``where``
    (the server) and ``what`` (the request)."""
    deadline = time.monotonic() + timeout
    sock: Optional[socket.socket] = None
    try:
        sock = _connect(host, port, secure, deadline)
        sock.settimeout(_left(deadline))
        sock.sendall(head + (body or b""))
        return _answer(_Reader(sock, deadline), method)
    except ConnectionRefusedError:
        raise Unreachable(f"cannot connect to {where}: connection refused") from None
    except (TimeoutError, socket.timeout):  # one class since 3.10, two on 3.9
        raise Unreachable(f"{where} did not answer {what} within {timeout:g} s") from None
    except socket.gaierror:
        raise Unreachable(f"cannot resolve host {host!r} of {where}") from None
    except (_Closed, ConnectionResetError, BrokenPipeError):
        raise Unreachable(f"{where} closed the connection without answering {what}") from None
    except _NotHttp as exc:
        raise BadAnswer(
            f"{where} answered {what} with something that is not HTTP ({exc})"
        ) from None
    except _TooLong:
        raise BadAnswer(
            f"{where} answered {what} with more than {BODY_LIMIT // (1024 * 1024)} MiB"
        ) from None
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise Unreachable(f"cannot reach {where}: {reason}") from None
    finally:
        if sock is not None:
            sock.close()


class _NotHttp(Exception):
    """What was received is not an HTTP answer; the message says how."""


class _Closed(Exception):
    """The server closed the connection before a byte of the answer."""


class _TooLong(Exception):
    """The answer's body is longer than :data:`BODY_LIMIT`."""


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left


def _head(
    method: str, target: str, parts: SplitResult, headers: Mapping[str, str], body: Optional[bytes]
) -> bytes:
    """The request line and headers, as ``http.client`` would send them."""
    host = parts.hostname or ""
    if not host.isascii():
        host = host.encode("idna").decode("ascii")
    if ":" in host:
        host = f"[{host}]"  # IPv6
    if parts.port is not None and parts.port != (443 if parts.scheme == "https" else 80):
        host = f"{host}:{parts.port}"
    defaults = {
        "Host": host,
        "Accept": "application/json",
        "User-Agent": f"ts-health/{__version__}",
        "Connection": "close",
    }
    # Header names are case-insensitive: a given "authorization" replaces "Authorization"
    # (sending both would send two tokens), keeping the first one's place.
    sent: dict[str, tuple[str, str]] = {}
    for name, value in (*defaults.items(), *headers.items()):
        sent[name.lower()] = (sent.get(name.lower(), (name, ""))[0], value)
    if body is not None or method in ("PATCH", "POST", "PUT"):
        sent["content-length"] = ("Content-Length", str(len(body or b"")))
    if any(_unsafe(c) for c in target):
        raise ValueError("invalid request path: it holds a space or a control character")
    lines = [f"{method} {target} HTTP/1.1"]
    for name, value in sent.values():
        if not name or any(_unsafe(c) or c == ":" for c in name) or not name.isascii():
            raise ValueError(f"invalid header name {name!r}")
        # Not shown: the value may be a token.
        if any(_unsafe(c) and c not in " \t" for c in value):
            raise ValueError(f"invalid value of header {name}: it holds a control character")
        if any(c > "\xff" for c in value):
            raise ValueError(f"invalid value of header {name}: it holds a character beyond Latin-1")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _unsafe(char: str) -> bool:
    return char <= " " or char == "\x7f"


def _connect(host: str, port: int, secure: bool, deadline: float) -> socket.socket:
    # An ASCII host name (any IP address) goes to getaddrinfo() as bytes, which it takes as
    # they are: a str would be encoded with the "idna" codec, whose first use imports
    # stringprep and unicodedata (milliseconds, for nothing an ASCII name needs).
    name = host.encode("ascii") if host.isascii() else host
    sock = socket.create_connection((name, port), timeout=_left(deadline))  # type: ignore[arg-type]
    if not secure:
        return sock
    import ssl

    try:
        context = ssl.create_default_context()
        context.set_alpn_protocols(["http/1.1"])
        sock.settimeout(_left(deadline))
        return context.wrap_socket(sock, server_hostname=host)
    except BaseException:
        sock.close()
        raise


class _Reader:
    """The bytes of one answer, each read bounded by the time left until ``deadline``."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.buffer = bytearray()
        self.received = 0

    def _more(self) -> bool:
        """Receive what the server sent next; ``False`` when it closed the connection."""
        self.sock.settimeout(_left(self.deadline))
        data = self.sock.recv(65536)
        self.received += len(data)
        self.buffer += data
        return bool(data)

    def line(self) -> Optional[bytes]:
        """The next line without its CRLF (or LF); ``None`` when the connection ends first."""
        start = 0
        while True:
            end = self.buffer.find(b"\n", start)
            if end >= 0:
                line = bytes(self.buffer[:end])
                del self.buffer[: end + 1]
                return line[:-1] if line.endswith(b"\r") else line
            if len(self.buffer) > LINE_LIMIT:
                raise _NotHttp(f"a line longer than {LINE_LIMIT} bytes")
            start = len(self.buffer)
            if not self._more():
                return None

    def exactly(self, size: int) -> bytes:
        """The next ``size`` bytes."""
        while len(self.buffer) < size:
            if not self._more():
                raise _NotHttp("the body ends before its length")
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def rest(self) -> bytes:
        """Everything until the server closes the connection."""
        while len(self.buffer) <= BODY_LIMIT:
            if not self._more():
                data = bytes(self.buffer)
                self.buffer.clear()
                return data
        raise _TooLong


def _answer(reader: _Reader, method: str) -> Response:
    """Read one answer: interim (1xx) answers are skipped, the body read as framed."""
    while True:
        status, lines = _status(reader), _headers(reader)
        if not 100 <= status < 200 or status == 101:
            break
    headers = dict(lines)  # by name as sent, the last one of a name wins
    if method == "HEAD" or status in (204, 304) or status < 200:
        body = b""
    elif _is_chunked(lines):  # chunked, the only one understood (RFC 9112, section 6.3)
        body = _chunked(reader)
    elif any(name.lower() == "content-length" for name, _ in lines):
        body = reader.exactly(_content_length(lines))
    else:
        body = reader.rest()
    return Response(status, body, headers)


def _values(lines: list[tuple[str, str]], wanted: str) -> list[str]:
    """The items of every ``wanted`` header (any case), as one comma-separated list."""
    return [
        item.strip() for name, value in lines if name.lower() == wanted for item in value.split(",")
    ]


def _is_chunked(lines: list[tuple[str, str]]) -> bool:
    """Whether the body is chunked; any other transfer coding is refused: none was asked
    for (no ``TE``), and a coding ``chunked`` does not end leaves the body undecodable."""
    codings = [c for c in _values(lines, "transfer-encoding") if c]
    if not codings:
        return False
    if [c.lower() for c in codings] != ["chunked"]:
        shown = ", ".join(codings)
        raise _NotHttp(f"Transfer-Encoding {one_line(shown, 40)!r}; only chunked is understood")
    return True


def _content_length(lines: list[tuple[str, str]]) -> int:
    """The one ``Content-Length``: ASCII digits, however many headers (or list items) say it;
    differing values are refused (RFC 9112, section 6.3), as ``http.client`` does."""
    texts = _values(lines, "content-length")
    for text in texts:
        if len(text) > LENGTH_DIGITS and text.isascii() and text.isdigit():
            raise _NotHttp(f"a Content-Length of {len(text)} digits")
        # isdigit() alone also takes "²" and other digits that are not ASCII.
        if not (text.isascii() and text.isdigit()):
            raise _NotHttp(f"Content-Length {text[:20]!r}")
    lengths = sorted({int(text) for text in texts})
    if len(lengths) > 1:
        raise _NotHttp(f"differing Content-Length values {lengths[0]} and {lengths[-1]}")
    if lengths[0] > BODY_LIMIT:
        raise _TooLong
    return lengths[0]


def _status(reader: _Reader) -> int:
    """The status code of ``HTTP/1.1 200 OK``."""
    line = reader.line()
    if line is None:
        if reader.received:
            raise _NotHttp("the answer ends within its status line")
        raise _Closed
    version, _, rest = line.partition(b" ")
    code = rest[:3]
    if (
        not version.startswith(b"HTTP/")
        or len(code) != 3
        or not code.isdigit()
        or rest[3:4] not in (b"", b" ")
        or int(code) < 100
    ):
        raise _NotHttp("a bad status line")
    return int(code)


def _headers(reader: _Reader) -> list[tuple[str, str]]:
    """The header lines up to the empty line, in order, each name as sent."""
    headers: list[tuple[str, str]] = []
    for _ in range(HEADER_LIMIT + 1):
        raw = reader.line()
        if raw is None:
            raise _NotHttp("the answer ends within its headers")
        if not raw:
            return headers
        line = raw.decode("latin-1")
        if line[0] in " \t" and headers:  # a folded line continues the header before
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
        elif ":" in line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    raise _NotHttp(f"more than {HEADER_LIMIT} header lines")


def _chunked(reader: _Reader) -> bytes:
    """A body in chunked transfer coding: sized chunks up to the empty one, then trailers."""
    chunks: list[bytes] = []
    total = 0
    while True:
        line = reader.line()
        if line is None:
            raise _NotHttp("the body ends before its last chunk")
        size_text = line.split(b";", 1)[0].strip()
        if not size_text or size_text.strip(b"0123456789abcdefABCDEF"):
            raise _NotHttp("a bad chunk size")
        size = int(size_text, 16)
        if size == 0:
            break
        total += size
        if total > BODY_LIMIT:
            raise _TooLong
        chunks.append(reader.exactly(size))
        if reader.line() != b"":
            raise _NotHttp("a chunk longer than its size")
    for _ in range(HEADER_LIMIT + 1):  # trailers, up to the empty line (or the end)
        if not reader.line():
            return b"".join(chunks)
    raise _NotHttp(f"more than {HEADER_LIMIT} trailer lines")
