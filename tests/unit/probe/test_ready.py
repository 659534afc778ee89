"""``ts-health ready MODEL``: each state with its reason and exit code, and what is asked of
TorchServe to tell it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.describes import describe
from tests.support.fake_torchserve import FakeTorchServe
from tests.unit.probe.helpers import NOW, Result, customized, document, record_failures
from ts_health_handler.probe import ExitCode


def test_ready(fake: FakeTorchServe, ts_health: Callable[..., Result]) -> None:
    result = ts_health("ready", "m")
    assert result.code == ExitCode.OK
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
    fake.on("/models/m/2.0", (200, describe("READY", version="2.0")))
    fake.on("/models/m/2.0?customized=true", (200, customized(document())))
    result = ts_health("ready", "m", "--version", "2.0")
    assert result.code == ExitCode.OK
    assert result.out.startswith("ready: model m 2.0:")


def test_failing_shows_the_reason_without_asking_the_worker(
    fake: FakeTorchServe, ts_health: Callable[..., Result], state_dir: Path
) -> None:
    fake.on("/models/m", (200, describe("UNLOADING")))
    record_failures(state_dir, 3, retrying=True)
    result = ts_health("ready", "m", wall=lambda: NOW)
    assert result.code == ExitCode.NOT_READY
    assert result.lines == [
        "failing: model m 1.0: initialization failed 3 times in a row (0/1 workers READY; "
        "attempt 4 in progress): ValueError: weights missing"
    ]
    # TorchServe queues a customized describe to a worker: with none alive it never answers.
    assert not fake.asked("customized=true")


def test_unhealthy_past_max_retry_timeout(
    fake: FakeTorchServe, ts_health: Callable[..., Result], state_dir: Path
) -> None:
    fake.on("/models/m", (200, describe("UNLOADING", max_retry=5)))
    record_failures(state_dir, 4, first_at=NOW - 30)
    result = ts_health("ready", "m", wall=lambda: NOW)
    assert result.code == ExitCode.NOT_READY
    assert result.out.startswith(
        "unhealthy: model m 1.0: initialization failed 4 times in a row over 30 s, "
        "past maxRetryTimeoutInSec=5: ValueError: weights missing"
    )


def test_initializing(
    fake: FakeTorchServe, ts_health: Callable[..., Result], state_dir: Path
) -> None:
    fake.on("/models/m", (200, describe("UNLOADING")))
    result = ts_health("ready", "m")
    assert result.code == ExitCode.NOT_READY
    assert result.lines == [
        "initializing: model m 1.0: no READY worker yet (0/1 workers READY; no initialization "
        f"record in {state_dir / 'm' / '1.0'})"
    ]


def test_corrupt_record_is_a_detail(
    fake: FakeTorchServe, ts_health: Callable[..., Result], state_dir: Path
) -> None:
    fake.on("/models/m", (200, describe("UNLOADING")))
    (state_dir / "m" / "1.0").mkdir(parents=True)
    (state_dir / "m" / "1.0" / "init.json").write_text("{")
    result = ts_health("ready", "m")
    assert result.code == ExitCode.NOT_READY
    assert result.out.startswith("initializing: model m 1.0: no READY worker yet")
    assert "unreadable health record" in result.out


def test_saturated(fake: FakeTorchServe, ts_health: Callable[..., Result]) -> None:
    fake.on("/models/m", (200, describe("READY", remaining=0, pending=100)))
    result = ts_health("ready", "m")
    assert result.code == ExitCode.NOT_READY
    assert result.lines == [
        "saturated: model m 1.0: job queue full: 100 pending, 0 free (1/1 workers READY)"
    ]
    # The readiness policy of the Kubernetes example: a busy pod stays in the Service.
    result = ts_health("ready", "m", "--allow-saturated", "--json")
    assert result.code == ExitCode.OK
    assert result.json()["model"]["state"] == "saturated"
    assert result.json()["model"]["ok"] is True
    assert ts_health("status", "m", "--allow-saturated").code == ExitCode.OK
    # Each flag accepts its own state only.
    assert ts_health("ready", "m", "--allow-degraded").code == ExitCode.NOT_READY


def test_degraded(fake: FakeTorchServe, ts_health: Callable[..., Result]) -> None:
    check = {"status": "failed", "result": False, "error": "backend down", "duration_s": 0.1}
    fake.on("/models/m/1.0?customized=true", (200, customized(document("degraded", check=check))))
    result = ts_health("ready", "m")
    assert result.code == ExitCode.NOT_READY
    assert result.lines == [
        "degraded: model m 1.0: health check failed: backend down (1/1 workers READY)"
    ]
    assert ts_health("ready", "m", "--allow-degraded").code == ExitCode.OK
    assert ts_health("ready", "m", "--allow-saturated").code == ExitCode.NOT_READY


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
    assert result.code == ExitCode.NOT_READY
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
    assert result.code == ExitCode.OK
    assert f"health status unknown: {why}" in result.out


def test_customized_describe_error_is_a_detail(
    fake: FakeTorchServe, ts_health: Callable[..., Result]
) -> None:
    body = {"code": 503, "type": "ServiceUnavailableException", "message": "queue full"}
    fake.on("/models/m/1.0?customized=true", (503, body))
    result = ts_health("ready", "m")
    assert result.code == ExitCode.OK
    assert (
        "health status unknown: customized describe answered 503 "
        "ServiceUnavailableException: queue full" in result.out
    )
