"""After READY, inside the worker: the settings, the failure streak and fatal errors, the
heartbeat, and the death of a predecessor found by its successor. What the monitor makes of
them: tests/unit/monitor/test_serving.py; with a real TorchServe:
tests/integration/test_after_ready.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.records import NOW, POISON, beat
from ts_health_handler import ConfigError, HealthConfig
from ts_health_handler._lifecycle import ServingMode
from ts_health_handler.handler import _tracker as tracker_module
from ts_health_handler.handler._identity import Identity
from ts_health_handler.handler._requests import Requests
from ts_health_handler.handler._serving import Serving
from ts_health_handler.handler._tracker import Tracker
from ts_health_handler.record import StateStore
from ts_health_handler.record._beat import beat_path, read_beat, write_beat
from ts_health_handler.record._deaths import DeathCause

# -- configuration --------------------------------------------------------------------------


def test_the_stuck_threshold_follows_response_timeout_unless_set() -> None:
    assert HealthConfig().stuck_threshold_s == 90.0
    config = HealthConfig.from_model_yaml({"responseTimeout": 60, "health": {}})
    assert (config.response_timeout_s, config.stuck_threshold_s) == (60.0, 45.0)
    config = HealthConfig.from_model_yaml({"responseTimeout": 60, "health": {"stuck_after_s": 5}})
    assert config.stuck_threshold_s == 5.0


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"on_fatal_error": "reboot"},
            "health.on_fatal_error: 'reboot'; expected report or restart",
        ),
        ({"fatal_errors": ["("]}, "health.fatal_errors: '('; expected a valid regular expression"),
        ({"fatal_errors": "CUDA"}, "health.fatal_errors: 'CUDA'; expected a list of regular"),
        ({"failing_after_requests": 0}, "health.failing_after_requests: 0; expected an integer"),
        ({"heartbeat_interval_s": 0}, "health.heartbeat_interval_s: 0; expected a number"),
        ({"response_timeout_s": 3}, "health.response_timeout_s: 3; expected a known key"),
    ],
)
def test_bad_after_ready_settings_name_the_key(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        HealthConfig.from_mapping(section)
    assert message in str(caught.value)


# -- the failure streak and fatal errors (inside the worker) ---------------------------------


def serving(tmp_path: Path, **health: Any) -> tuple[Serving, Requests, list[tuple[float, int]]]:
    counters, exits = Requests(), []
    config = HealthConfig.from_mapping(health)
    watch = Serving(
        counters,
        ServingMode.DEFAULT,
        config,
        "9000",
        tmp_path / "beat.json",
        lambda: NOW,
        exit_later=lambda delay, status: exits.append((delay, status)),
    )
    return watch, counters, exits


def request(watch: Serving, counters: Requests, error: BaseException | None = None) -> None:
    counters.total += 1
    if error is not None:
        counters.failed += 1
        watch.failed(error, 1)
    else:
        counters.ok += 1


def test_failures_in_a_row_are_counted_and_a_success_ends_the_streak(tmp_path: Path) -> None:
    watch, counters, _ = serving(tmp_path)
    request(watch, counters, ValueError("a"))
    request(watch, counters, ValueError("b"))
    assert watch.consecutive_failures == 2
    request(watch, counters)  # succeeded
    assert watch.consecutive_failures == 0
    request(watch, counters, ValueError("c"))
    assert watch.consecutive_failures == 1
    assert watch.last_error is not None
    assert (watch.last_error.type, watch.last_error.message) == ("ValueError", "c")
    assert watch.fatal is None


def test_a_fatal_error_is_kept_and_reported_under_report(tmp_path: Path) -> None:
    watch, counters, exits = serving(tmp_path)
    request(watch, counters, RuntimeError(POISON))
    assert watch.fatal is not None
    assert watch.fatal.message == POISON
    assert (watch.restarting, exits) == (False, [])
    request(watch, counters, RuntimeError("CUBLAS_STATUS_EXECUTION_FAILED when calling gemm"))
    assert watch.fatal.message == POISON  # the first one is kept


def test_restart_answers_first_then_ends_the_process(tmp_path: Path) -> None:
    watch, counters, exits = serving(tmp_path, on_fatal_error="restart")
    request(watch, counters, RuntimeError(POISON))
    assert watch.restarting
    assert exits == [(0.5, 70)]  # later, from a timer: the failing request is answered first
    written = read_beat(tmp_path / "beat.json")  # the beat said so before the end
    assert written is not None
    assert written.restarting
    assert written.fatal is not None


def test_out_of_memory_is_fatal_only_when_repeated(tmp_path: Path) -> None:
    watch, counters, _ = serving(tmp_path, oom_fatal_after=3)
    oom = RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    request(watch, counters, oom)
    request(watch, counters, oom)
    request(watch, counters)  # one fits: the streak starts over
    request(watch, counters, oom)
    request(watch, counters, oom)
    assert watch.fatal is None
    request(watch, counters, oom)
    assert watch.fatal is not None


def test_user_patterns_replace_the_defaults(tmp_path: Path) -> None:
    watch, counters, _ = serving(tmp_path, fatal_errors=["driver gone"])
    request(watch, counters, RuntimeError(POISON))
    assert watch.fatal is None
    request(watch, counters, OSError("the DRIVER GONE away"))
    assert watch.fatal is not None


def test_the_beat_tells_the_running_request_and_the_thresholds(tmp_path: Path) -> None:
    watch, counters, _ = serving(tmp_path, stuck_after_s=7, heartbeat_interval_s=0.5)
    counters.total, counters.last_started = 3, NOW - 4
    counters.calls[1] = (NOW - 4, 1, None)
    now = watch.beat()
    assert (now.in_flight_since, now.requests, now.stuck_after_s, now.interval_s) == (
        NOW - 4,
        3,
        7.0,
        0.5,
    )
    counters.calls.clear()
    assert watch.beat().in_flight_since is None


def test_the_watchdog_writes_a_first_beat_at_start_and_keeps_errors(tmp_path: Path) -> None:
    watch, _, _ = serving(tmp_path)
    watch.watchdog.start()
    try:
        assert read_beat(tmp_path / "beat.json") is not None
        assert oct((tmp_path / "beat.json").stat().st_mode & 0o777) == "0o644"
    finally:
        watch.watchdog.stop()
    gone, _, _ = serving(tmp_path / "missing")
    gone.watchdog.beat_now()
    assert gone.watchdog.error is not None
    assert "FileNotFoundError" in gone.watchdog.error


# -- the successor records a death ----------------------------------------------------------


def test_the_successor_records_its_predecessors_death(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TS_HEALTH_STATE_DIR", str(tmp_path))
    monkeypatch.setattr(
        tracker_module, "current_identity", lambda: Identity("100-5", "9000", os.getpid())
    )
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    directory = StateStore(tmp_path, "m", "1.0").directory
    directory.mkdir(parents=True)
    path = beat_path(directory, "100-5", "9000")
    write_beat(path, beat(pid=int(gone.stdout), in_flight_since=NOW - 1.5))
    tracker = Tracker(clock=lambda: NOW + 10, sleep=lambda s: None)
    manifest = {"model": {"modelVersion": "1.0"}}
    context = type("Context", (), {"model_name": "m", "manifest": manifest})()
    tracker.initialize(context, lambda: None)
    serving = tracker._serving
    assert serving is not None  # READY "inside TorchServe": this process beats now
    serving.watchdog.stop()
    record = StateStore(tmp_path, "m", "1.0", "100-5").read()
    assert record is not None
    [death] = record.deaths
    assert (death.pid, death.cause, death.request_s) == (int(gone.stdout), DeathCause.DIED, 1.5)
    # The beat was consumed (another attempt would not count it again); this process beats
    # in its place.
    again = read_beat(path)
    assert again is not None
    assert again.pid == os.getpid()
