"""After READY, in-process: the failure streak and fatal errors, the heartbeat, deaths found by
the successor, and what the monitor makes of them (stuck, failing, unstable, the describe
guard). Real TorchServe: tests/integration/test_after_ready.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ts_health_handler import ConfigError, HealthConfig
from ts_health_handler._lifecycle import InitPhase, ModelState
from ts_health_handler.handler import _canary as canary_module
from ts_health_handler.handler import _tracker as tracker_module
from ts_health_handler.handler._identity import Identity
from ts_health_handler.handler._serving import Serving
from ts_health_handler.handler._tracker import Tracker
from ts_health_handler.monitor._assess import Observation, assess
from ts_health_handler.monitor._guard import (
    PENDING_FILE,
    forget_pending,
    hold_describe,
    remember_pending,
)
from ts_health_handler.monitor._serving import after_ready
from ts_health_handler.record import ErrorInfo, InitRecord, StateStore, narrow
from ts_health_handler.record._beat import Beat, beat_path, read_beat, read_beats, write_beat
from ts_health_handler.record._deaths import Death, DeathCause, death_from_beat
from ts_health_handler.torchserve._answers import ModelEntry

NOW = 1_750_000_000.0
POISON = "CUDA error: device-side assert triggered"


def beat(**changes: Any) -> Beat:
    values: dict[str, Any] = {
        "worker": "9000",
        "pid": 41,
        "at": NOW,
        "interval_s": 1.0,
        "requests": 10,
        "failed": 0,
        "consecutive_failures": 0,
        "stuck_after_s": 30.0,
        "response_timeout_s": 120.0,
    }
    values.update(changes)
    return Beat(**values)


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


class Counters:
    """The tracker attributes ``Serving`` reads."""

    def __init__(self) -> None:
        self.requests_total = 0
        self.requests_failed = 0
        self.in_handle = False
        self.last_request_at: float | None = None


def serving(tmp_path: Path, **health: Any) -> tuple[Serving, Counters, list[tuple[float, int]]]:
    counters, exits = Counters(), []
    config = HealthConfig.from_mapping(health)
    watch = Serving(
        counters,  # type: ignore[arg-type]
        config,
        "9000",
        tmp_path / "beat.json",
        lambda: NOW,
        exit_later=lambda delay, status: exits.append((delay, status)),
    )
    return watch, counters, exits


def request(watch: Serving, counters: Counters, error: BaseException | None = None) -> None:
    counters.requests_total += 1
    if error is not None:
        counters.requests_failed += 1
        watch.failed(error, 1)


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
    counters.requests_total, counters.in_handle, counters.last_request_at = 3, True, NOW - 4
    now = watch.beat()
    assert (now.in_flight_since, now.requests, now.stuck_after_s, now.interval_s) == (
        NOW - 4,
        3,
        7.0,
        0.5,
    )
    counters.in_handle = False
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


# -- beats and deaths, as files -------------------------------------------------------------


def test_a_beat_round_trips_and_bad_ones_are_skipped(tmp_path: Path) -> None:
    error = ErrorInfo("RuntimeError", POISON, "2025-06-15T15:06:40.000Z", 3)
    one = beat(fatal=error, last_error=error, in_flight_since=NOW - 2, restarting=True)
    path = beat_path(tmp_path, "100-5", "9000")
    write_beat(path, one)
    assert read_beat(path) == one
    (tmp_path / "beat.x.9001.json").write_text("{not json")
    (tmp_path / "beat.x.9002.json").write_text(json.dumps({"schema_version": 9}))
    assert read_beats(tmp_path) == [one]
    assert read_beat(tmp_path / "beat.none.json") is None


@pytest.mark.parametrize(
    ("changes", "cause", "text"),
    [
        ({}, DeathCause.DIED, "idle when last seen"),
        ({"in_flight_since": NOW - 0.2}, DeathCause.DIED, "during a request, 0.2 s in"),
        (
            {"in_flight_since": NOW - 119.5, "response_timeout_s": 120.0},
            DeathCause.RESPONSE_TIMEOUT,
            "killed by TorchServe at responseTimeout",
        ),
        (
            {"fatal": ErrorInfo("torch.AcceleratorError", POISON, "t", 1), "restarting": True},
            DeathCause.FATAL_RESTART,
            f"restarted after a fatal error: AcceleratorError: {POISON}",
        ),
    ],
)
def test_a_death_is_told_from_the_last_beat(
    changes: dict[str, Any], cause: DeathCause, text: str
) -> None:
    death = death_from_beat(beat(**changes), found=NOW + 3)
    assert (death.cause, death.last_seen, death.found) == (cause, NOW, NOW + 3)
    assert text in death.describe()


def test_deaths_are_kept_counted_and_narrowed_by_worker() -> None:
    record = InitRecord.started(
        None, model_name="m", model_version="1.0", now=NOW, worker_pid=1, worker_id="9000"
    )
    for n in range(25):
        worker = "9000" if n % 2 else "9001"
        record = record.died(Death(worker, 100 + n, NOW + n, NOW + n + 1, DeathCause.DIED))
    assert (len(record.deaths), record.deaths_total) == (20, 25)
    assert InitRecord.from_json(record.to_json()) == record
    assert {d.worker for d in narrow(record, ["9000"]).deaths} == {"9000"}


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


# -- the monitor ----------------------------------------------------------------------------


def test_every_ready_worker_stuck_makes_it_stuck() -> None:
    watch = after_ready([beat(in_flight_since=NOW - 40)], 1, None, NOW + 1)
    assert watch.state is ModelState.STUCK
    assert "one request has run for 41 s (stuck after 30 s)" in watch.reason
    assert "TorchServe kills the worker at responseTimeout 120 s" in watch.reason


def test_one_stuck_worker_of_two_is_a_note() -> None:
    beats = [beat(in_flight_since=NOW - 40), beat(worker="9001", pid=42)]
    watch = after_ready(beats, 2, None, NOW)
    assert watch.state is None
    assert watch.notes[0].startswith("1 of 2 workers stuck: one request has run for 40 s")


def test_a_stopped_heartbeat_is_stuck() -> None:
    watch = after_ready([beat(at=NOW - 7)], 1, None, NOW)
    assert watch.state is ModelState.STUCK
    assert "heartbeat stopped 7 s ago" in watch.reason
    assert after_ready([beat(at=NOW - 5)], 1, None, NOW).state is None  # beat + 5 s at least


def test_failing_requests_and_fatal_errors_make_it_failing() -> None:
    error = ErrorInfo("builtins.ValueError", "bad input", "t", 9)
    assert after_ready([beat(consecutive_failures=4, last_error=error)], 1, None, NOW).state is None
    watch = after_ready([beat(consecutive_failures=5, last_error=error)], 1, None, NOW)
    assert (watch.state, watch.reason) == (
        ModelState.FAILING,
        "the last 5 requests failed, none succeeded since: ValueError: bad input",
    )
    fatal = ErrorInfo("RuntimeError", POISON, "t", 1)
    watch = after_ready([beat(fatal=fatal, consecutive_failures=1)], 1, None, NOW)
    assert watch.reason == f"fatal error, health.on_fatal_error: report: RuntimeError: {POISON}"


def test_deaths_in_the_window_make_it_unstable() -> None:
    record = InitRecord("m", "1.0", InitPhase.READY)
    for n in range(3):
        record = record.died(Death("9000", 10 + n, NOW - 100 + n, NOW - 90 + n, DeathCause.DIED))
    watch = after_ready([beat()], 1, record, NOW)
    assert watch.unstable == (
        "a worker died 3 times in the last 10 min while serving (last: idle when last seen); "
        "unstable from 3"
    )
    other = InitRecord.started(
        None, model_name="m", model_version="1.0", now=NOW, worker_pid=1, worker_id="9001"
    )
    other = other._replace(deaths=record.deaths)
    mine = narrow(other, ["9001"])  # the deaths were of thread 9000, not described now
    assert after_ready([beat()], 1, mine, NOW).unstable is None
    watch = after_ready([beat(unstable_after_deaths=4)], 1, record, NOW)
    assert watch.unstable is None
    assert watch.notes == (
        "a worker died 3 times in the last 10 min while serving (last: idle when last seen)",
    )
    assert after_ready([beat(death_window_s=60)], 1, record, NOW).notes == ()


def test_assess_puts_stuck_before_saturated_and_unstable_after() -> None:
    entry = ModelEntry.from_json(
        {
            "modelName": "m",
            "modelVersion": "1.0",
            "jobQueueStatus": {"remainingCapacity": 0, "pendingRequests": 100},
            "workers": [{"id": "9000", "status": "READY", "pid": 41}],
        }
    )
    stuck = assess("m", "1.0", Observation(entry, beats=(beat(in_flight_since=NOW - 40),), now=NOW))
    assert stuck.state is ModelState.STUCK
    assert stuck.reason.endswith("(1/1 workers READY)")
    full = assess("m", "1.0", Observation(entry, beats=(beat(),), now=NOW))
    assert full.state is ModelState.SATURATED


# -- the describe guard ---------------------------------------------------------------------


def test_no_describe_while_every_ready_worker_is_busy(tmp_path: Path) -> None:
    busy = beat(in_flight_since=NOW - 3)
    assert hold_describe([busy], 1, tmp_path, NOW, 2.0) is not None
    assert hold_describe([busy, beat(worker="9001", pid=42)], 2, tmp_path, NOW, 2.0) is None
    assert hold_describe([beat(in_flight_since=NOW - 1)], 1, tmp_path, NOW, 2.0) is None
    assert hold_describe([beat(at=NOW - 60)], 1, tmp_path, NOW, 2.0) is not None  # frozen
    assert hold_describe([], 1, tmp_path, NOW, 2.0) is None  # no evidence: ask


def test_no_second_describe_while_ours_is_unanswered(tmp_path: Path) -> None:
    remember_pending(tmp_path, NOW - 10)
    assert (tmp_path / PENDING_FILE).exists()
    held = hold_describe([beat(describe_at=NOW - 20)], 1, tmp_path, NOW, 2.0)
    assert held == (
        "not asked: an earlier describe, sent 10 s ago, still waits in the worker's queue"
    )
    assert hold_describe([beat(describe_at=NOW - 5)], 1, tmp_path, NOW, 2.0) is None
    forget_pending(tmp_path)
    assert not (tmp_path / PENDING_FILE).exists()
    remember_pending(tmp_path / "missing", NOW)  # never raises


# -- the device -----------------------------------------------------------------------------


def test_the_document_names_the_gpus_memory_and_nothing_on_a_cpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ts_health_handler._document import parse_status

    figures = {"device": "cuda:0", "memory_allocated": 5, "memory_reserved": 8,
               "max_memory_allocated": 6}  # fmt: skip
    asked: list[str] = []
    monkeypatch.setattr(
        canary_module, "device_info", lambda device: asked.append(device) or figures
    )
    tracker = Tracker(clock=lambda: NOW, sleep=lambda s: None)
    on_gpu = tracker.status(None, "cuda:0")
    assert on_gpu["worker"]["gpu"] == figures
    assert parse_status(json.loads(json.dumps(on_gpu)))["worker"]["gpu"] == figures
    on_cpu = tracker.status(None, "cpu")
    assert "gpu" not in on_cpu["worker"]
    assert asked == ["cuda:0"]  # a CPU never asks torch
