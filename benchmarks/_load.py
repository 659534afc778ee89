"""A small, bounded HTTP/1.1 load generator: standard library only, loopback targets.

Shared by ``benchmarks/serve_throughput.py`` and ``tests/reliability``. ``concurrency``
threads each hold one keep-alive connection and send prepared requests until ``requests``
have been sent in total or ``deadline_s`` has passed. The client is a few lines over a raw
socket instead of ``http.client``: on a 2-core machine the generator shares the CPUs with
TorchServe, and ``http.client`` spends most of its time parsing headers.

Every request sent gets exactly one outcome: an HTTP status, or the name of the exception
that ended it (``timeout``, ``RemoteDisconnected``, ...). ``LoadResult.sent`` always equals
the sum of ``LoadResult.statuses`` and ``LoadResult.errors``: nothing vanishes silently. No
request is ever retried (a retry could hide a lost request); after an error the thread opens
a new connection for its next request.

    result = run_load("http://127.0.0.1:8080/predictions/m", requests=2000, concurrency=32)
    print(result.summary())
"""

from __future__ import annotations

import contextlib
import socket
import statistics
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

__all__ = ["LoadResult", "Outcome", "percentile", "request_once", "run_load"]

#: Longest response head or body read; TorchServe's answers are far smaller.
MAX_RESPONSE: Final = 4 * 1024 * 1024
LOOPBACK: Final = ("127.0.0.1", "localhost", "::1")


class _Closed(Exception):
    """The server closed the connection before a whole answer arrived."""


@dataclass
class Outcome:
    """One request: its HTTP status (or ``None``) and the error that ended it (or ``None``)."""

    status: int | None
    error: str | None
    latency_s: float
    body: bytes = b""


