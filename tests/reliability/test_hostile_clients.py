"""Hostile clients against a real ``ts-health serve`` process (docs/serve.md, "Security"): what
one connection may cost before it is authorized, and slots held by clients that reconnect as
soon as they are dropped. Real sockets on loopback, against the fake TorchServe; no timing
assertions: the server's memory is read from ``/proc/<pid>/status`` (its peak, ``VmHWM``),
and every wait is bounded."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fake_torchserve import FakeTorchServe, running
from tests.support.serve_support import ServeProcess, address, eventually
from ts_health_handler.serve._http_server import MAX_CONNECTIONS, MAX_HEAD

#: The peak RSS allowed to ``ts-health serve`` (about 30 MB at rest).
RSS_LIMIT_KB = 50 * 1024
#: A head the server takes whole, never ended: the most one connection may make it hold.
HELD_HEAD = b"GET /live HTTP/1.1\r\n" + b"".join(
    b"X-%03d: %s\r\n" % (i, b"v" * 150) for i in range((MAX_HEAD - 100) // 160)
)
#: A whole head far past the budget, in lines ``http.server`` alone would take (100 of
#: 64 KiB): it read and parsed them all, a few times their size in memory.
BIG_LINES = 16
BIG_LINE = b"X-Big: " + b"b" * (65536 - 10) + b"\r\n"
#: A probe as kubelet sends it.
PROBE = b"GET /live HTTP/1.1\r\nHost: 127.0.0.1:8090\r\nUser-Agent: kube-probe/1.31\r\n\r\n"
#: How many probes must each get their answer while the slots are under attack.
PROBES = 20


@pytest.fixture
def fake() -> Iterator[FakeTorchServe]:
    with running() as server:
        server.on("/ping", (200, {"status": "Healthy"}))
        server.on("/models?limit=100", (200, {"models": []}))
        yield server


@pytest.fixture
def serve(fake: FakeTorchServe, tmp_path: Path) -> Iterator[ServeProcess]:
    process = ServeProcess(
        ["--inference-url", fake.url, "--management-url", fake.url, "--interval", "1"],
        {"TS_HEALTH_STATE_DIR": str(tmp_path)},
    )
    try:
        yield process
    finally:
        process.stop()


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def _until_closed(socks: list[socket.socket], timeout: float) -> int:
    """Read (and drop) what the server sends each socket until it closes them all, for at
    most ``timeout`` seconds; returns how many it closed."""
    open_ = list(socks)
    end = time.monotonic() + timeout
    while open_ and (left := end - time.monotonic()) > 0:
        readable, _, _ = select.select(open_, [], [], left)
        for sock in readable:
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                open_.remove(sock)
    return len(socks) - len(open_)


def _send_all(socks: list[socket.socket], data: bytes) -> None:
    """Send ``data`` on every socket at once (one thread each): as much as the server takes."""

    def send(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):  # the server closed it: it takes no more
            sock.sendall(data)

    threads = [threading.Thread(target=send, args=(s,), daemon=True) for s in socks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)


def test_64_connections_sending_maximal_heads_keep_rss_bounded(serve: ServeProcess) -> None:
    pid = serve.process.pid
    eventually(lambda: serve.get("/live").status == 200, what="serve observing")
    at_rest = _status_kb(pid, "VmRSS")
    # Heads the server takes whole and holds until their deadline, then heads past the budget.
    for data in (HELD_HEAD, b"GET /live HTTP/1.1\r\n" + BIG_LINE * BIG_LINES + b"\r\n"):
        socks = [
            socket.create_connection(address(serve.url), timeout=30) for _ in range(MAX_CONNECTIONS)
        ]
        try:
            _send_all(socks, data)
            closed = _until_closed(socks, 30.0)
        finally:
            for sock in socks:
                sock.close()
        assert closed == MAX_CONNECTIONS, f"{MAX_CONNECTIONS - closed} connections still open"
    peak = _status_kb(pid, "VmHWM")
    assert peak < RSS_LIMIT_KB, f"peak RSS {peak} kB (at rest {at_rest} kB)"
    assert serve.get("/live").status == 200  # still serving


class Reconnecting:
    """``count`` clients from one address that connect, say nothing, and connect again as soon
    as the server drops them, until stopped; one thread, ``select`` over the sockets."""

    def __init__(self, url: str, count: int) -> None:
        self.url = url
        self.socks = [socket.create_connection(address(url), timeout=10) for _ in range(count)]
        self.reconnects = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            readable, _, _ = select.select(self.socks, [], [], 0.1)
            for sock in readable:
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                if data:
                    continue  # an answer (a 503 from a full server): the drop comes next
                sock.close()
                index = self.socks.index(sock)
                try:
                    self.socks[index] = socket.create_connection(address(self.url), timeout=10)
                except OSError:
                    self.socks[index] = socket.socket()  # never readable: tried no more
                    continue
                self.reconnects += 1

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        for sock in self.socks:
            sock.close()


def _probe(url: str) -> bytes:
    """One probe: kubelet's request, and its answer up to the server's close (10 s at most)."""
    with socket.create_connection(address(url), timeout=10) as sock:
        sock.sendall(PROBE)
        chunks = []
        with contextlib.suppress(OSError):  # a reset: no answer
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    return b"".join(chunks)


def test_probes_get_their_answer_while_64_reconnecting_clients_hold_the_slots(
    serve: ServeProcess,
) -> None:
    eventually(lambda: serve.get("/live").status == 200, what="serve observing")
    attackers = Reconnecting(serve.url, MAX_CONNECTIONS)
    try:
        answers = [_probe(serve.url) for _ in range(PROBES)]
        reconnects = attackers.reconnects
    finally:
        attackers.close()
    firsts = [a.split(b"\r\n", 1)[0].decode("latin-1") for a in answers]
    assert firsts == ["HTTP/1.1 200 OK"] * PROBES, firsts
    assert reconnects >= 1, "the clients were never dropped: did they hold the slots?"
