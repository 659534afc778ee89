"""The bounds of ``ts-health serve``'s HTTP server, over real loopback sockets: a client that
trickles its request, or never reads the answer, loses its connection slot after about the
deadline; one still sending its head is displaced by a newer connection when the slots are
full, so slow clients cannot starve kubelet's probes of slots; a head is bounded in bytes."""

from __future__ import annotations

import contextlib
import json
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tests.support.serve_support import address, eventually, get, raw
from ts_health_handler.serve._http_server import (
    CONTENT_SECURITY_POLICY,
    MAX_CONNECTIONS,
    MAX_HEAD,
    HttpListener,
)
from ts_health_handler.serve._routes import Answer, Request

DEADLINE = 0.5
#: Generous: a client dropped by the deadline is gone well before this many seconds.
CUT_OFF = DEADLINE + 2.5
#: A request that never ends: a client sends at most a few hundred bytes of it.
ENDLESS = b"GET /live HTTP/1.1\r\nX-Slow: " + b"a" * 4000
BIG = b"x" * (32 << 20)  # more than the sockets' buffers hold: sending it blocks


def _answer(request: Request) -> Answer:
    return Answer(200, "text/plain", BIG if request.target == "/big" else b"ok\n")


@contextlib.contextmanager
def listening(
    answer: Callable[[Request], Answer] = _answer, *, deadline: float = DEADLINE, **extra: int
) -> Iterator[HttpListener]:
    server = HttpListener(
        ("127.0.0.1", 0), answer, head_deadline=deadline, answer_deadline=deadline, **extra
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@contextlib.contextmanager
def serving(
    answer: Callable[[Request], Answer] = _answer, *, deadline: float = DEADLINE, **extra: int
) -> Iterator[str]:
    with listening(answer, deadline=deadline, **extra) as server:
        yield server.url


def status(url: str, seen: list[int | None], path: str = "/live") -> int | None:
    """The status of one GET, or None when the server closed first (a 503 may come as a reset)."""
    try:
        code: int | None = get(url, path).status
    except OSError:
        code = None
    seen.append(code)
    return code


def trickle(socks: list[socket.socket], started: float, every: float) -> list[float | None]:
    """Send each socket one more byte of :data:`ENDLESS` every ``every`` seconds until the
    server drops it (EOF or reset), for at most :data:`CUT_OFF` seconds after ``started``.

    Returns, per socket, the seconds from ``started`` to its drop (None: not dropped). A socket
    that receives anything is recorded as not dropped: these clients must get no answer.
    """
    dropped: dict[socket.socket, float | None] = {}
    end = started + CUT_OFF
    sent = 0
    while len(dropped) < len(socks) and time.monotonic() < end:
        for sock in socks:
            if sock not in dropped:
                with contextlib.suppress(OSError):  # a reset shows as EOF or an error below
                    sock.send(ENDLESS[sent : sent + 1])
        sent += 1
        tick = min(time.monotonic() + every, end)
        while (live := [s for s in socks if s not in dropped]) and (
            left := tick - time.monotonic()
        ) > 0:
            readable, _, _ = select.select(live, [], [], left)
            for sock in readable:
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                dropped[sock] = None if data else time.monotonic() - started
    return [dropped.get(sock) for sock in socks]


def test_slow_clients_are_dropped_at_the_deadline_and_a_probe_gets_through() -> None:
    with serving(deadline=1.0) as url:
        started = time.monotonic()
        slow = [socket.create_connection(address(url), timeout=10) for _ in range(MAX_CONNECTIONS)]
        try:
            drops = trickle(slow, started, every=0.2)
        finally:
            for sock in slow:
                sock.close()
        assert get(url, "/live").status == 200
    assert len(drops) == MAX_CONNECTIONS
    assert all(d is not None and 0.9 <= d < 1.0 + CUT_OFF for d in drops), drops


def test_a_probe_past_clients_holding_every_slot_displaces_the_oldest() -> None:
    with listening(deadline=60.0) as server:
        slow = [
            socket.create_connection(address(server.url), timeout=10)
            for _ in range(MAX_CONNECTIONS)
        ]
        try:
            for sock in slow:
                sock.sendall(ENDLESS[:100])  # a head begun, never ended
            eventually(lambda: len(server.slots) == MAX_CONNECTIONS, 10, "every slot taken")
            assert get(server.url, "/live").status == 200  # at once: not 503, not after a drop
            assert slow[0].recv(65536) == b""  # the oldest: shut down, without an answer
            readable, _, _ = select.select(slow[1:], [], [], 0)
            assert readable == []  # the others keep their slots
            assert server.slots.displaced == 1
        finally:
            for sock in slow:
                sock.close()


def test_connections_being_answered_are_never_displaced() -> None:
    with listening(max_connections=1) as server, socket.socket() as stalled:
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(address(server.url))
        stalled.sendall(b"GET /big HTTP/1.1\r\n\r\n")  # a whole head: answered, not idle
        _answer_begun(stalled)
        reply = raw(server.url, b"GET /live HTTP/1.1\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 503 ")
        assert reply.endswith(b'{"error": "too many connections, retry later"}\n')
        assert server.slots.displaced == 0


def test_a_trickling_client_is_cut_off_after_the_deadline() -> None:
    with serving() as url:
        started = time.monotonic()
        with socket.create_connection(address(url), timeout=10) as sock:
            (dropped,) = trickle([sock], started, every=DEADLINE / 5)
    assert dropped is not None, "still connected, without an answer, after the cut-off"
    assert DEADLINE * 0.9 <= dropped < CUT_OFF


def _answer_begun(sock: socket.socket) -> None:
    """Wait (bounded) until the server sends ``sock`` its answer: its head was read whole."""
    readable, _, _ = select.select([sock], [], [], 10)
    assert readable, "no answer begun within 10 s"


def test_a_client_that_never_reads_the_answer_loses_its_slot() -> None:
    with serving(max_connections=1) as url, socket.socket() as stalled:
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(address(url))
        stalled.sendall(b"GET /big HTTP/1.1\r\n\r\n")
        _answer_begun(stalled)
        seen: list[int | None] = []
        eventually(lambda: status(url, seen) == 200, CUT_OFF, "a 200 past a stalled reader")
    assert 503 in seen, seen  # the stalled reader did hold the only slot for a while


def test_a_normal_request_is_unaffected() -> None:
    with serving() as url:
        reply = get(url, "/live")
        assert (reply.status, reply.body) == (200, b"ok\n")
        big = raw(url, b"GET /big HTTP/1.1\r\n\r\n")  # read at once: all of it
        assert big.endswith(b"\r\n\r\n" + BIG)
        with socket.create_connection(address(url), timeout=10) as sock:
            for piece in (b"GET /live HT", b"TP/1.1\r\nHost: x\r", b"\n\r\n"):
                sock.sendall(piece)
                time.sleep(DEADLINE / 10)  # in pieces, well within the deadline
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")


@pytest.mark.parametrize("name", ["head_deadline", "answer_deadline"])
def test_the_deadlines_must_be_positive(name: str) -> None:
    with pytest.raises(ValueError, match=f"^{name} must be positive, not 0$"):
        HttpListener(("127.0.0.1", 0), _answer, **{name: 0})  # type: ignore[arg-type]


def _head_of(size: int) -> bytes:
    """A request head of exactly ``size`` bytes, in header lines of about 200 bytes: far
    below ``http.server``'s own bounds (64 KiB a line, 100 lines)."""
    start, end = b"GET /live HTTP/1.1\r\n", b"\r\n"
    lines = []
    left = size - len(start) - len(end)
    while left > 0:
        line = min(200, left)
        if left - line < 8 and left != line:  # no stub too short for a header
            line = left - 8
        value = b"v" * (line - len(b"X-0000: \r\n"))
        lines.append(b"X-%04d: " % len(lines) + value + b"\r\n")
        left -= line
    head = start + b"".join(lines) + end
    assert len(head) == size
    return head


def test_a_head_past_its_byte_budget_is_431_and_one_within_it_is_answered() -> None:
    with serving() as url:
        assert raw(url, _head_of(MAX_HEAD)).startswith(b"HTTP/1.1 200 ")
        reply = raw(url, _head_of(MAX_HEAD + 1))
    assert reply.startswith(b"HTTP/1.1 431 ")
    assert json.loads(reply.split(b"\r\n\r\n", 1)[1]) == {
        "error": f"request head longer than {MAX_HEAD} bytes"
    }


def test_an_answer_that_raises_is_a_500() -> None:
    def broken(request: Request) -> Answer:
        raise KeyError("a bug")

    with serving(broken) as url:
        reply = get(url, "/live")
    assert reply.status == 500
    assert reply.json() == {"error": "internal error: KeyError"}


def test_the_headers_of_every_answer() -> None:
    with serving() as url:
        reply = get(url, "/live")
    assert reply.headers["Server"] == "ts-health"
    assert reply.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