@dataclass
class LoadResult:
    """What a load run sent and got back."""

    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    #: Seconds per answered request (any HTTP status), in completion order.
    latencies_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    #: A few answers that were not 2xx, for error messages: (status or error, body start).
    samples: list[tuple[str, str]] = field(default_factory=list)

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def throughput(self) -> float:
        """Answered requests per second of wall time."""
        return self.answered / self.wall_s if self.wall_s > 0 else 0.0

    def percentile_ms(self, q: float) -> float:
        return percentile(self.latencies_s, q) * 1000

    def accounted(self) -> bool:
        """Every request sent has an outcome."""
        return self.sent == self.answered + sum(self.errors.values())

    def summary(self) -> str:
        codes = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items())) or "none"
        errors = ", ".join(f"{k}: {v}" for k, v in sorted(self.errors.items())) or "none"
        return (
            f"sent {self.sent}, answered {self.answered} ({codes}), errors {errors}; "
            f"{self.throughput:.0f} req/s over {self.wall_s:.2f} s, "
            f"p50 {self.percentile_ms(50):.2f} ms, p99 {self.percentile_ms(99):.2f} ms"
        )


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank) of ``values``; 0.0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _target(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK:
        raise ValueError(f"load targets must be http:// on loopback, got {url!r}")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.hostname, parts.port or 80, path


def _prepare(
    method: str, host: str, port: int, path: str, body: bytes, headers: Mapping[str, str]
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: keep-alive"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _Connection:
    """One keep-alive connection; reads exactly one answer per request."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise _Closed
        self.buffer += chunk
        if len(self.buffer) > MAX_RESPONSE:
            raise ValueError("answer too long")

    def _take(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            self._fill()
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def exchange(self, request: bytes) -> tuple[int, bytes, bool]:
        """Send ``request``; return ``(status, body, keep_alive)``."""
        self.sock.sendall(request)
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise ValueError(f"not an HTTP status line: {lines[0][:80]!r}")
        status = int(parts[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        keep_alive = headers.get("connection", "").lower() != "close"
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks = []
            while True:
                size = int(self._line().split(b";", 1)[0], 16)
                if size == 0:
                    while self._line():  # trailers end with an empty line
                        pass
                    break
                chunks.append(self._take(size))
                self._take(2)
            return status, b"".join(chunks), keep_alive
        if "content-length" in headers:
            return status, self._take(int(headers["content-length"])), keep_alive
        # No length: the body runs until the server closes.
        try:
            while True:
                self._fill()
        except _Closed:
            pass
        body, self.buffer = self.buffer, b""
        return status, body, False


def _error_name(exc: BaseException) -> str:
    if isinstance(exc, _Closed):
        return "RemoteDisconnected"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timeout"
    return type(exc).__name__


def request_once(
    url: str,
    *,
    method: str = "GET",
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> Outcome:
    """One request on a fresh connection, with the same outcome rules as :func:`run_load`."""
    host, port, path = _target(url)
    request = _prepare(method, host, port, path, body, headers or {})
    started = time.perf_counter()
    connection = None
    try:
        connection = _Connection(host, port, timeout)
        status, data, _ = connection.exchange(request)
        return Outcome(status, None, time.perf_counter() - started, data)
    except (OSError, ValueError, _Closed) as exc:
        return Outcome(None, _error_name(exc), time.perf_counter() - started)
    finally:
        if connection is not None:
            connection.close()


def run_load(
    url: str,
    *,
    requests: int,
    concurrency: int,
    method: str = "POST",
    body: bytes = b"x",
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    deadline_s: float = 120.0,
    keep_bodies: bool = False,
) -> LoadResult:
    """Send ``requests`` requests over ``concurrency`` keep-alive connections.

    Args:
        url: an ``http://`` loopback URL.
        timeout: seconds any one socket operation may take; a request that exceeds it
            counts as error ``timeout``.
        deadline_s: no request is started after this many seconds (requests in flight
            finish, each bounded by ``timeout``), so a run takes at most about
            ``deadline_s + timeout``.
        keep_bodies: keep a sample of non-2xx bodies in ``LoadResult.samples``.

    Returns:
        A :class:`LoadResult` whose ``sent`` may be below ``requests`` only when the
        deadline passed.
    """
    if requests < 0 or concurrency < 1:
        raise ValueError("requests must be >= 0 and concurrency >= 1")
    host, port, path = _target(url)
    prepared = _prepare(method, host, port, path, body, {**(headers or {})})
    result = LoadResult()
    lock = threading.Lock()
    tickets = iter(range(requests))
    started = time.perf_counter()
    stop_at = started + deadline_s

    def worker() -> None:
        connection: _Connection | None = None
        statuses: Counter[int] = Counter()
        errors: Counter[str] = Counter()
        latencies: list[float] = []
        samples: list[tuple[str, str]] = []
        sent = 0
        try:
            while time.perf_counter() < stop_at:
                with lock:
                    ticket = next(tickets, None)
                if ticket is None:
                    break
                sent += 1
                begin = time.perf_counter()
                try:
                    if connection is None:
                        connection = _Connection(host, port, timeout)
                    status, data, keep_alive = connection.exchange(prepared)
                except (OSError, ValueError, _Closed) as exc:
                    errors[_error_name(exc)] += 1
                    if connection is not None:
                        connection.close()
                        connection = None
                    continue
                latencies.append(time.perf_counter() - begin)
                statuses[status] += 1
                if keep_bodies and not 200 <= status < 300 and len(samples) < 5:
                    samples.append((str(status), data[:300].decode("utf-8", "replace")))
                if not keep_alive:
                    connection.close()
                    connection = None
        finally:
            if connection is not None:
                connection.close()
            with lock:
                result.sent += sent
                result.statuses.update(statuses)
                result.errors.update(errors)
                result.latencies_s.extend(latencies)
                result.samples.extend(samples[: max(0, 5 - len(result.samples))])

    threads = [
        threading.Thread(target=worker, name=f"load-{i}", daemon=True) for i in range(concurrency)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        # Bounded: each thread stops starting requests at the deadline, and each socket
        # operation of a request in flight is bounded by ``timeout``.
        thread.join(timeout=deadline_s + 4 * timeout + 10)
    result.wall_s = time.perf_counter() - started
    if any(thread.is_alive() for thread in threads):
        raise RuntimeError("load threads did not stop in time")
    return result


def describe_latencies(values: Sequence[float]) -> str:
    """``p50/p99`` in milliseconds, for printing."""
    if not values:
        return "no samples"
    return (
        f"p50 {percentile(values, 50) * 1000:.2f} ms, p99 {percentile(values, 99) * 1000:.2f} ms, "
        f"mean {statistics.fmean(values) * 1000:.2f} ms"
    )
