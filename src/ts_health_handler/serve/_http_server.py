"""The HTTP server of ``ts-health serve``: standard library, bounded in every direction.

What one connection may cost before it is authorized (or answered at all) is bounded, and
no client, nor 64 of them from one address, can keep kubelet's probes out:

- at most :data:`MAX_CONNECTIONS` connections at once. When every slot is taken, a new
  connection **displaces** the oldest one that has not sent a whole request head yet (it is
  shut down, without an answer); only when every slot holds a connection being answered is
  the new one answered 503 at once. A client that connects and says nothing, however often
  it reconnects, so holds a slot only until :data:`MAX_CONNECTIONS` newer connections came;
- a request line of at most :data:`MAX_REQUEST_LINE` bytes (else 414), and a head (request
  line and headers) of at most :data:`MAX_HEAD` bytes (else 431), read into one buffer of that
  size: a connection holds that much memory at most before its answer;
- no request bodies (413): every path is a GET;
- :data:`HEAD_DEADLINE` seconds from accept (the start of the connection's thread) to the end
  of the head, however its bytes are paced: before every read the socket's timeout is set to
  the time left, so trickling cannot extend it; a client past it is dropped without an answer;
- :data:`ANSWER_DEADLINE` seconds to take the answer (every send is bounded the same way), so
  a client that never reads cannot keep its slot either;
- one request per connection (``Connection: close``), so no idle connection holds a slot;
- an answer that raises is a 500, never a connection closed without one.

Answers come from :func:`~._routes.answer` over the observer's latest snapshot: a request
never waits on TorchServe.
"""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Final

from ._routes import Answer, Request, error_answer

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

__all__ = ["HttpListener"]

MAX_CONNECTIONS: Final = 64
MAX_REQUEST_LINE: Final = 8192
#: The request line and the headers together: kubelet sends about 150 bytes, a browser a
#: few KiB with its cookies; ``http.server`` alone would take 100 header lines of 64 KiB.
MAX_HEAD: Final = 16384
HEAD_DEADLINE: Final = 2.0
ANSWER_DEADLINE: Final = 5.0
#: The page's scripts, frames, forms and fetches: none; its styles are inline.
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)

_BUSY_BODY: Final = b'{"error": "too many connections, retry later"}\n'
_BUSY: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Retry-After: 1\r\nConnection: close\r\n"
    + f"Content-Length: {len(_BUSY_BODY)}\r\n\r\n".encode()
    + _BUSY_BODY
)


