"""``ts-health status``: the table and its JSON, every model and version, the default version
marked, and the server's /ping line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.support.describes import describe
from tests.support.fake_torchserve import FakeTorchServe
from tests.unit.probe.helpers import NOW, Result, closed_port
from ts_health_handler.probe import ExitCode
from ts_health_handler.record import ErrorInfo, InitRecord, StateStore, utc_iso


def two_models(fake: FakeTorchServe, state_dir: Path) -> None:
    fake.on(
        "/models?limit=100",
        (200, {"models": [{"modelName": "m", "modelUrl": "m.mar"}], "nextPageToken": "1"}),
    )
    fake.on(
        "/models?limit=100&next_page_token=1",
        (200, {"models": [{"modelName": "broken", "modelUrl": "broken.mar"}]}),
    )
    fake.on("/models/broken", (200, describe("UNLOADING", name="broken")))
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
    assert result.code == ExitCode.NOT_READY
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
    assert data["exit_code"] == ExitCode.NOT_READY
    assert data["server"]["ping"] == {"healthy": False, "status": "Unhealthy"}
    states = {m["model"]: m["state"] for m in data["models"]}
    assert states == {"m": "ready", "broken": "unhealthy"}
    broken = next(m for m in data["models"] if m["model"] == "broken")
    assert broken["initialization"]["last_error"]["message"] == "weights missing"


def test_status_one_model(fake: FakeTorchServe, ts_health: Callable[..., Result]) -> None:
    result = ts_health("status", "m")
    assert result.code == ExitCode.OK
    assert not fake.asked("/models?limit")
    assert len(result.out.splitlines()) == 3


def two_versions(fake: FakeTorchServe) -> None:
    """1.0 (the default) serves; 2.0 has no READY worker."""
    ready = describe("READY")[0]
    loading = describe("UNLOADING", version="2.0")[0]
    fake.on("/models/m", (200, [ready]))
    fake.on("/models/m/all", (200, [loading, ready]))
    fake.on("/models/m/1.0", (200, [ready]))
    fake.on("/models/m/2.0", (200, [loading]))


def test_status_lists_every_version_and_marks_the_default(
    fake: FakeTorchServe, ts_health: Callable[..., Result]
) -> None:
    two_versions(fake)
    result = ts_health("status")
    assert result.code == ExitCode.NOT_READY
    lines = result.out.splitlines()
    assert lines[2].split()[:5] == ["m", "1.0", "(default)", "ready", "1/1"]
    assert lines[3].split()[:4] == ["m", "2.0", "initializing", "0/1"]
    data = ts_health("status", "m", "--json").json()
    assert [(m["version"], m["default"], m["state"]) for m in data["models"]] == [
        ("1.0", True, "ready"),
        ("2.0", False, "initializing"),
    ]
    assert data["exit_code"] == ExitCode.NOT_READY


def test_ready_and_a_single_version_status_mean_one_version(
    fake: FakeTorchServe, ts_health: Callable[..., Result]
) -> None:
    two_versions(fake)
    assert ts_health("ready", "m").code == ExitCode.OK
    assert ts_health("ready", "m", "--version", "2.0").code == ExitCode.NOT_READY
    only = ts_health("status", "m", "--version", "1.0", "--json").json()
    assert [m["version"] for m in only["models"]] == ["1.0"]
    assert only["exit_code"] == ExitCode.OK


def test_one_version_is_asked_for_once(
    fake: FakeTorchServe, ts_health: Callable[..., Result]
) -> None:
    result = ts_health("status", "m")
    assert result.code == ExitCode.OK
    described = [path for path, _ in fake.requests if path.startswith("/models/m")]
    assert described == ["/models/m/all", "/models/m/1.0?customized=true"]


def test_status_no_models(fake: FakeTorchServe, ts_health: Callable[..., Result]) -> None:
    fake.on("/models?limit=100", (200, {"models": []}))
    result = ts_health("status")
    assert result.code == ExitCode.OK
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
    assert result.code == ExitCode.UNREACHABLE
    assert "/ping failed: cannot connect to the inference API" in result.out
    assert " ready " in result.out
    assert result.err.startswith("ts-health: unreachable: cannot connect to the inference API")
