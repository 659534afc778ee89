"""``ts-health`` against a scripted fake TorchServe on loopback.

Every failure must be one clear line with the documented exit code, never a traceback, and a
token must never be printed.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_torchserve import FakeTorchServe, running
from tests.support.status_docs import status_doc
from ts_health_handler import cli, probe
from ts_health_handler.cli import run
from ts_health_handler.monitor._output import Io
from ts_health_handler.probe import (
    EXIT_BAD_ANSWER,
    EXIT_INTERNAL,
    EXIT_NOT_READY,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
)
from ts_health_handler.record import ErrorInfo, InitRecord, StateStore, utc_iso

NOW = 1_750_000_000.0
SECRET = "s3cr3t-T0KEN-value"


def describe(
    name: str = "m",
    version: str = "1.0",
    workers: tuple[str, ...] = ("READY",),
    remaining: int = 100,
    pending: int = 0,
    max_retry: int = 300,
) -> list[dict[str, Any]]:
    return [
        {
            "modelName": name,
            "modelVersion": version,
            "modelUrl": f"{name}.mar",
            "minWorkers": 1,
            "maxWorkers": 1,
            "maxRetryTimeoutInSec": max_retry,
            "workers": [{"id": "9000", "status": s, "pid": 42} for s in workers],
            "jobQueueStatus": {"remainingCapacity": remaining, "pendingRequests": pending},
        }
    ]


def customized(metadata: Any, name: str = "m") -> list[dict[str, Any]]:
    entry = describe(name)[0]
    entry["customizedMetadata"] = metadata
    return [entry]


def document(status: str = "ready", **extra: Any) -> dict[str, Any]:
    return status_doc(status, **extra)


@pytest.fixture
def fake() -> Iterator[FakeTorchServe]:
    with running() as server:
        server.on("/ping", (200, {"status": "Healthy"}))
        server.on("/models?limit=100", (200, {"models": [{"modelName": "m", "modelUrl": "m.mar"}]}))
        server.on("/models/m", (200, describe()))
        server.on("/models/m/1.0?customized=true", (200, customized(document())))
        yield server


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return [line for line in self.out.splitlines() + self.err.splitlines() if line]

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    return path


@pytest.fixture
def ts_health(
    fake: FakeTorchServe, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Result]:
    """Run ``ts-health`` in-process against ``fake``; connection options go last."""

    def call(
        *argv: str,
        env: dict[str, str] | None = None,
        connect: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall: Callable[[], float] = time.time,
    ) -> Result:
        args = list(argv)
        if connect:
            args += ["--inference-url", fake.url, "--management-url", fake.url]
            args += ["--state-dir", str(state_dir)]
        stdout, stderr = io.StringIO(), io.StringIO()
        code = run(
            args,
            environ=env or {},
            io=Io(stdout, stderr, clock=clock, wall=wall, sleep=sleep),
        )
        # argparse writes --help and usage errors to sys.stdout / sys.stderr itself.
        captured = capsys.readouterr()
        result = Result(code, stdout.getvalue() + captured.out, stderr.getvalue() + captured.err)
        assert "Traceback" not in result.out + result.err
        assert SECRET not in result.out + result.err
        return result

    return call


def record_failures(
    state_dir: Path, failures: int, *, first_at: float = NOW - 10, retrying: bool = False
) -> None:
    store = StateStore(state_dir, "m", "1.0")
    for attempt in range(1, failures + 1):
        at = first_at + attempt - 1

        def fail(previous: InitRecord | None, at: float = at, attempt: int = attempt) -> InitRecord:
            started = InitRecord.started(
                previous, model_name="m", model_version="1.0", now=at, worker_pid=100, server="1"
            )
            error = ErrorInfo("builtins.ValueError", "weights missing", utc_iso(at), attempt)
            return started.failed(error, now=at + 0.5, duration_s=0.5, worker_pid=100)

        store.update(fail)
    if retrying:
        store.update(
            lambda previous: InitRecord.started(
                previous, model_name="m", model_version="1.0", now=NOW, worker_pid=101, server="1"
            )
        )


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- ping ------------------------------------------------------------------------------------


def test_ping_alive(ts_health: Callable[..., Result]) -> None:
    result = ts_health("ping")
    assert result.code == EXIT_OK
    assert result.lines == [
        f"alive: the inference API at {result.out.split()[5]} answered /ping: Healthy"
    ]


def test_ping_unhealthy(fake: FakeTorchServe, ts_health: Callable[..., Result]) -> None:
    fake.on("/ping", (500, {"status": "Unhealthy"}))
    result = ts_health("ping", "--json")
    assert result.code == EXIT_NOT_READY
    assert result.json() == {
        "command": "ping",
        "exit_code": 1,
        "healthy": False,
        "status": "Unhealthy",
    }


def test_connection_refused(ts_health: Callable[..., Result]) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = ts_health("ping", "--inference-url", url, connect=False)
    assert result.code == EXIT_UNREACHABLE
    assert result.lines == [
        f"ts-health: unreachable: cannot connect to the inference API at {url}: connection refused"
    ]


def test_status_with_management_unreachable(ts_health: Callable[..., Result]) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = ts_health("status", "--management-url", url, "--inference-url", url, connect=False)
    assert result.code == EXIT_UNREACHABLE
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
    assert result.code == EXIT_UNREACHABLE
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
    fake.on("/models/m", (200, describe(workers=("UNLOADING",))))
    result = ts_health("ready", "m")
    assert result.code == EXIT_NOT_READY
    assert result.out.startswith("initializing: model m 1.0:")
    assert result.err == ""


def test_errors_go_to_stderr_also_with_json(ts_health: Callable[..., Result]) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    for command in (["ping"], ["ready", "m"], ["status"]):
        result = ts_health(
            *command, "--json", "--inference-url", url, "--management-url", url, connect=False
        )
        assert result.code == EXIT_UNREACHABLE, command
        assert result.json()["exit_code"] == EXIT_UNREACHABLE, command
        assert result.err.startswith("ts-health: unreachable: cannot connect to the "), command


def test_timeout_is_bounded(fake: FakeTorchServe, ts_health: Callable[..., Result]) -> None:
    fake.on("/models/m", (200, describe()), delay=10)
    started = time.monotonic()
    result = ts_health("ready", "m", "--request-timeout", "0.3")
    assert time.monotonic() - started < 2
    assert result.code == EXIT_UNREACHABLE
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
    assert result.code == EXIT_OK
    (line,) = result.lines
    assert line.startswith("ready: model m 1.0: 1/1 workers READY")
    assert "health status unknown: customized describe failed:" in line
    assert "did not answer GET /models/m/1.0?customized=true within 0.3 s" in line


def test_non_json_answer(fake: FakeTorchServe, ts_health: Callable[..., Result]) -> None:
    fake.on("/models/m", (200, b"<html>proxy error</html>"))
    result = ts_health("ready", "m")
    assert result.code == EXIT_BAD_ANSWER
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
    assert result.code == EXIT_BAD_ANSWER
    (line,) = result.lines
    assert line.startswith("ts-health: bad answer: ")
    assert expected in line


def test_wrong_shaped_model_list(fake: FakeTorchServe, ts_health: Callable[..., Result]) -> None:
    fake.on("/models?limit=100", (200, {"models": [{"name": "m"}]}))
    result = ts_health("status")
    assert result.code == EXIT_BAD_ANSWER
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
    assert result.code == EXIT_BAD_ANSWER
    assert result.lines == [
        f"ts-health: bad answer: the inference API at http://127.0.0.1:{port} answered "
        "GET /ping with something that is not HTTP (a bad status line)"
    ]


def test_unexpected_status_hints_at_the_wrong_port(
    fake: FakeTorchServe, ts_health: Callable[..., Result]
) -> None:
    fake.routes.pop("/ping")
    result = ts_health("ping")
    assert result.code == EXIT_BAD_ANSWER
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
    assert result.code == EXIT_USAGE
    assert result.lines == [
        f"ts-health: error: model 'nope' is not registered with the management API at "
        f"{fake.url} (404 ModelNotFoundException: Model not found: nope)"
    ]


def test_unknown_version(fake: FakeTorchServe, ts_health: Callable[..., Result]) -> None:
    body = {"code": 404, "type": "ModelVersionNotFoundException", "message": "no 9.9"}
    fake.on("/models/m/9.9", (404, body))
    result = ts_health("status", "m", "--version", "9.9")
    assert result.code == EXIT_USAGE
    assert "model 'm' version '9.9' is not registered" in result.err


# -- tokens ----------------------------------------------------------------------------------


def test_token_refused_on_ping(fake: FakeTorchServe, ts_health: Callable[..., Result]) -> None:
    fake.required["/ping"] = "Bearer right"
    result = ts_health("ping", "--token", SECRET)
    assert result.code == EXIT_USAGE
    assert fake.requests[-1] == ("/ping", f"Bearer {SECRET}")
    assert result.lines == [
        f"ts-health: error: the inference API at {fake.url} refused the token from --token "
        "for GET /ping (400 InvalidKeyException: Token Authorization failed. Token either "
        "incorrect, expired, or not provided correctly); keys change when TorchServe restarts "
        "or expire"
    ]


def test_token_missing(fake: FakeTorchServe, ts_health: Callable[..., Result]) -> None:
    fake.required["/models"] = "Bearer right"
    result = ts_health("ready", "m", "--json")
    assert result.code == EXIT_USAGE
    assert "wants a token for GET /models/m (400 InvalidKeyException" in result.err
    assert "--key-file" in result.err
    assert result.json()["exit_code"] == EXIT_USAGE


def test_the_client_names_no_option_and_the_command_line_adds_its_own(
    fake: FakeTorchServe,
) -> None:
    # The client serves ts-health serve and the test runner too: only ts-health adds its flags.
    from ts_health_handler.monitor._exit import message_for
    from ts_health_handler.torchserve._client import Api, KeyExpired, Refused, TorchServeClient

    fake.required["/models"] = "Bearer right"
    inference = Api("inference API", fake.url)
    without = TorchServeClient(inference, Api("management API", fake.url))
    with pytest.raises(Refused) as missing:
        without.describe("m")
    expiring = Api("management API", fake.url, "k", expires_at=NOW - 1, key_type="management")
    with pytest.raises(KeyExpired) as expired:
        TorchServeClient(inference, expiring, wall=lambda: NOW).describe("m")

    assert missing.value.missing
    assert expired.value.key_type == "management"
    assert "--" not in str(missing.value) + str(expired.value)
    assert message_for(missing.value) == (
        f"{missing.value}; pass --key-file with TorchServe's key_file.json (written in its "
        "working directory) or --token"
    )
    assert message_for(expired.value) == f"{expired.value}, or pass --renew-key"


def test_token_refused_in_status_is_not_hidden(
    fake: FakeTorchServe, ts_health: Callable[..., Result]
) -> None:
    fake.required["/ping"] = "Bearer right"
    result = ts_health("status", env={"TS_HEALTH_TOKEN": SECRET})
    assert result.code == EXIT_USAGE
    assert "refused the token from $TS_HEALTH_TOKEN" in result.err


def write_key_file(
    path: Path, management: str = "mgmt-" + SECRET, inference: str = "inf-" + SECRET
) -> Path:
    path.write_text(
        json.dumps(
            {
                "management": {"key": management, "expiration time": "2099-01-01T00:00:00Z"},
                "inference": {"key": inference, "expiration time": "2099-01-01T00:00:00Z"},
                "API": {"key": "api-" + SECRET},
            }
        )
    )
    return path


def test_key_file_gives_each_api_its_key(
    fake: FakeTorchServe, ts_health: Callable[..., Result], tmp_path: Path
) -> None:
    fake.required = {"/ping": f"Bearer inf-{SECRET}", "/models": f"Bearer mgmt-{SECRET}"}
    key_file = write_key_file(tmp_path / "key_file.json")
    result = ts_health("status", "--json", "--key-file", str(key_file))
    assert result.code == EXIT_OK, result.err
    assert result.json()["models"][0]["state"] == "ready"
    # From the environment as well.
    result = ts_health("ready", "m", env={"TS_HEALTH_KEY_FILE": str(key_file)})
    assert result.code == EXIT_OK


def test_refused_key_from_key_file(
    fake: FakeTorchServe, ts_health: Callable[..., Result], tmp_path: Path
) -> None:
    fake.required = {"/models": "Bearer fresh"}
    key_file = write_key_file(tmp_path / "key_file.json")
    result = ts_health("ready", "m", "--key-file", str(key_file))
    assert result.code == EXIT_USAGE
    assert f"refused the token from key file {key_file} for GET /models/m" in result.err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot read key file {path}: No such file or directory"),
        ("{not json", "key file {path} is not JSON; expected TorchServe's key_file.json"),
        ('{"management": {"key": "x"}}', "key file {path} has no inference key"),
        ("[]", "key file {path} has no management key"),
    ],
)
def test_bad_key_file(
    ts_health: Callable[..., Result], tmp_path: Path, content: str | None, expected: str
) -> None:
    path = tmp_path / "key_file.json"
    if content is not None:
        path.write_text(content)
    result = ts_health("ping", "--key-file", str(path))
    assert result.code == EXIT_USAGE
    (line,) = result.lines
    assert line.startswith("ts-health: error: " + expected.format(path=path))


# -- ready -----------------------------------------------------------------------------------


def test_ready(fake: FakeTorchServe, ts_health: Callable[..., Result]) -> None:
    result = ts_health("ready", "m")
    assert result.code == EXIT_OK
    assert result.lines == [
        "ready: model m 1.0: 1/1 workers READY, 0 pending, 100 free in the job queue"
    ]
    assert fake.asked("/models/m/1.0?customized=true")
    assert not fake.asked("/ping")


def test_ready_json(ts_health: Callable[..., Result], state_dir: Path) -> None:
    data = ts_health("ready", "m", "--json").json()
    assert data["command"] == "ready"
    assert data["exit_code"] == 0
    model = data["model"]
    assert model["state"] == "ready"
    assert model["ok"] is True
    assert model["status"]["status"] == "ready"
    # No record yet: the path is the directory where the version's records are looked for.
    assert model["record_path"] == str(state_dir / "m" / "1.0")


def test_ready_with_version(fake: FakeTorchServe, ts_health: Callable[..., Result]) -> None:
    fake.on("/models/m/2.0", (200, describe(version="2.0")))
    fake.on("/models/m/2.0?customized=true", (200, customized(document())))
    result = ts_health("ready", "m", "--version", "2.0")
    assert result.code == EXIT_OK
    assert result.out.startswith("ready: model m 2.0:")


def test_failing_shows_the_reason_without_asking_the_worker(
    fake: FakeTorchServe, ts_health: Callable[..., Result], state_dir: Path
) -> None:
    fake.on("/models/m", (200, describe(workers=("UNLOADING",))))
    record_failures(state_dir, 3, retrying=True)
    result = ts_health("ready", "m", wall=lambda: NOW)
    assert result.code == EXIT_NOT_READY
    assert result.lines == [
        "failing: model m 1.0: initialization failed 3 times in a row (0/1 workers READY; "
        "attempt 4 in progress): ValueError: weights missing"
    ]
    # TorchServe queues a customized describe to a worker: with none alive it never answers.
    assert not fake.asked("customized=true")


def test_unhealthy_past_max_retry_timeout(
    fake: FakeTorchServe, ts_health: Callable[..., Result], state_dir: Path
) -> None:
    fake.on("/models/m", (200, describe(workers=("UNLOADING",), max_retry=5)))
    record_failures(state_dir, 4, first_at=NOW - 30)
    result = ts_health("ready", "m", wall=lambda: NOW)
    assert result.code == EXIT_NOT_READY
    assert result.out.startswith(
        "unhealthy: model m 1.0: initialization failed 4 times in a row over 30 s, "
        "past maxRetryTimeoutInSec=5: ValueError: weights missing"
    )


def test_initializing(
    fake: FakeTorchServe, ts_health: Callable[..., Result], state_dir: Path
) -> None:
    fake.on("/models/m", (200, describe(workers=("UNLOADING",))))
    result = ts_health("ready", "m")
    assert result.code == EXIT_NOT_READY
    assert result.lines == [
        "initializing: model m 1.0: no READY worker yet (0/1 workers READY; no initialization "
        f"record in {state_dir / 'm' / '1.0'})"
    ]


def test_corrupt_record_is_a_detail(
    fake: FakeTorchServe, ts_health: Callable[..., Result], state_dir: Path
) -> None:
    fake.on("/models/m", (200, describe(workers=("UNLOADING",))))
    (state_dir / "m" / "1.0").mkdir(parents=True)
    (state_dir / "m" / "1.0" / "init.json").write_text("{")
    result = ts_health("ready", "m")
    assert result.code == EXIT_NOT_READY
    assert result.out.startswith("initializing: model m 1.0: no READY worker yet")
    assert "unreadable health record" in result.out


def test_saturated(fake: FakeTorchServe, ts_health: Callable[..., Result]) -> None:
    fake.on("/models/m", (200, describe(remaining=0, pending=100)))
    result = ts_health("ready", "m")
    assert result.code == EXIT_NOT_READY
    assert result.lines == [
        "saturated: model m 1.0: job queue full: 100 pending, 0 free (1/1 workers READY)"
    ]
    # The readiness policy of the Kubernetes example: a busy pod stays in the Service.
    result = ts_health("ready", "m", "--allow-saturated", "--json")
    assert result.code == EXIT_OK
    assert result.json()["model"]["state"] == "saturated"
    assert result.json()["model"]["ok"] is True
    assert ts_health("status", "m", "--allow-saturated").code == EXIT_OK
    # Each flag accepts its own state only.
    assert ts_health("ready", "m", "--allow-degraded").code == EXIT_NOT_READY


def test_degraded(fake: FakeTorchServe, ts_health: Callable[..., Result]) -> None:
    check = {"status": "failed", "result": False, "error": "backend down", "duration_s": 0.1}
    fake.on("/models/m/1.0?customized=true", (200, customized(document("degraded", check=check))))
    result = ts_health("ready", "m")
    assert result.code == EXIT_NOT_READY
    assert result.lines == [
        "degraded: model m 1.0: health check failed: backend down (1/1 workers READY)"
    ]
    assert ts_health("ready", "m", "--allow-degraded").code == EXIT_OK
    assert ts_health("ready", "m", "--allow-saturated").code == EXIT_NOT_READY


def test_metadata_as_a_json_string(fake: FakeTorchServe, ts_health: Callable[..., Result]) -> None:
    text = json.dumps(document("degraded"), indent=2)
    fake.on("/models/m/1.0?customized=true", (200, customized(text)))
    assert ts_health("ready", "m").out.startswith("degraded: ")


def test_held_failure(fake: FakeTorchServe, ts_health: Callable[..., Result]) -> None:
    init = {"error": {"type": "builtins.OSError", "message": "no weights", "at": "x", "attempt": 1}}
    fake.on(
        "/models/m/1.0?customized=true",
        (200, customized(document("failed", initialization=init))),
    )
    result = ts_health("ready", "m")
    assert result.code == EXIT_NOT_READY
    assert result.out.startswith("failing: model m 1.0: initialization failed and is held;")


@pytest.mark.parametrize(
    ("metadata", "why"),
    [
        ({}, "the handler reports no ts-health status"),
        ("not json", "customizedMetadata is not JSON"),
        ({"status": "Healthy"}, "customizedMetadata is not a ts-health status"),
    ],
)
def test_a_handler_without_our_status_is_not_a_failure(
    fake: FakeTorchServe, ts_health: Callable[..., Result], metadata: Any, why: str
) -> None:
    fake.on("/models/m/1.0?customized=true", (200, customized(metadata)))
    result = ts_health("ready", "m")
    assert result.code == EXIT_OK
    assert f"health status unknown: {why}" in result.out


def test_customized_describe_error_is_a_detail(
    fake: FakeTorchServe, ts_health: Callable[..., Result]
) -> None:
    body = {"code": 503, "type": "ServiceUnavailableException", "message": "queue full"}
    fake.on("/models/m/1.0?customized=true", (503, body))
    result = ts_health("ready", "m")
    assert result.code == EXIT_OK
    assert (
        "health status unknown: customized describe answered 503 "
        "ServiceUnavailableException: queue full" in result.out
    )


# -- status ----------------------------------------------------------------------------------


def two_models(fake: FakeTorchServe, state_dir: Path) -> None:
    fake.on(
        "/models?limit=100",
        (200, {"models": [{"modelName": "m", "modelUrl": "m.mar"}], "nextPageToken": "1"}),
    )
    fake.on(
        "/models?limit=100&next_page_token=1",
        (200, {"models": [{"modelName": "broken", "modelUrl": "broken.mar"}]}),
    )
    fake.on("/models/broken", (200, describe("broken", workers=("UNLOADING",))))
    store = StateStore(state_dir, "broken", "1.0")
    error = ErrorInfo("builtins.ValueError", "weights missing", utc_iso(NOW - 5), 1)
    store.update(
        lambda previous: InitRecord.started(
            previous,
            model_name="broken",
            model_version="1.0",
            now=NOW - 5,
            worker_pid=9,
            server="1",
        ).failed(error, now=NOW - 5, duration_s=0.1, worker_pid=9)
    )


def test_status_table(
    fake: FakeTorchServe, ts_health: Callable[..., Result], state_dir: Path
) -> None:
    two_models(fake, state_dir)
    result = ts_health("status", wall=lambda: NOW)
    assert result.code == EXIT_NOT_READY
    lines = result.out.splitlines()
    assert lines[0] == f"server {fake.url} (management {fake.url}): /ping Healthy"
    assert lines[1].split() == ["MODEL", "VERSION", "STATE", "WORKERS", "QUEUE", "REASON"]
    assert lines[2].split()[:5] == ["m", "1.0", "ready", "1/1", "0/100"]
    assert lines[3].split()[:5] == ["broken", "1.0", "failing", "0/1", "0/100"]
    assert "ValueError: weights missing" in lines[3]
    assert result.err == ""


def test_status_json_and_ping_unhealthy(
    fake: FakeTorchServe, ts_health: Callable[..., Result], state_dir: Path
) -> None:
    two_models(fake, state_dir)
    fake.on("/ping", (500, {"status": "Unhealthy"}))
    data = ts_health("status", "--json", wall=lambda: NOW).json()
    assert data["exit_code"] == EXIT_NOT_READY
    assert data["server"]["ping"] == {"healthy": False, "status": "Unhealthy"}
    states = {m["model"]: m["state"] for m in data["models"]}
    assert states == {"m": "ready", "broken": "unhealthy"}
    broken = next(m for m in data["models"] if m["model"] == "broken")
    assert broken["initialization"]["last_error"]["message"] == "weights missing"


def test_status_one_model(fake: FakeTorchServe, ts_health: Callable[..., Result]) -> None:
    result = ts_health("status", "m")
    assert result.code == EXIT_OK
    assert not fake.asked("/models?limit")
    assert len(result.out.splitlines()) == 3


def two_versions(fake: FakeTorchServe) -> None:
    """1.0 (the default) serves; 2.0 has no READY worker."""
    ready = describe()[0]
    loading = describe(version="2.0", workers=("UNLOADING",))[0]
    fake.on("/models/m", (200, [ready]))
    fake.on("/models/m/all", (200, [loading, ready]))
    fake.on("/models/m/1.0", (200, [ready]))
    fake.on("/models/m/2.0", (200, [loading]))


def test_status_lists_every_version_and_marks_the_default(
    fake: FakeTorchServe, ts_health: Callable[..., Result]
) -> None:
    two_versions(fake)
    result = ts_health("status")
    assert result.code == EXIT_NOT_READY
    lines = result.out.splitlines()
    assert lines[2].split()[:5] == ["m", "1.0", "(default)", "ready", "1/1"]
    assert lines[3].split()[:4] == ["m", "2.0", "initializing", "0/1"]
    data = ts_health("status", "m", "--json").json()
    assert [(m["version"], m["default"], m["state"]) for m in data["models"]] == [
        ("1.0", True, "ready"),
        ("2.0", False, "initializing"),
    ]
    assert data["exit_code"] == EXIT_NOT_READY


def test_ready_and_a_single_version_status_mean_one_version(
    fake: FakeTorchServe, ts_health: Callable[..., Result]
) -> None:
    two_versions(fake)
    assert ts_health("ready", "m").code == EXIT_OK
    assert ts_health("ready", "m", "--version", "2.0").code == EXIT_NOT_READY
    only = ts_health("status", "m", "--version", "1.0", "--json").json()
    assert [m["version"] for m in only["models"]] == ["1.0"]
    assert only["exit_code"] == EXIT_OK


def test_one_version_is_asked_for_once(
    fake: FakeTorchServe, ts_health: Callable[..., Result]
) -> None:
    result = ts_health("status", "m")
    assert result.code == EXIT_OK
    described = [path for path, _ in fake.requests if path.startswith("/models/m")]
    assert described == ["/models/m/all", "/models/m/1.0?customized=true"]


def test_status_no_models(fake: FakeTorchServe, ts_health: Callable[..., Result]) -> None:
    fake.on("/models?limit=100", (200, {"models": []}))
    result = ts_health("status")
    assert result.code == EXIT_OK
    assert result.out.splitlines()[1] == "no models registered"


def test_status_with_inference_api_down(
    fake: FakeTorchServe, ts_health: Callable[..., Result], state_dir: Path
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = ts_health(
        "status",
        "--inference-url",
        url,
        "--management-url",
        fake.url,
        "--state-dir",
        str(state_dir),
        connect=False,
    )
    assert result.code == EXIT_UNREACHABLE
    assert "/ping failed: cannot connect to the inference API" in result.out
    assert " ready " in result.out
    assert result.err.startswith("ts-health: unreachable: cannot connect to the inference API")


# -- wait ------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_wait_until_ready(fake: FakeTorchServe, ts_health: Callable[..., Result]) -> None:
    fake.on(
        "/models/m",
        (503, b"starting"),
        (200, describe(workers=("UNLOADING",))),
        (200, describe(workers=("UNLOADING",))),
        (200, describe()),
    )
    clock = Clock()
    result = ts_health("wait", "m", "--timeout", "30", clock=clock, sleep=clock.sleep)
    assert result.code == EXIT_OK
    assert result.lines == [
        "ready: model m 1.0: 1/1 workers READY, 0 pending, 100 free in the job queue (after 3.0 s)"
    ]
    assert clock.sleeps == [1.0, 1.0, 1.0]


def test_wait_times_out_with_the_reason(
    fake: FakeTorchServe, ts_health: Callable[..., Result], state_dir: Path
) -> None:
    fake.on("/models/m", (200, describe(workers=("UNLOADING",))))
    record_failures(state_dir, 2)
    clock = Clock()
    result = ts_health(
        "wait",
        "m",
        "--timeout",
        "5",
        "--interval",
        "2",
        clock=clock,
        sleep=clock.sleep,
        wall=lambda: NOW,
    )
    assert result.code == EXIT_NOT_READY
    assert result.lines == [
        "timed out after 5 s waiting for model m: failing: model m 1.0: initialization failed "
        "2 times in a row (0/1 workers READY; TorchServe is retrying): ValueError: weights missing"
    ]
    assert clock.sleeps == [2.0, 2.0, 1.0]


def test_wait_stops_at_unhealthy(
    fake: FakeTorchServe, ts_health: Callable[..., Result], state_dir: Path
) -> None:
    fake.on("/models/m", (200, describe(workers=("UNLOADING",), max_retry=1)))
    record_failures(state_dir, 2, first_at=NOW - 60)
    clock = Clock()
    result = ts_health(
        "wait", "m", "--timeout", "60", clock=clock, sleep=clock.sleep, wall=lambda: NOW
    )
    assert result.code == EXIT_NOT_READY
    assert result.out.startswith("unhealthy: model m 1.0:")
    assert clock.sleeps == []


def test_wait_fail_fast(
    fake: FakeTorchServe, ts_health: Callable[..., Result], state_dir: Path
) -> None:
    fake.on("/models/m", (200, describe(workers=("UNLOADING",))))
    record_failures(state_dir, 1)
    clock = Clock()
    result = ts_health(
        "wait",
        "m",
        "--timeout",
        "60",
        "--fail-fast",
        clock=clock,
        sleep=clock.sleep,
        wall=lambda: NOW,
    )
    assert result.code == EXIT_NOT_READY
    assert result.out.startswith("failing: model m 1.0: initialization failed once in a row")
    assert clock.sleeps == []


def test_wait_stops_at_a_held_failure(
    fake: FakeTorchServe, ts_health: Callable[..., Result]
) -> None:
    fake.on("/models/m/1.0?customized=true", (200, customized(document("failed"))))
    clock = Clock()
    result = ts_health("wait", "m", "--timeout", "60", clock=clock, sleep=clock.sleep)
    assert result.code == EXIT_NOT_READY
    assert clock.sleeps == []


def test_wait_for_an_unreachable_server(ts_health: Callable[..., Result]) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    clock = Clock()
    result = ts_health(
        "wait",
        "m",
        "--timeout",
        "3",
        "--management-url",
        url,
        connect=False,
        clock=clock,
        sleep=clock.sleep,
    )
    assert result.code == EXIT_UNREACHABLE
    assert result.out.splitlines() == [
        f"timed out after 3 s waiting for model m: unreachable: model m ?: cannot connect to "
        f"the management API at {url}: connection refused"
    ]
    assert result.err.splitlines() == [
        f"ts-health: unreachable: cannot connect to the management API at {url}: connection refused"
    ]


def test_wait_with_a_refused_token_says_so_once(
    fake: FakeTorchServe, ts_health: Callable[..., Result]
) -> None:
    # As `ready` would: no model state to answer with, only an error: one line, on stderr.
    fake.required["/models"] = "Bearer right"
    clock = Clock()
    result = ts_health(
        "wait", "m", "--timeout", "3", "--token", SECRET, clock=clock, sleep=clock.sleep
    )
    assert result.code == EXIT_USAGE
    assert result.out == ""
    assert result.err == (
        f"ts-health: error: timed out after 3 s waiting for model m: the management API at "
        f"{fake.url} refused the token from --token for GET /models/m (400 InvalidKeyException: "
        "Token Authorization failed. Token either incorrect, expired, or not provided correctly); "
        "keys change when TorchServe restarts or expire\n"
    )
    assert clock.sleeps == [1.0, 1.0, 1.0]  # a key file may be rewritten: wait polls on

    missing = ts_health("wait", "m", "--timeout", "1", "--json", clock=clock, sleep=clock.sleep)
    assert missing.code == EXIT_USAGE
    (line,) = missing.err.splitlines()
    assert line.startswith("ts-health: error: timed out after 1 s waiting for model m: ")
    assert line.endswith(
        "; pass --key-file with TorchServe's key_file.json (written in its working directory) "
        "or --token"
    )
    document = missing.json()
    assert document["reason"] == line.removeprefix("ts-health: error: ")
    assert (document["exit_code"], document["model"]) == (EXIT_USAGE, None)


def test_wait_for_a_model_never_registered(
    fake: FakeTorchServe, ts_health: Callable[..., Result]
) -> None:
    fake.on(
        "/models/late", (404, {"code": 404, "type": "ModelNotFoundException", "message": "late"})
    )
    clock = Clock()
    result = ts_health("wait", "late", "--timeout", "2", "--json", clock=clock, sleep=clock.sleep)
    assert result.code == EXIT_USAGE
    data = result.json()
    assert data["exit_code"] == EXIT_USAGE
    assert data["reason"].startswith(
        "timed out after 2 s waiting for model late: model 'late' is not"
    )
    assert data["model"] is None


# -- options, environment, errors ------------------------------------------------------------


def test_connection_options_before_and_after_the_command(
    fake: FakeTorchServe, ts_health: Callable[..., Result], state_dir: Path
) -> None:
    before = ts_health(
        "--management-url",
        fake.url,
        "--state-dir",
        str(state_dir),
        "status",
        "m",
        connect=False,
        env={"TS_HEALTH_INFERENCE_URL": fake.url},
    )
    after = ts_health(
        "status",
        "m",
        "--management-url",
        fake.url,
        "--state-dir",
        str(state_dir),
        connect=False,
        env={"TS_HEALTH_INFERENCE_URL": fake.url},
    )
    assert before.code == after.code == EXIT_OK
    assert before.out == after.out


def test_option_after_the_command_wins_and_before_is_kept(
    fake: FakeTorchServe, ts_health: Callable[..., Result]
) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    # Given before only: kept although the subcommand defines the option too.
    assert ts_health("--inference-url", fake.url, "ping", connect=False).code == EXIT_OK
    # Given on both sides: the later one counts.
    assert (
        ts_health("--inference-url", dead, "ping", "--inference-url", fake.url, connect=False).code
        == EXIT_OK
    )


def test_environment_and_precedence(fake: FakeTorchServe, ts_health: Callable[..., Result]) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    env = {"TS_HEALTH_INFERENCE_URL": fake.url}
    assert ts_health("ping", env=env, connect=False).code == EXIT_OK
    env = {"TS_HEALTH_INFERENCE_URL": dead}
    assert ts_health("ping", "--inference-url", fake.url, env=env, connect=False).code == EXIT_OK
    assert ts_health("ping", env=env, connect=False).code == EXIT_UNREACHABLE


def test_environment_timeouts(fake: FakeTorchServe, ts_health: Callable[..., Result]) -> None:
    fake.on("/models/m/1.0?customized=true", (200, customized(document())), delay=10)
    result = ts_health("ready", "m", env={"TS_HEALTH_DESCRIBE_TIMEOUT": "0.2"})
    assert "within 0.2 s" in result.out
    result = ts_health("ready", "m", env={"TS_HEALTH_REQUEST_TIMEOUT": "soon"})
    assert result.code == EXIT_USAGE
    assert result.lines == [
        "ts-health: error: invalid $TS_HEALTH_REQUEST_TIMEOUT: expected a number of seconds "
        "above 0, got 'soon'"
    ]


def test_state_dir_from_environment(
    fake: FakeTorchServe, ts_health: Callable[..., Result], tmp_path: Path
) -> None:
    other = tmp_path / "elsewhere"
    result = ts_health(
        "ready",
        "m",
        "--json",
        "--inference-url",
        fake.url,
        "--management-url",
        fake.url,
        connect=False,
        env={"TS_HEALTH_STATE_DIR": str(other)},
    )
    assert result.json()["model"]["record_path"] == str(other / "m" / "1.0")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["ready", "m", "--management-url", "localhost:8081"],
            "invalid --management-url 'localhost:8081': expected http://HOST:PORT or https://HOST:PORT",
        ),
        (
            ["ping", "--inference-url", "http://h:notaport"],
            "invalid --inference-url 'http://h:notaport'",
        ),
        (
            ["ping", "--inference-url", f"http://user:{SECRET}@h:1"],
            "invalid --inference-url: credentials in the URL are not supported",
        ),
    ],
)
def test_bad_urls(ts_health: Callable[..., Result], argv: list[str], expected: str) -> None:
    result = ts_health(*argv, connect=False)
    assert result.code == EXIT_USAGE
    (line,) = result.lines
    assert line.startswith("ts-health: error: " + expected)


def test_bad_url_from_environment(ts_health: Callable[..., Result]) -> None:
    result = ts_health("ping", connect=False, env={"TS_HEALTH_INFERENCE_URL": "ftp://x"})
    assert result.code == EXIT_USAGE
    assert "invalid $TS_HEALTH_INFERENCE_URL 'ftp://x'" in result.err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], "ts-health: error: the following arguments are required: COMMAND"),
        (["ready"], "ts-health ready: error: the following arguments are required: MODEL"),
        (["wait", "m"], "ts-health wait: error: the following arguments are required: --timeout"),
        (
            ["ready", "m", "--request-timeout", "0"],
            "ts-health ready: error: argument --request-timeout: "
            "expected a number of seconds above 0, got '0'",
        ),
        (
            ["wait", "m", "--timeout", "nan"],
            "ts-health wait: error: argument --timeout: "
            "expected a number of seconds above 0, got 'nan'",
        ),
        (["probe"], "ts-health: error: argument COMMAND: invalid choice: 'probe'"),
    ],
)
def test_usage_errors_are_one_line(
    ts_health: Callable[..., Result], argv: list[str], expected: str
) -> None:
    result = ts_health(*argv, connect=False)
    assert result.code == EXIT_USAGE
    (line,) = result.lines
    assert line.startswith(expected)


def test_status_version_needs_a_model(
    fake: FakeTorchServe, ts_health: Callable[..., Result]
) -> None:
    result = ts_health("status", "--version", "1.0")
    assert result.code == EXIT_USAGE
    assert result.lines == [
        "ts-health: error: --version needs a MODEL: ts-health status MODEL --version V"
    ]
    assert fake.requests == []


def test_help_lists_exit_codes_and_environment(ts_health: Callable[..., Result]) -> None:
    result = ts_health("--help", connect=False)
    assert result.code == EXIT_OK
    for text in (
        "exit codes:",
        "3  unreachable",
        "TS_HEALTH_KEY_FILE",
        "ping",
        "ready",
        "status",
        "wait",
    ):
        assert text in result.out
    assert ts_health("wait", "--help", connect=False).code == EXIT_OK


def test_token_never_printed_in_json_or_repr(
    fake: FakeTorchServe, ts_health: Callable[..., Result]
) -> None:
    result = ts_health("status", "--json", "--token", SECRET)
    assert result.code == EXIT_OK
    settings = probe.resolve_settings(
        cli.build_parser().parse_args(["ping", "--token", SECRET]), {}
    )
    assert SECRET not in repr(settings)
    client = probe.client_for(settings)
    assert SECRET not in repr(client.inference) + repr(client.management)


def test_internal_errors_are_one_line(
    ts_health: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> int:
        raise KeyError("oops")

    monkeypatch.setitem(cli.COMMANDS, "ping", broken)
    result = ts_health("ping")
    assert result.code == EXIT_INTERNAL
    assert result.lines == ["ts-health: internal error: KeyError: 'oops' (please report it)"]


# -- as a real process -----------------------------------------------------------------------

BIN = Path(sys.executable).parent


def test_probe_imports_neither_torch_nor_ts() -> None:
    code = (
        "import sys, ts_health_handler.probe, ts_health_handler.__main__; "
        "assert 'torch' not in sys.modules and 'ts' not in sys.modules, "
        "sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'ts'))"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_console_script(fake: FakeTorchServe, state_dir: Path) -> None:
    script = BIN / "ts-health"
    if not script.exists():
        pytest.skip("ts-health console script not installed next to the interpreter")
    env = dict(os.environ, TS_HEALTH_MANAGEMENT_URL=fake.url, TS_HEALTH_STATE_DIR=str(state_dir))
    done = subprocess.run(
        [str(script), "ready", "m"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == EXIT_OK, done.stderr
    assert done.stdout.startswith("ready: model m 1.0:")


def test_python_dash_m(fake: FakeTorchServe) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ts_health_handler", "--inference-url", fake.url, "ping"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == EXIT_OK, done.stderr
    url = f"http://127.0.0.1:{closed_port()}"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ts_health_handler",
            "status",
            "--management-url",
            url,
            "--inference-url",
            url,
            "--request-timeout",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == EXIT_UNREACHABLE
    assert "Traceback" not in done.stderr + done.stdout
    assert done.stdout.strip().startswith("unreachable: cannot connect to the management API")


# -- key expiry and renewal ------------------------------------------------------------------


def iso(epoch: float) -> str:
    return utc_iso(epoch).replace("+00:00", "Z")


def expiring_key_file(
    path: Path, *, management_at: float, inference_at: float, management: str = "mgmt-" + SECRET
) -> Path:
    path.write_text(
        json.dumps(
            {
                "management": {"key": management, "expiration time": iso(management_at)},
                "inference": {"key": "inf-" + SECRET, "expiration time": iso(inference_at)},
                "API": {"key": "api-" + SECRET},
            }
        )
    )
    return path


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("2025-06-15T15:06:40Z", 1_750_000_000.0),
        ("2025-06-15T15:06:40.5Z", 1_750_000_000.5),
        ("2025-06-15T15:06:40.250Z", 1_750_000_000.25),
        ("2025-06-15T15:06:40.123456789Z", 1_750_000_000.123456789),
    ],
)
def test_java_instants_are_parsed(text: str, epoch: float) -> None:
    from ts_health_handler.torchserve._answers import parse_instant

    assert parse_instant(text) == pytest.approx(epoch, abs=1e-6)


@pytest.mark.parametrize("text", ["2025-06-15 15:06:40Z", "2025-06-15T15:06:40", "soon", ""])
def test_odd_instants_are_refused(text: str) -> None:
    from ts_health_handler.torchserve._answers import parse_instant

    with pytest.raises(ValueError, match="expected an instant like"):
        parse_instant(text)


def test_key_file_expiration_times_are_read(tmp_path: Path) -> None:
    from ts_health_handler.torchserve._answers import Keys

    path = expiring_key_file(tmp_path / "k.json", management_at=NOW + 60, inference_at=NOW + 30)
    keys = Keys.from_key_file(path)
    assert keys.management_expires_at == pytest.approx(NOW + 60, abs=1e-3)
    assert keys.inference_expires_at == pytest.approx(NOW + 30, abs=1e-3)
    assert keys.api == "api-" + SECRET
    assert SECRET not in repr(keys)


def test_an_odd_expiration_time_names_the_file(
    ts_health: Callable[..., Result], tmp_path: Path
) -> None:
    path = tmp_path / "key_file.json"
    path.write_text(
        json.dumps(
            {"management": {"key": "a", "expiration time": "tomorrow"}, "inference": {"key": "b"}}
        )
    )
    result = ts_health("ping", "--key-file", str(path))
    assert result.code == EXIT_USAGE
    assert result.err == (
        f"ts-health: error: key file {path}: the management key's expiration time 'tomorrow' "
        "is not an instant like 2024-10-01T12:00:00.123Z\n"
    )


def test_an_expired_management_key_is_named_with_the_renewal_command(
    fake: FakeTorchServe, ts_health: Callable[..., Result], tmp_path: Path
) -> None:
    path = expiring_key_file(
        tmp_path / "key_file.json", management_at=NOW - 5, inference_at=NOW + 60
    )
    result = ts_health("ready", "m", "--key-file", str(path), wall=lambda: NOW)
    assert result.code == EXIT_USAGE
    assert result.out == ""
    assert result.err == (
        f"ts-health: error: key expired at {iso(NOW - 5)[:19]}Z: the management key from key file "
        f"{path} (TorchServe's token_expiration_min); renew it with curl -s "
        f"'{fake.url}/token?type=management' -H \"Authorization: Bearer <the API key in the key "
        'file>", or pass --renew-key\n'
    )
    assert fake.requests == [], "an expired key is not sent"
    # The inference key is still good: ping works.
    assert ts_health("ping", "--key-file", str(path), wall=lambda: NOW).code == EXIT_OK


def test_an_expired_inference_key_is_never_renewed(
    fake: FakeTorchServe, ts_health: Callable[..., Result], tmp_path: Path
) -> None:
    path = expiring_key_file(tmp_path / "key_file.json", management_at=NOW + 60, inference_at=NOW)
    result = ts_health("ping", "--key-file", str(path), "--renew-key", wall=lambda: NOW)
    assert result.code == EXIT_USAGE
    assert "key expired at" in result.err
    assert "the inference key from key file" in result.err
    assert "gives every client of the inference API a new key" in result.err
    assert not fake.asked("/token")
    # The management API is unaffected.
    assert ts_health("ready", "m", "--key-file", str(path), wall=lambda: NOW).code == EXIT_OK


def renewing(fake: FakeTorchServe, path: Path, new_key: str) -> None:
    """Make ``fake`` answer /token like TorchServe: rewrite the key file, then 200 ''."""
    plain = fake.answer

    def answer(request_path: str, authorization: str | None) -> tuple[int, Any, float]:
        if request_path == "/token?type=management" and authorization == f"Bearer api-{SECRET}":
            expiring_key_file(
                path, management_at=NOW + 3600, inference_at=NOW + 60, management=new_key
            )
            fake.required["/models"] = f"Bearer {new_key}"
            return 200, b"", 0.0
        return plain(request_path, authorization)

    fake.answer = answer  # type: ignore[method-assign]


def test_renew_key_renews_an_expired_management_key(
    fake: FakeTorchServe, ts_health: Callable[..., Result], tmp_path: Path
) -> None:
    path = expiring_key_file(
        tmp_path / "key_file.json", management_at=NOW - 1, inference_at=NOW + 60
    )
    fake.required = {"/models": f"Bearer mgmt-{SECRET}", "/token": f"Bearer api-{SECRET}"}
    renewing(fake, path, "fresh-" + SECRET)
    result = ts_health("ready", "m", "--key-file", str(path), "--renew-key", wall=lambda: NOW)
    assert result.code == EXIT_OK, result.err
    assert fake.requests[0] == ("/token?type=management", f"Bearer api-{SECRET}")
    assert ("/models/m", f"Bearer fresh-{SECRET}") in fake.requests
    assert json.loads(path.read_text())["inference"]["key"] == "inf-" + SECRET


def test_renew_key_leaves_a_valid_key_alone(
    fake: FakeTorchServe, ts_health: Callable[..., Result], tmp_path: Path
) -> None:
    path = expiring_key_file(
        tmp_path / "key_file.json", management_at=NOW + 600, inference_at=NOW + 600
    )
    result = ts_health("ready", "m", "--key-file", str(path), "--renew-key", wall=lambda: NOW)
    assert result.code == EXIT_OK
    assert not fake.asked("/token")


def test_renew_key_ahead_of_expiry(
    fake: FakeTorchServe, ts_health: Callable[..., Result], tmp_path: Path
) -> None:
    # Expiring within the run's own time (request + describe timeout): renewed first.
    path = expiring_key_file(
        tmp_path / "key_file.json", management_at=NOW + 2, inference_at=NOW + 600
    )
    renewing(fake, path, "fresh-" + SECRET)
    result = ts_health("ready", "m", "--key-file", str(path), "--renew-key", wall=lambda: NOW)
    assert result.code == EXIT_OK, result.err
    assert fake.asked("/token?type=management")


def test_renew_key_with_a_refused_api_key(
    fake: FakeTorchServe, ts_health: Callable[..., Result], tmp_path: Path
) -> None:
    path = expiring_key_file(
        tmp_path / "key_file.json", management_at=NOW - 1, inference_at=NOW + 60
    )
    fake.required = {"/token": "Bearer another"}
    result = ts_health("ready", "m", "--key-file", str(path), "--renew-key", wall=lambda: NOW)
    assert result.code == EXIT_USAGE
    assert result.err.startswith(
        f"ts-health: error: the management API at {fake.url} refused the token from the API key "
        f"of key file {path} for GET /token?type=management"
    )


# -- hostile text and secrets ----------------------------------------------------------------

HOSTILE = "boom \x1b[2J\x1b]0;pwned\x07 \x9b31m \u202eevil \udcff end"


def hostile_record(state_dir: Path) -> None:
    def fail(previous: InitRecord | None) -> InitRecord:
        started = InitRecord.started(
            previous, model_name="m", model_version="1.0", now=NOW - 5, worker_pid=7, server="1"
        )
        error = ErrorInfo("builtins.ValueError", HOSTILE, utc_iso(NOW - 4), 1)
        return started.failed(error, now=NOW - 4, duration_s=1.0, worker_pid=7)

    StateStore(state_dir, "m", "1.0").update(fail)


def test_hostile_error_text_reaches_the_terminal_escaped(
    fake: FakeTorchServe, ts_health: Callable[..., Result], state_dir: Path
) -> None:
    hostile_record(state_dir)
    fake.on("/models/m", (200, describe(workers=("UNLOADING",))))
    result = ts_health("ready", "m", wall=lambda: NOW)
    assert result.code == EXIT_NOT_READY
    for raw in ("\x1b", "\x07", "\x9b", "\u202e", "\udcff"):
        assert raw not in result.out
    assert "boom \\x1b[2J\\x1b]0;pwned\\x07 \\u009b31m \\u202eevil \\udcff end" in result.out
    # JSON keeps the message whole, escaped by JSON itself.
    data = ts_health("ready", "m", "--json", wall=lambda: NOW).json()
    assert data["model"]["initialization"]["last_error"]["message"].startswith("boom \x1b[2J")


@pytest.mark.parametrize("encoding", ["utf-8:strict", "ascii:strict", "latin-1"])
def test_output_is_valid_utf8_whatever_the_locale(
    fake: FakeTorchServe, state_dir: Path, encoding: str
) -> None:
    hostile_record(state_dir)
    fake.on("/models/m", (200, describe(workers=("UNLOADING",))))
    env = {**os.environ, "PYTHONIOENCODING": encoding, "LC_ALL": "C", "LANG": "C"}
    connection = ["--inference-url", fake.url, "--management-url", fake.url]
    connection += ["--state-dir", str(state_dir)]
    for argv in (["ready", "m"], ["status"], ["ready", "m", "--json"]):
        done = subprocess.run(
            [str(BIN / "ts-health"), *argv, *connection],
            capture_output=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert done.returncode == EXIT_NOT_READY, done
        text = done.stdout.decode("utf-8")  # strict: raises on anything but UTF-8
        assert "\x1b" not in text
        assert "Traceback" not in done.stderr.decode("utf-8")


def test_a_token_with_a_trailing_newline_works(
    fake: FakeTorchServe, ts_health: Callable[..., Result]
) -> None:
    fake.required = {"/ping": f"Bearer {SECRET}"}
    assert ts_health("ping", env={"TS_HEALTH_TOKEN": SECRET + "\n"}).code == EXIT_OK
    assert ts_health("ping", "--token", f"  {SECRET}\r\n").code == EXIT_OK


@pytest.mark.parametrize("token", [SECRET[:5] + "\n" + SECRET[5:], SECRET + "\x00x"])
def test_a_token_with_a_control_character_inside_is_refused_unseen(
    ts_health: Callable[..., Result], token: str
) -> None:
    result = ts_health("ping", env={"TS_HEALTH_TOKEN": token})
    assert result.code == EXIT_USAGE
    assert "invalid token from $TS_HEALTH_TOKEN: it holds whitespace or a control character" in (
        result.err
    )
    assert SECRET[:5] not in result.err + result.out


def test_key_file_keys_are_stripped(
    fake: FakeTorchServe, ts_health: Callable[..., Result], tmp_path: Path
) -> None:
    fake.required = {"/ping": f"Bearer inf-{SECRET}"}
    key_file = write_key_file(tmp_path / "k.json", inference=f"inf-{SECRET}\n")
    assert ts_health("ping", "--key-file", str(key_file)).code == EXIT_OK


ECHOES: list[tuple[str, Any]] = [
    # A server (or a proxy in front of it) that echoes the key it was sent.
    ("refused", (400, {"code": 400, "type": "InvalidKeyException", "message": "{key}"})),
    ("unexpected status", (503, {"code": 503, "type": "Oops", "message": "got {key}"})),
    ("not JSON", (200, b"key was {key}")),
    ("wrong shape", (200, {"status": ["{key}"]})),
]


@pytest.mark.parametrize(("path", "answer"), ECHOES, ids=[e[0] for e in ECHOES])
@pytest.mark.parametrize("how", ["token", "key-file"])
@pytest.mark.parametrize("command", ["ping", "status", "ready"])
def test_no_error_path_prints_a_key(
    fake: FakeTorchServe,
    ts_health: Callable[..., Result],
    tmp_path: Path,
    path: str,
    answer: Any,
    how: str,
    command: str,
) -> None:
    key = f"inf-{SECRET}"
    status, body = answer
    if isinstance(body, bytes):
        body = body.replace(b"{key}", key.encode())
    else:
        body = json.loads(json.dumps(body).replace("{key}", key))
    for route in ("/ping", "/models/m", "/models/m/all", "/models?limit=100"):
        fake.on(route, (status, body))
    auth = (
        ["--token", key]
        if how == "token"
        else ["--key-file", str(write_key_file(tmp_path / "key_file.json"))]
    )
    argv = [command] + (["m"] if command == "ready" else [])
    for extra in ([], ["--json"]):
        result = ts_health(*argv, *extra, *auth)
        assert result.code != EXIT_OK
        # the fixture asserts the secret is nowhere in the output
        assert "<redacted>" in result.out + result.err or path != "refused"


def test_an_internal_error_holding_a_key_prints_it_redacted(
    ts_health: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> int:
        raise ValueError(f"Invalid header value b'Bearer {SECRET}'")

    monkeypatch.setitem(cli.COMMANDS, "ping", broken)
    result = ts_health("ping", "--token", SECRET)
    assert result.code == EXIT_INTERNAL
    assert "Bearer <redacted>" in result.err


def test_a_secret_holding_another_is_redacted_whole() -> None:
    out = io.StringIO()
    Io(out, out, secrets={"abc", "abc-def", ""}).err("key abc-def and abc")
    assert out.getvalue() == "key <redacted> and <redacted>\n"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from ts_health_handler import __version__

    assert run(["--version"], environ={}) == EXIT_OK
    assert capsys.readouterr().out == f"ts-health {__version__} (ts-health-handler)\n"


def test_the_default_describe_timeout_leaves_room_for_the_default_check() -> None:
    # A describe waits up to check_timeout_s for health_check(); a probe that gives up first
    # would call a fresh worker with a hanging check "ready (status unknown)".
    from ts_health_handler import HealthConfig

    assert HealthConfig().check_timeout_s < probe.DEFAULT_DESCRIBE_TIMEOUT