class _Deadline:
    """A connection's socket and the moment by which its current read or send must end."""

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        self.sock: Final = sock
        self.start(seconds)

    def start(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def socket(self) -> socket.socket:
        """The socket, its timeout the time left: a call on it cannot outlast the deadline."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise TimeoutError("past the deadline")
        self.sock.settimeout(left)
        return self.sock


class _Reader(io.RawIOBase):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        return self._deadline.socket().recv_into(buffer)


class _Writer(io.BufferedIOBase):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self._deadline = deadline

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer) -> int:
        self._deadline.socket().sendall(data)  # sendall's timeout bounds the whole call
        return memoryview(data).nbytes


class _HeadTooLong(Exception):
    """The request head is longer than :data:`MAX_HEAD`."""


class _Slots:
    """The connection slots, oldest first, each marked once its connection's head is in.

    Taking a slot when none is free displaces the oldest connection still sending its head
    (its socket is shut down: its thread's next read ends). The marks and the displacement
    are under one lock, and a connection gives its slot back before its socket is closed,
    so a displacement never shuts down a socket that has been closed (its descriptor reused).
    """

    def __init__(self, limit: int) -> None:
        self.limit: Final = limit
        self._lock = threading.Lock()
        self._held: dict[socket.socket, bool] = {}  # in order of arrival: head received?
        #: Connections displaced so far.
        self.displaced = 0

    def take(self, sock: socket.socket) -> bool:
        """A slot for ``sock``, displacing one if need be; ``False`` when every slot holds a
        connection being answered."""
        with self._lock:
            if len(self._held) >= self.limit:
                oldest = next((s for s, headed in self._held.items() if not headed), None)
                if oldest is None:
                    return False
                del self._held[oldest]
                self.displaced += 1
                with contextlib.suppress(OSError):
                    oldest.shutdown(socket.SHUT_RDWR)
            self._held[sock] = False
            return True

    def headed(self, sock: socket.socket) -> None:
        """``sock`` has sent its whole head: it is answered now, never displaced."""
        with self._lock:
            if sock in self._held:
                self._held[sock] = True

    def release(self, sock: socket.socket) -> None:
        with self._lock:
            self._held.pop(sock, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._held)


class _Handler(BaseHTTPRequestHandler):
    server: HttpListener
    server_version = "ts-health"
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:  # StreamRequestHandler's, with every read and send on a deadline
        self.connection = self.request
        self.deadline = _Deadline(self.request, self.server.head_deadline)
        self.rfile = io.BufferedReader(_Reader(self.deadline))
        self.wfile = _Writer(self.deadline)

    def version_string(self) -> str:  # "ts-health", without http.server's Python version
        return self.server_version

    def handle_one_request(self) -> None:
        self.close_connection = True
        try:
            head = self._head()
        except OSError:  # a timeout, a reset or a displacement before the head was in
            return
        except _HeadTooLong as exc:
            self.request_version, self.command, self.requestline = "HTTP/1.1", "", ""
            self.send_error(exc.args[0], exc.args[1])
            return
        if head is None:
            return
        self.server.slots.headed(self.request)
        self.raw_requestline, headers = head
        self.rfile = io.BufferedReader(io.BytesIO(headers))  # parse_request reads them here
        try:
            parsed = self.parse_request()  # sends 400/431/505 itself
        except OSError:
            return
        if not parsed:
            return
        if self.headers.get("Transfer-Encoding") or self.headers.get("Content-Length", "0") != "0":
            self._send(error_answer(413, "no request bodies: every path is a GET"))
            return
        request = Request(self.command, self.path, self.headers.get("Authorization"))
        try:
            found = self.server.answer(request)
        except Exception as exc:  # a bug: the client still gets an answer, and it says so
            found = error_answer(500, f"internal error: {type(exc).__name__}")
        self._send(found)

    def _head(self) -> tuple[bytes, bytes] | None:
        """The request line and the header lines up to the empty one, at most
        :data:`MAX_HEAD` bytes in all; ``None`` when the client closed first.

        Raises:
            _HeadTooLong: with the status (414, 431) and the message of the answer.
        """
        line = self.rfile.readline(MAX_REQUEST_LINE + 1)
        if not line:
            return None
        if len(line) > MAX_REQUEST_LINE:
            raise _HeadTooLong(414, f"request line longer than {MAX_REQUEST_LINE} bytes")
        budget = MAX_HEAD - len(line)
        headers = bytearray()
        while True:
            piece = self.rfile.readline(budget - len(headers) + 1)
            if not piece:
                return None
            headers += piece
            if len(headers) > budget:
                raise _HeadTooLong(431, f"request head longer than {MAX_HEAD} bytes")
            if piece in (b"\r\n", b"\n"):
                return line, bytes(headers)

    def _send(self, answer: Answer) -> None:
        self.deadline.start(self.server.answer_deadline)
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
            self.send_header("Connection", "close")
            for name, value in answer.headers:
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(answer.body)
        except OSError:  # the client went away
            pass

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server's own errors (bad request line, long headers) as JSON too.
        self.close_connection = True
        if getattr(self, "request_version", None) not in ("HTTP/1.0", "HTTP/1.1"):
            self.request_version = "HTTP/1.1"  # never an HTTP/0.9 answer without a status line
        text = message or self.responses.get(code, ("error",))[0]
        self._send(error_answer(code, text))

    def log_message(self, format: str, *args: Any) -> None:  # one line per start/stop only
        pass


class HttpListener(ThreadingHTTPServer):
    """A threading HTTP server answering with ``answer``; see the module for its bounds."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = MAX_CONNECTIONS

    def __init__(
        self,
        address: tuple[str, int],
        answer: Callable[[Request], Answer],
        *,
        max_connections: int = MAX_CONNECTIONS,
        head_deadline: float = HEAD_DEADLINE,
        answer_deadline: float = ANSWER_DEADLINE,
    ) -> None:
        for name, value in (("head_deadline", head_deadline), ("answer_deadline", answer_deadline)):
            if not value > 0:
                raise ValueError(f"{name} must be positive, not {value!r}")
        self.answer: Final = answer
        self.head_deadline: Final = head_deadline
        self.answer_deadline: Final = answer_deadline
        self.slots: Final = _Slots(max_connections)
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        text = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{text}]" if ":" in text else text
        return f"http://{shown}:{port}"

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.take(request):
            with contextlib.suppress(OSError):
                request.sendall(_BUSY)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        # ThreadingMixIn's, with the slot given back before the socket is closed.
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.slots.release(request)
            self.shutdown_request(request)
