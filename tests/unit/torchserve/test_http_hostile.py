"""The client against answers no TorchServe gives: every byte sequence a loopback server sends
ends in an answer or a named error (``BadAnswer``, ``Unreachable``, a ``Rejected``), never
another exception, and no message quotes the token sent."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.json_strategies import json_values
from ts_health_handler._errors import ServerError
from ts_health_handler.monitor._exit import UsageError
from ts_health_handler.monitor._settings import clean_token
from ts_health_handler.torchserve._answers import KeyFileError, Keys
from ts_health_handler.torchserve._api import shape_error
from ts_health_handler.torchserve._client import Api, TorchServeClient
from ts_health_handler.torchserve._http import BadAnswer, Response, request

TOKEN = "tok-5e1f0c2a9b7d"
#: The issue's answer: nested deeper than Python's recursion limit.
DEEP = b"[" * 200_000


class Echoing:
    """A loopback server answering every connection: it reads the request's head, sends
    :attr:`answer` (``None``: the request itself, as a body that is not JSON) and closes."""

    def __init__(self) -> None:
        self.answer: bytes | None = b""
        self.requests: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with connection:
                try:
                    connection.settimeout(5)
                    head = b""
                    while b"\r\n\r\n" not in head:
                        chunk = connection.recv(65536)
                        if not chunk:
                            break
                        head += chunk
                    self.requests.append(head)
                    answer = self.answer
                    if answer is None:
                        answer = b"HTTP/1.1 502 Bad Gateway\r\n\r\n" + head * 3
                    connection.sendall(answer)
                    connection.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes accept(); close() alone does not
        self.listener.close()
        self.thread.join(5)


@pytest.fixture(scope="module")
def server() -> Iterator[Echoing]:
    started = Echoing()
    yield started
    started.close()


def get(server: Echoing, answer: bytes | None) -> Response:
    server.answer = answer
    return request("GET", server.url + "/models/m", timeout=5, where="the server")


def client(server: Echoing, token: str | None = TOKEN) -> TorchServeClient:
    return TorchServeClient(
        Api("inference API", server.url, token),
        Api("management API", server.url, token),
        request_timeout=5,
        describe_timeout=5,
    )


OK = b"HTTP/1.1 200 OK\r\n"


@pytest.mark.parametrize(
    ("head", "why"),
    [
        (b"Content-Length: \xb2", "Content-Length '\xb2'"),  # "²" in Latin-1: isdigit() is True
        (b"Content-Length: " + b"1" * 4301, "a Content-Length of 4301 digits"),
        (b"Content-Length: 2\r\nContent-Length: 5", "differing Content-Length values 2 and 5"),
        (b"Content-Length: 2, 5", "differing Content-Length values 2 and 5"),
        (b"content-length: 5\r\nContent-Length: 2", "differing Content-Length values 2 and 5"),
        (
            b"Transfer-Encoding: gzip, chunked",
            "Transfer-Encoding 'gzip, chunked'; only chunked is understood",
        ),
        (
            b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
            "Transfer-Encoding 'chunked, chunked'; only chunked is understood",
        ),
        (
            b"Transfer-Encoding: xchunked",
            "Transfer-Encoding 'xchunked'; only chunked is understood",
        ),
    ],
)
def test_framing_no_one_should_send_is_refused(server: Echoing, head: bytes, why: str) -> None:
    with pytest.raises(BadAnswer) as caught:
        get(server, OK + head + b"\r\n\r\n[1, 2, 3]")
    assert str(caught.value) == (
        f"the server answered GET /models/m with something that is not HTTP ({why})"
    )


@pytest.mark.parametrize(
    "head",
    [
        b"Content-Length: 5\r\nContent-Length: 5",
        b"Content-Length: 5, 5",
        b"Content-Length: 005",
        b"Transfer-Encoding: Chunked\r\nContent-Length: 2",  # chunked overrides the length
    ],
)
def test_framing_that_agrees_is_read(server: Echoing, head: bytes) -> None:
    body = b"6\r\n[1, 2]\r\n0\r\n\r\n" if b"Chunked" in head else b"[1, 2]"
    assert get(server, OK + head + b"\r\n\r\n" + body).body.startswith(b"[1, 2")


def test_json_nested_deeper_than_python_goes_is_a_bad_answer(server: Echoing) -> None:
    answer = OK + b"Content-Type: application/json\r\n\r\n" + DEEP
    response = get(server, answer)
    with pytest.raises(BadAnswer, match=r"^expected JSON, got HTTP 200: '\[\[\["):
        response.json()
    assert response.error_fields()[0] is None
    with pytest.raises(BadAnswer, match=r"answered GET /ping with 200 and a body that is not"):
        client(server).ping()
    server.answer = b"HTTP/1.1 404 Not Found\r\n\r\n" + DEEP
    with pytest.raises(BadAnswer, match=r"answered GET /models/m with 404: \[\[\["):
        client(server).describe_json("m")


def test_json_parsed_but_too_deep_to_show_again_is_a_bad_answer(server: Echoing) -> None:
    deep: list[object] = []
    for _ in range(100_000):  # parsed where the stack was shallow; json.dumps recurses too
        deep = [deep]
    error = shape_error(Api("management API", server.url), "/ping", "an object", deep)
    assert str(error) == (
        f"the management API at {server.url} answered GET /ping with a list nested too deep "
        "to show; expected an object"
    )
    server.answer = OK + b"\r\n" + b"[" * 990 + b"]" * 990  # near the limit, either way
    with pytest.raises(BadAnswer):
        client(server).ping()


def test_a_server_echoing_the_request_never_shows_the_token(server: Echoing) -> None:
    for call in (
        lambda c: c.ping(),
        lambda c: c.models(),
        lambda c: c.describe_all("m"),
        lambda c: c.infer("m", b"x"),
    ):
        server.answer = None
        with pytest.raises(ServerError) as caught:
            call(client(server))
        assert TOKEN not in str(caught.value)
        assert "Bearer <redacted>" in str(caught.value) or "<redacted>" in str(caught.value)
    server.answer = None
    document, why = client(server).customized_status("m", "1.0")
    assert document is None
    assert why is not None
    assert "<redacted>" in why
    assert TOKEN not in why
    assert all(TOKEN.encode() in sent for sent in server.requests[-5:])  # it was sent


def test_a_token_cut_in_two_by_a_long_echo_is_redacted_first(server: Echoing) -> None:
    # Where the 120 characters of a body that is not JSON are cut, the token is already gone.
    for padding in range(0, 160, 7):
        server.answer = (
            b"HTTP/1.1 418 Teapot\r\n\r\n" + b"x" * padding + f"Bearer {TOKEN} ".encode() * 3
        )
        with pytest.raises(BadAnswer) as caught:
            client(server).ping()
        for cut in range(6, len(TOKEN) + 1):
            assert TOKEN[:cut] not in str(caught.value), (padding, str(caught.value))


def test_header_names_are_merged_whatever_their_case(server: Echoing) -> None:
    server.answer = OK + b"Content-Length: 0\r\n\r\n"
    Api("management API", server.url, TOKEN).call(
        "GET", "/x", 5, headers={"authorization": "Bearer other", "user-agent": "me"}
    )
    sent = server.requests[-1].decode("latin-1").split("\r\n")
    assert [line for line in sent if line.lower().startswith("authorization:")] == [
        "Authorization: Bearer other"
    ]
    assert [line for line in sent if line.lower().startswith("user-agent:")] == ["User-Agent: me"]


def test_a_header_value_beyond_latin_1_is_a_value_error_without_the_value() -> None:
    with pytest.raises(ValueError, match=r"^invalid value of header Authorization: it holds a ch"):
        request("GET", "http://127.0.0.1:9/", timeout=1, headers={"Authorization": "Bearer \u20ac"})


def test_a_token_that_is_not_ascii_is_refused_before_it_is_sent(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"^invalid token from --token: it holds a character th"):
        clean_token("t\u20acken", "--token")
    path = tmp_path / "key_file.json"
    path.write_text('{"management": {"key": "k\u20ac"}, "inference": {"key": "i"}}')
    with pytest.raises(KeyFileError, match="the management key holds a character that is not"):
        Keys.from_key_file(path)


# -- any answer at all ----------------------------------------------------------------------

_NAMES = st.sampled_from(
    ["Content-Length", "content-length", "Transfer-Encoding", "Content-Type", "X", ""]
)
_VALUES = st.one_of(
    st.sampled_from(
        ["0", "5", "17", "chunked", "Chunked", "gzip, chunked", "chunked, gzip", "\xb2", "²"]
    ),
    st.integers(min_value=0, max_value=10**30).map(str),
    st.just("9" * 4400),
    st.text(max_size=20),
)
_STATUS = st.one_of(
    st.sampled_from(
        [
            b"HTTP/1.1 200 OK",
            b"HTTP/1.1 404 Not Found",
            b"HTTP/1.0 500 Internal Server Error",
            b"HTTP/1.1 400 Bad Request",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK",
            b"HTTP/1.1 204 No Content",
            b"HTTP/1.1 101 Switching",
            b"HTTP/1.1 2000",
        ]
    ),
    st.binary(max_size=30),
)
_BODIES = st.one_of(
    st.binary(max_size=200),
    json_values().map(lambda v: json.dumps(v).encode()),
    st.sampled_from([DEEP, b"{" * 5000, b'{"models": ' * 3000, b"5\r\n[1, 2]\r\n0\r\n\r\n"]),
    st.builds(
        lambda size, data: f"{size:x}\r\n".encode() + data + b"\r\n0\r\n\r\n",
        st.integers(min_value=0, max_value=300),
        st.binary(max_size=300),
    ),
)


def _answer(status: bytes, headers: list[tuple[str, str]], body: bytes) -> bytes:
    head = b"".join(f"{n}: {v}\r\n".encode("utf-8", "surrogateescape") for n, v in headers)
    return status + b"\r\n" + head + b"\r\n" + body


ANSWERS = st.one_of(
    st.builds(_answer, _STATUS, st.lists(st.tuples(_NAMES, _VALUES), max_size=5), _BODIES),
    st.binary(max_size=500),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(answer=ANSWERS)
def test_any_answer_is_an_answer_or_a_named_error(server: Echoing, answer: bytes) -> None:
    server.answer = answer
    try:
        response = request("GET", server.url + "/ping", timeout=5)
    except ServerError:  # BadAnswer, Unreachable
        pass
    else:
        with contextlib.suppress(BadAnswer):
            response.json()
        response.error_summary()
    asking = client(server)
    messages: list[str] = []
    for ask in (
        asking.ping,
        asking.models,
        lambda: asking.describe_all("m"),
        lambda: asking.describe("m", "1.0", customized=True),
        lambda: asking.customized_status("m", "1.0"),
    ):
        try:
            ask()
        except ServerError as exc:  # BadAnswer, Unreachable, Rejected and its kin
            messages.append(str(exc))
    assert not [m for m in messages if TOKEN in m]
