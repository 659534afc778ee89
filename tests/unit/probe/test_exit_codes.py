"""``ts-health ping``, and every way of not getting an answer from TorchServe: one clear line with
the documented exit code, never a traceback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.describes import describe
from tests.support.fake_torchserve import FakeTorchServe
from tests.unit.probe.helpers import Result, closed_port, customized, document
from ts_health_handler.probe import ExitCode


def test_ping_alive(ts_health: Callable[..., Result]) -> None:
    result = ts_health("ping")
    assert result.code == ExitCode.OK
    assert result.lines == [
        f"alive: the inference API at {result.out.split()[5]} answered /ping: Healthy"
    ]


def test_ping_unhealthy(fake: FakeTorchServe, ts_health: Callable[..., Result]) -> None:
    fake.on("/ping", (500, {"status": "Unhealthy"}))
    result = ts_health("ping", "--json")
    assert result.code == ExitCode.NOT_READY
    assert result.json() == {
        "command": "ping",
        "exit_code": 1,
        "healthy": False,
        "status": "Unhealthy",
    }


def test_connection_refused(ts_health: Callable[..., Result]) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = ts_health("ping", "--inference-url", url, connect=False)
    assert result.code == ExitCode.UNREACHABLE
    assert result.lines == [
        f"ts-health: unreachable: cannot connect to the inference API at {url}: connection refused"
    ]


def test_status_with_management_unreachable(ts_health: Callable[..., Result]) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = ts_health("status", "--management-url", url, "--inference-url", url, connect=False)
    assert result.code == ExitCode.UNREACHABLE
    # The answer on stdout, every error on stderr.
    assert result.out.splitlines() == [
        f"unreachable: cannot connect to the management API at {url}: connection refused"
    ]
    assert result.err.splitlines() == [
        f"ts-health: unreachable: cannot connect to the inference API at {url}: connection refused",
        f"ts-health: unreachable: cannot connect to the management API at {url}: "
        "connection refused",
    ]


def test_ready_reports_an_unreachable_model(ts_health: Callable[..., Result]) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = ts_health("ready", "m", "--management-url", url, connect=False)
    assert result.code == ExitCode.UNREACHABLE
    # The verdict is the answer (stdout); the error that caused it goes to stderr as well.
    assert result.out.splitlines() == [
        f"unreachable: model m ?: cannot connect to the management API at {url}: connection refused"
    ]
    assert result.err.splitlines() == [
        f"ts-health: unreachable: cannot connect to the management API at {url}: connection refused"
    ]


def test_not_ready_is_an_answer_not_an_error(
    fake: FakeTorchServe, ts_health: Callable[..., Result]
) -> None:
    fake.on("/models/m", (200, describe("UNLOADING")))
    result = ts_health("ready", "m")
    assert result.code == ExitCode.NOT_READY
    assert result.out.startswith("initializing: model m 1.0:")
    assert result.err == ""


def test_errors_go_to_stderr_also_with_json(ts_health: Callable[..., Result]) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    for command in (["ping"], ["ready", "m"], ["status"]):
        result = ts_health(
            *command, "--json", "--inference-url", url, "--management-url", url, connect=False
        )
        assert result.code == ExitCode.UNREACHABLE, command
        assert result.json()["exit_code"] == ExitCode.UNREACHABLE, command
        assert result.err.startswith("ts-health: unreachable: cannot connect to the "), command


def test_timeout_is_bounded(fake: FakeTorchServe, ts_health: Callable[..., Result]) -> None:
    fake.on("/models/m", (200, describe("READY")), delay=10)
    started = time.monotonic()
    result = ts_health("ready", "m", "--request-timeout", "0.3")
    assert time.monotonic() - started < 2
    assert result.code == ExitCode.UNREACHABLE
    assert result.out.splitlines() == [
        f"unreachable: model m ?: the management API at {fake.url} did not answer "
        "GET /models/m within 0.3 s"
    ]


def test_slow_customized_describe_leaves_the_status_unknown(
    fake: FakeTorchServe, ts_health: Callable[..., Result]
) -> None:
    fake.on("/models/m/1.0?customized=true", (200, customized(document())), delay=10)
    started = time.monotonic()
    result = ts_health("ready", "m", "--describe-timeout", "0.3")
    assert time.monotonic() - started < 2
    assert result.code == ExitCode.OK
    (line,) = result.lines
    assert line.startswith("ready: model m 1.0: 1/1 workers READY")
    assert "health status unknown: customized describe failed:" in line
    assert "did not answer GET /models/m/1.0?customized=true within 0.3 s" in line


def test_non_json_answer(fake: FakeTorchServe, ts_health: Callable[..., Result]) -> None:
    fake.on("/models/m", (200, b"<html>proxy error</html>"))
    result = ts_health("ready", "m")
    assert result.code == ExitCode.BAD_ANSWER
    assert result.lines == [
        f"ts-health: bad answer: the management API at {fake.url} answered GET /models/m "
        "with 200 and a body that is not JSON: '<html>proxy error</html>'"
    ]


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("/models/m", {"models": []}, "expected a list of models"),
        ("/models/m", [], "expected a list of models"),
        ("/models/m", [{"modelName": "m", "workers": [{"id": "1"}]}], "expected a list of models"),
        ("/models/m", [{"modelName": "m"}], "expected a list of models"),
        ("/ping", ["Healthy"], 'expected an object like {"status": "Healthy"}'),
    ],
)
def test_wrong_shaped_answers(
    fake: FakeTorchServe,
    ts_health: Callable[..., Result],
    path: str,
    body: Any,
    expected: str,
) -> None:
    fake.on(path, (200, body))
    result = ts_health("ping" if path == "/ping" else "ready", *([] if path == "/ping" else ["m"]))
    assert result.code == ExitCode.BAD_ANSWER
    (line,) = result.lines
    assert line.startswith("ts-health: bad answer: ")
    assert expected in line


def test_wrong_shaped_model_list(fake: FakeTorchServe, ts_health: Callable[..., Result]) -> None:
    fake.on("/models?limit=100", (200, {"models": [{"name": "m"}]}))
    result = ts_health("status")
    assert result.code == ExitCode.BAD_ANSWER
    assert 'expected an object like {"models": [{"modelName": ...}]}' in result.err


def test_an_answer_that_is_not_http(ts_health: Callable[..., Result]) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]

    def babble() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(1024)
            connection.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")

    thread = threading.Thread(target=babble, daemon=True)
    thread.start()
    try:
        result = ts_health("ping", "--inference-url", f"http://127.0.0.1:{port}", connect=False)
    finally:
        thread.join(5)
        listener.close()
    assert result.code == ExitCode.BAD_ANSWER
    assert result.lines == [
        f"ts-health: bad answer: the inference API at http://127.0.0.1:{port} answered "
        "GET /ping with something that is not HTTP (a bad status line)"
    ]


def test_unexpected_status_hints_at_the_wrong_port(
    fake: FakeTorchServe, ts_health: Callable[..., Result]
) -> None:
    fake.routes.pop("/ping")
    result = ts_health("ping")
    assert result.code == ExitCode.BAD_ANSWER
    assert result.lines == [
        f"ts-health: bad answer: the inference API at {fake.url} answered GET /ping with "
        "404 ResourceNotFoundException: /ping; expected 200 or 500; "
        f"is {fake.url} TorchServe's inference API address?"
    ]


def test_unknown_model(fake: FakeTorchServe, ts_health: Callable[..., Result]) -> None:
    fake.on(
        "/models/nope",
        (404, {"code": 404, "type": "ModelNotFoundException", "message": "Model not found: nope"}),
    )
    result = ts_health("ready", "nope")
    assert result.code == ExitCode.USAGE
    assert result.lines == [
        f"ts-health: error: model 'nope' is not registered with the management API at "
        f"{fake.url} (404 ModelNotFoundException: Model not found: nope)"
    ]


def test_unknown_version(fake: FakeTorchServe, ts_health: Callable[..., Result]) -> None:
    body = {"code": 404, "type": "ModelVersionNotFoundException", "message": "no 9.9"}
    fake.on("/models/m/9.9", (404, body))
    result = ts_health("status", "m", "--version", "9.9")
    assert result.code == ExitCode.USAGE
    assert "model 'm' version '9.9' is not registered" in result.err
