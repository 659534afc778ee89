"""The HTTP server of ``ts-health serve``: standard library, bounded in every direction.

- at most :data:`MAX_CONNECTIONS` connections at once; one more is answered 503 at once;
- a request line of at most :data:`MAX_REQUEST_LINE` bytes (else 414); headers as
  ``http.server`` bounds them (64 KiB a line, 100 lines; else 431);
- no request bodies (413): every path is a GET;
- :data:`REQUEST_DEADLINE` seconds from accept (the start of the connection's thread) to
  the end of the headers, for the whole request however its bytes are paced: before every
  read the socket's timeout is set to the time left, so trickling cannot extend it; a client
  past it is dropped without an answer;
- as long again to take the answer (every send is bounded the same way), so a client that
  never reads cannot keep its slot either: a connection holds one for about twice
  :data:`REQUEST_DEADLINE` at most, plus the time to compute the answer;
- one request per connection (``Connection: close``), so no idle connection holds a slot.

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
REQUEST_DEADLINE: Final = 5.0

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


class _Handler(BaseHTTPRequestHandler):
    server: HttpListener
    server_version = "ts-health"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:  # StreamRequestHandler's, with every read and send on a deadline
        self.connection = self.request
        self.deadline = _Deadline(self.request, self.server.request_deadline)
        self.rfile = io.BufferedReader(_Reader(self.deadline))
        self.wfile = _Writer(self.deadline)

    def handle_one_request(self) -> None:
        self.close_connection = True
        try:
            line = self.rfile.readline(MAX_REQUEST_LINE + 1)
        except OSError:  # a timeout or a reset before the request was in
            return
        if not line:
            return
        self.raw_requestline = line
        if len(line) > MAX_REQUEST_LINE:
            self.request_version, self.command, self.requestline = "HTTP/1.1", "", ""
            self.send_error(414, f"request line longer than {MAX_REQUEST_LINE} bytes")
            return
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
        self._send(self.server.answer(request))

    def _send(self, answer: Answer) -> None:
        self.deadline.start(self.server.request_deadline)  # as long again to take the answer
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
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
        request_deadline: float = REQUEST_DEADLINE,
    ) -> None:
        if not request_deadline > 0:
            raise ValueError(f"request_deadline must be positive, not {request_deadline!r}")
        self.answer: Final = answer
        self.request_deadline: Final = request_deadline
        self._slots = threading.BoundedSemaphore(max_connections)
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
        if not self._slots.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.sendall(_BUSY)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()
