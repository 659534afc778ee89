"""``torchserve._http.request`` against a scripted raw socket: framing, limits, deadlines, and
what is sent."""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ts_health_handler.torchserve import _http
from ts_health_handler.torchserve._http import BadAnswer, Unreachable, request

#: Sends an answer on an accepted connection whose request was read.
Script = Callable[[socket.socket], None]


class RawServer:
    """One loopback listener; each connection reads the request's head, then runs ``script``."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.requests: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            connection, _ = self.listener.accept()
        except OSError:
            return
        with connection:
            connection.settimeout(5)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = connection.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head, _, rest = data.partition(b"\r\n\r\n")
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                        while len(rest) < length:
                            rest += connection.recv(65536)
                self.requests.append(data if not rest else head + b"\r\n\r\n" + rest)
                self.script(connection)
            except OSError:
                pass

    def close(self) -> None:
        self.listener.close()
        self.thread.join(5)


@pytest.fixture
def serve() -> Iterator[Callable[[Script], RawServer]]:
    servers: list[RawServer] = []

    def start(script: Script) -> RawServer:
        server = RawServer(script)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def sends(data: bytes) -> Script:
    return lambda connection: connection.sendall(data)


def get(server: RawServer, path: str = "/models/m", timeout: float = 5.0, **kwargs: Any) -> Any:
    return request("GET", server.url + path, timeout=timeout, where="the server", **kwargs)


def test_a_body_framed_by_content_length(serve: Callable[[Script], RawServer]) -> None:
    server = serve(
        sends(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: 7\r\n\r\n[1, 2]\n"
        )
    )
    answer = get(server)
    assert (answer.status, answer.body) == (200, b"[1, 2]\n")
    assert answer.headers == {"Content-Type": "application/json", "Content-Length": "7"}
    assert answer.json() == [1, 2]


def test_a_chunked_body_with_extensions_and_trailers(serve: Callable[[Script], RawServer]) -> None:
    body = b"4;name=x\r\n[1, \r\nA\r\n2, 3, 4, 5\r\n1\r\n]\r\n0\r\nX-Trailer: y\r\n\r\n"
    server = serve(sends(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body))
    assert get(server).json() == [1, 2, 3, 4, 5]


def test_a_body_up_to_the_end_of_the_connection(serve: Callable[[Script], RawServer]) -> None:
    server = serve(sends(b'HTTP/1.0 500 Internal Server Error\nX-A: 1\n\n{"a": 1}'))
    answer = get(server)
    assert (answer.status, answer.json(), answer.headers) == (500, {"a": 1}, {"X-A": "1"})


def test_interim_answers_are_skipped(serve: Callable[[Script], RawServer]) -> None:
    server = serve(
        sends(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nX-B:  folded\r\n  on\r\n\r\n"
        )
    )
    answer = get(server)
    assert (answer.status, answer.body, answer.headers) == (204, b"", {"X-B": "folded on"})


def test_what_is_sent(serve: Callable[[Script], RawServer]) -> None:
    server = serve(sends(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
    request(
        "POST",
        server.url + "/models?url=m.mar&initial_workers=1",
        timeout=5,
        headers={"Authorization": "Bearer k"},
    )
    port = server.url.rsplit(":", 1)[1]
    assert server.requests == [
        b"POST /models?url=m.mar&initial_workers=1 HTTP/1.1\r\n"
        + f"Host: 127.0.0.1:{port}\r\n".encode()
        + b"Accept: application/json\r\n"
        + f"User-Agent: ts-health/{_http.__version__}\r\n".encode()
        + b"Connection: close\r\nAuthorization: Bearer k\r\nContent-Length: 0\r\n\r\n"
    ]


def test_a_body_is_sent_with_its_length(serve: Callable[[Script], RawServer]) -> None:
    server = serve(sends(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
    request("PUT", server.url + "/x", timeout=5, body=b"abc")
    assert server.requests[0].endswith(b"Content-Length: 3\r\n\r\nabc")


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (b"SSH-2.0-OpenSSH_9.6\r\n", "a bad status line"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "a bad status line"),
        (b"HTTP/1.1 099 Low\r\n\r\n", "a bad status line"),
        (b"HTTP/1.1 200", "the answer ends within its status line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10", "the answer ends within its headers"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345", "the body ends before its length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length '-1'"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "a bad chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x1\r\n", "a bad chunk size"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
            "a chunk longer than its size",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n",
            "the body ends before its last chunk",
        ),
        (b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 101 + b"\r\n", "more than 100 header lines"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"y" * 70000, "a line longer than 65536 bytes"),
    ],
)
def test_not_http(serve: Callable[[Script], RawServer], answer: bytes, why: str) -> None:
    server = serve(sends(answer))
    with pytest.raises(BadAnswer) as caught:
        get(server)
    assert str(caught.value) == (
        f"the server answered GET /models/m with something that is not HTTP ({why})"
    )


def test_a_body_too_long(
    serve: Callable[[Script], RawServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_http, "BODY_LIMIT", 10)
    for answer in (
        b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 11,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nxxxxxx\r\n6\r\nxxxxxx\r\n",
    ):
        server = serve(sends(answer))
        with pytest.raises(BadAnswer, match=r"answered GET /models/m with more than 0 MiB$"):
            get(server)


def test_closed_before_answering(serve: Callable[[Script], RawServer]) -> None:
    server = serve(lambda connection: None)
    with pytest.raises(Unreachable) as caught:
        get(server)
    assert str(caught.value) == "the server closed the connection without answering GET /models/m"


def test_a_trickling_answer_is_cut_at_the_deadline(serve: Callable[[Script], RawServer]) -> None:
    def trickle(connection: socket.socket) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(100):
            connection.sendall(b" ")
            time.sleep(0.05)

    server = serve(trickle)
    started = time.monotonic()
    with pytest.raises(
        Unreachable, match=r"^the server did not answer GET /models/m within 0.5 s$"
    ):
        get(server, timeout=0.5)
    assert time.monotonic() - started < 2.0


def test_connection_refused() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{unused.getsockname()[1]}/ping"
    with pytest.raises(Unreachable, match=r"^cannot connect to http://127.0.0.1:\d+: connection"):
        request("GET", url, timeout=5)


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/models/a b", {}),
        ("/models/m", {"Authorization": "Bearer secret\r\nX-Injected: 1"}),
        ("/models/m", {"Bad Name": "x"}),
    ],
)
def test_no_line_breaks_or_controls_are_sent(path: str, headers: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="invalid") as caught:
        request("GET", "http://127.0.0.1:9/" + path.lstrip("/"), timeout=1, headers=headers)
    assert "secret" not in str(caught.value)


def test_an_https_url_speaks_tls() -> None:
    # A plain-HTTP server on an https URL: the TLS handshake fails, and says so.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]

    def plain() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=plain, daemon=True)
    thread.start()
    try:
        with pytest.raises(Unreachable, match=rf"^cannot reach https://127.0.0.1:{port}: .*SSL"):
            request("GET", f"https://127.0.0.1:{port}/ping", timeout=5)
    finally:
        thread.join(5)
        listener.close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_https_to_a_server_of_its_own_ca_through_ssl_cert_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def tls() -> None:
        for _ in range(2):
            connection, _ = listener.accept()
            with contextlib.suppress(OSError), context.wrap_socket(connection, True) as wrapped:
                wrapped.recv(65536)
                wrapped.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")

    thread = threading.Thread(target=tls, daemon=True)
    thread.start()
    url = f"https://127.0.0.1:{port}/ping"
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "no-such-file.pem"))
        with pytest.raises(Unreachable, match="CERTIFICATE_VERIFY_FAILED"):
            request("GET", url, timeout=10)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        assert request("GET", url, timeout=10).json() == {}
    finally:
        thread.join(10)
        listener.close()
