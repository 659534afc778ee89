"""``ts-health wait MODEL --timeout S``: polls until ready, stops early at a verdict that will not
change, and times out with the last reason; a fake clock, nothing sleeps."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.support.describes import describe
from tests.support.fake_torchserve import FakeTorchServe
from tests.support.key_files import SECRET, write_key_file
from tests.unit.probe.helpers import (
    NOW,
    Result,
    closed_port,
    customized,
    document,
    record_failures,
)
from ts_health_handler.probe import ExitCode


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
        (200, describe("UNLOADING")),
        (200, describe("UNLOADING")),
        (200, describe("READY")),
    )
    clock = Clock()
    result = ts_health("wait", "m", "--timeout", "30", clock=clock, sleep=clock.sleep)
    assert result.code == ExitCode.OK
    assert result.lines == [
        "ready: model m 1.0: 1/1 workers READY, 0 pending, 100 free in the job queue (after 3.0 s)"
    ]
    assert clock.sleeps == [1.0, 1.0, 1.0]


def test_wait_times_out_with_the_reason(
    fake: FakeTorchServe, ts_health: Callable[..., Result], state_dir: Path
) -> None:
    fake.on("/models/m", (200, describe("UNLOADING")))
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
    assert result.code == ExitCode.NOT_READY
    assert result.lines == [
        "timed out after 5 s waiting for model m: failing: model m 1.0: initialization failed "
        "2 times in a row (0/1 workers READY; TorchServe is retrying): ValueError: weights missing"
    ]
    assert clock.sleeps == [2.0, 2.0, 1.0]


def test_wait_stops_at_unhealthy(
    fake: FakeTorchServe, ts_health: Callable[..., Result], state_dir: Path
) -> None:
    fake.on("/models/m", (200, describe("UNLOADING", max_retry=1)))
    record_failures(state_dir, 2, first_at=NOW - 60)
    clock = Clock()
    result = ts_health(
        "wait", "m", "--timeout", "60", clock=clock, sleep=clock.sleep, wall=lambda: NOW
    )
    assert result.code == ExitCode.NOT_READY
    assert result.out.startswith("unhealthy: model m 1.0:")
    assert clock.sleeps == []


def test_wait_fail_fast(
    fake: FakeTorchServe, ts_health: Callable[..., Result], state_dir: Path
) -> None:
    fake.on("/models/m", (200, describe("UNLOADING")))
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
    assert result.code == ExitCode.NOT_READY
    assert result.out.startswith("failing: model m 1.0: initialization failed once in a row")
    assert clock.sleeps == []


def test_wait_stops_at_a_held_failure(
    fake: FakeTorchServe, ts_health: Callable[..., Result]
) -> None:
    fake.on("/models/m/1.0?customized=true", (200, customized(document("failed"))))
    clock = Clock()
    result = ts_health("wait", "m", "--timeout", "60", clock=clock, sleep=clock.sleep)
    assert result.code == ExitCode.NOT_READY
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
    assert result.code == ExitCode.UNREACHABLE
    assert result.out.splitlines() == [
        f"timed out after 3 s waiting for model m: unreachable: model m ?: cannot connect to "
        f"the management API at {url}: connection refused"
    ]
    assert result.err.splitlines() == [
        f"ts-health: unreachable: cannot connect to the management API at {url}: connection refused"
    ]


def test_wait_with_a_refused_token_says_so_once_and_stops(
    fake: FakeTorchServe, ts_health: Callable[..., Result]
) -> None:
    # As `ready` would: no model state to answer with, only an error: one line, on stderr.
    # A token given as such never changes: waiting on would only burn the timeout.
    fake.required["/models"] = "Bearer right"
    clock = Clock()
    result = ts_health(
        "wait", "m", "--timeout", "3", "--token", SECRET, clock=clock, sleep=clock.sleep
    )
    assert result.code == ExitCode.USAGE
    assert result.out == ""
    assert result.err == (
        f"ts-health: error: the management API at "
        f"{fake.url} refused the token from --token for GET /models/m (400 InvalidKeyException: "
        "Token Authorization failed. Token either incorrect, expired, or not provided correctly); "
        "keys change when TorchServe restarts or expire\n"
    )
    assert clock.sleeps == []

    clock.now += 0.25
    missing = ts_health("wait", "m", "--timeout", "1", "--json", clock=clock, sleep=clock.sleep)
    assert missing.code == ExitCode.USAGE
    (line,) = missing.err.splitlines()
    assert line.startswith("ts-health: error: the management API at ")
    assert line.endswith(
        "; pass --key-file with TorchServe's key_file.json (written in its working directory) "
        "or --token"
    )
    document = missing.json()
    assert document["reason"] == line.removeprefix("ts-health: error: ")
    assert (document["exit_code"], document["model"], document["waited_s"]) == (
        ExitCode.USAGE,
        None,
        0,
    )
    assert clock.sleeps == []


def test_wait_polls_on_while_the_key_file_is_refused(
    fake: FakeTorchServe, ts_health: Callable[..., Result], tmp_path: Path
) -> None:
    # TorchServe writes new keys when it restarts: a refused key file may be rewritten.
    fake.required["/models"] = "Bearer right"
    keys = write_key_file(tmp_path / "key_file.json", management=SECRET)
    clock = Clock()
    result = ts_health(
        "wait", "m", "--timeout", "3", "--key-file", str(keys), clock=clock, sleep=clock.sleep
    )
    assert result.code == ExitCode.USAGE
    (line,) = result.err.splitlines()
    assert line.startswith("ts-health: error: timed out after 3 s waiting for model m: ")
    assert f"refused the token from key file {keys}" in line, line
    assert clock.sleeps == [1.0, 1.0, 1.0]


def test_wait_for_a_model_never_registered(
    fake: FakeTorchServe, ts_health: Callable[..., Result]
) -> None:
    fake.on(
        "/models/late", (404, {"code": 404, "type": "ModelNotFoundException", "message": "late"})
    )
    clock = Clock()
    result = ts_health("wait", "late", "--timeout", "2", "--json", clock=clock, sleep=clock.sleep)
    assert result.code == ExitCode.USAGE
    data = result.json()
    assert data["exit_code"] == ExitCode.USAGE
    assert data["reason"].startswith(
        "timed out after 2 s waiting for model late: model 'late' is not"
    )
    assert data["model"] is None
