"""The probe's merging logic as a pure function: one word and one reason per model, in their
order; the table's cells; the boundaries and the exact reasons, with the other workers and
the deaths they name; what comes first after READY."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.describes import entry, entry_json
from tests.support.records import attempt, beat
from tests.support.status_docs import status_doc
from ts_health_handler._document import StatusDoc, parse_status
from ts_health_handler._lifecycle import ModelState
from ts_health_handler.monitor._policy import READY_ONLY, ReadinessPolicy
from ts_health_handler.probe import ModelHealth, Observation, assess, health_json
from ts_health_handler.record import ErrorInfo, InitPhase, InitRecord, utc_iso
from ts_health_handler.record._deaths import Death, DeathCause
from ts_health_handler.torchserve._answers import ModelEntry

NOW = 1_750_000_000.0


def failed_record(
    failures: int = 2, first_failure_ago: float = 10.0, retrying: bool = False
) -> InitRecord:
    """A record of ``failures`` failed attempts, the first ``first_failure_ago`` s before NOW."""
    record = None
    start = NOW - first_failure_ago
    for number in range(1, failures + 1):
        at = start + (number - 1)
        record = InitRecord.started(
            record,
            model_name="m",
            model_version="1.0",
            now=at,
            worker_pid=10 + number,
            server="1",
        )
        error = ErrorInfo("builtins.ValueError", "weights\nmissing", utc_iso(at), number)
        record = record.failed(error, now=at, duration_s=0.1, worker_pid=10 + number)
    assert record is not None
    if retrying:
        record = InitRecord.started(
            record, model_name="m", model_version="1.0", now=NOW - 0.5, worker_pid=99, server="1"
        )
    return record


def doc(status: str = "ready", **extra: Any) -> StatusDoc:
    """A valid document, checked as the monitor checks what TorchServe hands back."""
    return parse_status(status_doc(status, **extra))


def verdict(describe: ModelEntry, **seen: Any) -> ModelHealth:
    return assess("m", "1.0", Observation(describe=describe, now=NOW, **seen))


def test_ready_when_a_worker_is_ready_and_status_ready() -> None:
    health = verdict(entry("READY", "UNLOADING"), status=doc())
    assert health.state is ModelState.READY
    assert health.reason.startswith("1/2 workers READY, 0 pending, 100 free")
    assert READY_ONLY.admits(health.state)


def test_ready_without_our_status_names_why_it_is_unknown() -> None:
    health = verdict(entry("READY"), status_error="customized describe failed: timed out")
    assert health.state is ModelState.READY
    assert "health status unknown: customized describe failed: timed out" in health.reason


def test_initializing_without_record() -> None:
    health = verdict(entry("UNLOADING"), record_path="/state/m/1.0/init.json")
    assert health.state is ModelState.INITIALIZING
    assert "0/1 workers READY" in health.reason
    assert "no initialization record in /state/m/1.0/init.json" in health.reason
    assert not READY_ONLY.admits(health.state)


def test_initializing_with_a_record_in_progress() -> None:
    record = InitRecord.started(
        None, model_name="m", model_version="1.0", now=NOW - 3, worker_pid=5, server="1"
    )
    health = verdict(entry("UNLOADING"), record=record)
    assert health.state is ModelState.INITIALIZING
    assert "attempt 1 started at" in health.reason


def test_initializing_after_a_success_means_a_worker_restarts() -> None:
    record = InitRecord.started(
        None, model_name="m", model_version="1.0", now=NOW - 9, worker_pid=5, server="1"
    ).succeeded(now=NOW - 8, duration_s=1, worker_pid=5)
    health = verdict(entry("UNLOADING"), record=record)
    assert health.state is ModelState.INITIALIZING
    assert "last initialization succeeded" in health.reason


def test_unreadable_record_is_a_detail_not_a_crash() -> None:
    health = verdict(entry("UNLOADING"), record_error="unreadable health record x: not JSON")
    assert health.state is ModelState.INITIALIZING
    assert "unreadable health record" in health.reason


def test_failing_names_attempts_and_the_reason_on_one_line() -> None:
    health = verdict(entry("UNLOADING"), record=failed_record(3))
    assert health.state is ModelState.FAILING
    assert "failed 3 times in a row" in health.reason
    assert "ValueError: weights missing" in health.reason
    assert "\n" not in health.reason
    assert "TorchServe is retrying" in health.reason


def test_failing_while_a_retry_is_in_progress() -> None:
    health = verdict(entry("UNLOADING"), record=failed_record(1, retrying=True))
    assert health.state is ModelState.FAILING
    assert "failed once in a row" in health.reason
    assert "attempt 2 in progress" in health.reason


def test_unhealthy_past_max_retry_timeout() -> None:
    health = verdict(
        entry("UNLOADING", max_retry=60), record=failed_record(4, first_failure_ago=61)
    )
    assert health.state is ModelState.UNHEALTHY
    assert "past maxRetryTimeoutInSec=60" in health.reason
    assert "ValueError: weights missing" in health.reason


def test_unhealthy_when_ping_says_so_and_initialization_fails() -> None:
    health = verdict(entry("UNLOADING"), record=failed_record(2), ping_healthy=False)
    assert health.state is ModelState.UNHEALTHY
    assert "/ping reports Unhealthy" in health.reason


def test_ping_unhealthy_alone_does_not_make_an_initializing_model_unhealthy() -> None:
    # Another model may be the one TorchServe counts as unhealthy.
    assert verdict(entry("UNLOADING"), ping_healthy=False).state is ModelState.INITIALIZING


def test_no_workers_with_min_workers_zero_is_unhealthy() -> None:
    health = verdict(entry(min_workers=0))
    assert health.state is ModelState.UNHEALTHY
    assert "minWorkers is 0" in health.reason


def test_no_workers_yet_with_min_workers_is_initializing() -> None:
    assert verdict(entry(min_workers=1)).state is ModelState.INITIALIZING


def test_held_failure_is_failing_even_with_a_ready_worker() -> None:
    status = doc(
        "failed",
        initialization={
            "error": {"type": "builtins.OSError", "message": "no weights", "at": "t", "attempt": 1}
        },
    )
    health = verdict(entry("READY", remaining=0), status=status)
    assert health.state is ModelState.FAILING
    assert "held" in health.reason
    assert "OSError: no weights" in health.reason
    assert "will not retry" in health.reason


def test_saturated_names_the_numbers() -> None:
    health = verdict(entry("READY", remaining=0, pending=100), status=doc("degraded"))
    assert health.state is ModelState.SATURATED
    assert "100 pending, 0 free" in health.reason


def test_degraded_names_the_check() -> None:
    status = doc("degraded", check={"status": "failed", "error": "backend down"})
    health = verdict(entry("READY"), status=status)
    assert health.state is ModelState.DEGRADED
    assert health.reason.startswith("health check failed: backend down")
    assert not READY_ONLY.admits(health.state)
    assert ReadinessPolicy(allow_degraded=True).admits(health.state)


def test_a_ready_worker_wins_over_recorded_failures() -> None:
    # minWorkers 2: one worker serves, the other keeps failing.
    health = verdict(entry("READY", "UNLOADING"), record=failed_record(5), status=doc())
    assert health.state is ModelState.READY


def test_missing_job_queue_status_is_not_saturation() -> None:
    health = verdict(entry("READY", remaining=None), status=doc())
    assert health.state is ModelState.READY
    assert health_json(health)["queue"] is None


def test_a_describe_without_a_job_queue_has_a_dash_for_its_queue_cell() -> None:
    described = entry("READY", "LOADING", remaining=None)
    assert described.queue is None
    health = assess("m", "1.0", Observation(described))
    assert health.cells() == ("1/2", "-")
    assert health.cells(lambda q: "never asked") == ("1/2", "-")


@pytest.mark.parametrize(
    ("describe", "seen", "expected"),
    [
        # Order with no READY worker: unhealthy > failing > initializing.
        (
            entry("UNLOADING", max_retry=5),
            {"record": failed_record(2, 6), "ping_healthy": False},
            ModelState.UNHEALTHY,
        ),
        (
            entry("UNLOADING"),
            {"record": failed_record(2, 6), "ping_healthy": True},
            ModelState.FAILING,
        ),
        (entry("UNLOADING"), {"record": None, "ping_healthy": True}, ModelState.INITIALIZING),
        # Order with a READY worker: failing (held) > saturated > degraded > ready.
        (entry("READY", remaining=0), {"status": doc("failed")}, ModelState.FAILING),
        (entry("READY", remaining=0), {"status": doc("degraded")}, ModelState.SATURATED),
        (entry("READY"), {"status": doc("degraded")}, ModelState.DEGRADED),
        (entry("READY"), {"status": doc("ready"), "record": failed_record(1)}, ModelState.READY),
    ],
)
def test_priority(describe: ModelEntry, seen: dict[str, Any], expected: ModelState) -> None:
    assert verdict(describe, **seen).state is expected


def test_json_carries_the_evidence() -> None:
    record = failed_record(2)
    health = verdict(
        entry("UNLOADING", pending=3, remaining=97), record=record, record_path="/r/init.json"
    )
    data = health_json(health)
    assert data["state"] == "failing"
    assert data["ok"] is False
    assert data["workers"] == {"ready": 0, "total": 1, "min": 1, "max": 1}
    assert data["queue"] == {"pending": 3, "remaining_capacity": 97}
    assert data["max_retry_timeout_s"] == 300
    assert data["initialization"]["consecutive_failures"] == 2
    assert data["initialization"]["last_error"]["message"] == "weights\nmissing"
    assert data["record_path"] == "/r/init.json"


# -- boundaries and exact reasons ----------------------------------------------------------


def test_the_retry_window_includes_its_last_second() -> None:
    # TorchServe's own check is "at least maxRetryTimeoutInSec since the first failure".
    at_limit = verdict(entry("UNLOADING", max_retry=60), record=failed_record(2, 60.0))
    assert at_limit.state is ModelState.UNHEALTHY
    assert "failed 2 times in a row over 60 s, past maxRetryTimeoutInSec=60" in at_limit.reason
    inside = verdict(entry("UNLOADING", max_retry=60), record=failed_record(2, 59.5))
    assert inside.state is ModelState.FAILING


def test_a_first_failure_under_a_second_old_is_inside_a_one_second_window() -> None:
    health = verdict(entry("UNLOADING", max_retry=1), record=failed_record(1, 0.5))
    assert health.state is ModelState.FAILING


def test_a_first_failure_in_the_future_counts_as_now() -> None:
    # A clock step back: the streak is zero seconds old, never negative.
    at_zero = verdict(entry("UNLOADING", max_retry=0), record=failed_record(1, -30.0))
    assert at_zero.state is ModelState.UNHEALTHY
    assert "over 0 s, past maxRetryTimeoutInSec=0" in at_zero.reason


def test_one_free_queue_slot_is_not_saturated() -> None:
    health = verdict(entry("READY", remaining=1, pending=99), status=doc())
    assert health.state is ModelState.READY
    assert health.reason == "1/1 workers READY, 99 pending, 1 free in the job queue"


def test_no_workers_with_min_workers_zero_says_how_to_scale() -> None:
    health = verdict(entry(min_workers=0))
    assert health.reason == (
        "no workers (minWorkers is 0): scale the model with PUT /models/{name}?min_worker=1"
    )


def test_a_ready_model_appends_an_unreadable_record_to_its_reason() -> None:
    health = verdict(entry("READY"), status=doc(), record_error="bad record")
    assert health.reason == (
        "1/1 workers READY, 0 pending, 100 free in the job queue; "
        "initialization record unavailable: bad record"
    )


@pytest.mark.parametrize(
    ("kind", "shown"),
    [
        ("builtins.ValueError", "ValueError"),
        ("a.b.c.KeyError", "KeyError"),
        ("KeyError", "KeyError"),
        ("ts_health_handler.InitializationError", "InitializationError"),
    ],
)
def test_error_types_are_shown_without_their_module(kind: str, shown: str) -> None:
    record = InitRecord.started(
        None, model_name="m", model_version="1.0", now=NOW - 2, worker_pid=5, server="1"
    )
    error = ErrorInfo(kind, "boom", utc_iso(NOW - 1), 1)
    record = record.failed(error, now=NOW - 1, duration_s=1.0, worker_pid=5)
    health = verdict(entry("UNLOADING"), record=record)
    assert health.reason.endswith(f"(0/1 workers READY; TorchServe is retrying): {shown}: boom")


def test_a_long_message_is_cut_to_300_characters_in_the_reason() -> None:
    record = InitRecord.started(
        None, model_name="m", model_version="1.0", now=NOW - 2, worker_pid=5, server="1"
    )
    error = ErrorInfo("builtins.ValueError", "x" * 400, utc_iso(NOW - 1), 1)
    record = record.failed(error, now=NOW - 1, duration_s=1.0, worker_pid=5)
    reason = verdict(entry("UNLOADING"), record=record).reason
    assert reason.endswith("ValueError: " + "x" * 148 + "..." + "x" * 149)


def test_a_failure_streak_without_an_error_says_so() -> None:
    record = InitRecord(
        "m", "1.0", InitPhase.FAILED, attempts=1, failures=1, consecutive_failures=1
    )
    health = verdict(entry("UNLOADING"), record=record)
    assert health.state is ModelState.FAILING
    assert health.reason.endswith(": no error recorded")


def test_initializing_without_a_record_path_names_no_place() -> None:
    health = verdict(entry("UNLOADING"))
    assert health.reason == "no READY worker yet (0/1 workers READY; no initialization record)"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ({"type": "x.OSError", "message": "no\nweights"}, "OSError: no weights"),
        ({"type": "builtins.OSError", "message": ""}, "OSError: "),
        (None, "no error reported"),
        ("dropped", "no error reported"),  # TorchServe 0.12 drops a null field
    ],
)
def test_held_reason(error: Any, expected: str) -> None:
    initialization: dict[str, Any] = {"phase": "failed", "policy": "hold"}
    if isinstance(error, dict):
        initialization["error"] = {**error, "at": "2026-11-25T08:08:31.904Z", "attempt": 1}
    elif error is None:
        initialization["error"] = None
    health = verdict(entry("READY"), status=doc("failed", initialization=initialization))
    assert health.reason == (
        "initialization failed and is held; TorchServe will not retry "
        f"(health.on_init_failure: hold): {expected}"
    )


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        ({"status": "failed"}, "health check failed"),
        ({"status": "failed", "error": None}, "health check failed"),
        ({"status": "timeout"}, "health check timeout"),
        ({"status": "error", "error": "a\nb"}, "health check error: a b"),
    ],
)
def test_degraded_reason(check: Any, expected: str) -> None:
    health = verdict(entry("READY"), status=doc("degraded", check=check))
    assert health.reason == f"{expected} (1/1 workers READY)"


@pytest.mark.parametrize(
    ("value", "window"),
    [(float("nan"), None), (float("inf"), None), ("300", None), (True, None), (59.9, 59)],
)
def test_odd_retry_timeouts_reach_the_verdict_as_a_count_or_none(value: Any, window: Any) -> None:
    describe = entry_json("UNLOADING")
    describe["maxRetryTimeoutInSec"] = value
    health = verdict(ModelEntry.from_json(describe), record=failed_record(2, 59.5))
    assert health_json(health)["max_retry_timeout_s"] == window
    # Without a usable window the streak is failing, never unhealthy; 59 s is past 59.
    assert health.state is (ModelState.UNHEALTHY if window == 59 else ModelState.FAILING)


@pytest.mark.parametrize("value", [float("nan"), "0", None, 0.5])
def test_odd_queue_numbers_never_make_a_model_saturated_by_accident(value: Any) -> None:
    describe = entry_json("READY")
    describe["jobQueueStatus"] = {"remainingCapacity": value, "pendingRequests": float("nan")}
    health = verdict(ModelEntry.from_json(describe), status=doc())
    # 0.5 free slots is read as 0: full, as TorchServe would never say half a slot.
    assert health.state is (ModelState.SATURATED if value == 0.5 else ModelState.READY)


# -- the other workers, and a death, in the reason ------------------------------------------


def test_the_other_worker_failing_is_the_newest_failure_of_a_worker_not_ready() -> None:
    # 9001 failed first (message "z"), 9002 later (message "a"): the newest is named, not the
    # greatest by type or message.
    record = attempt(None, "9001", 11, at=NOW, fail="z")
    record = attempt(record, "9002", 12, at=NOW + 10, fail="a")
    described = entry("READY", "UNLOADING", "UNLOADING", remaining=None)
    health = assess("m", "1.0", Observation(described, record=record, now=NOW + 20))
    assert health.state is ModelState.READY
    assert health.reason == "1/3 workers READY; other worker failing: KeyError: a"


def test_a_failure_recorded_for_a_worker_described_ready_is_not_another_worker_failing() -> None:
    # The record still holds 9000's failure (newest) though TorchServe describes it READY now.
    record = attempt(None, "9001", 11, at=NOW, fail="older")
    record = attempt(record, "9000", 12, at=NOW + 10, fail="stale")
    described = entry("READY", "UNLOADING", remaining=None)
    health = assess("m", "1.0", Observation(described, record=record, now=NOW + 20))
    assert health.reason == "1/2 workers READY; other worker failing: KeyError: older"
    alone = entry("READY", remaining=None)
    assert assess("m", "1.0", Observation(alone, record=record, now=NOW + 20)).reason == (
        "1/1 workers READY"
    )


def test_a_restarting_worker_names_the_death_of_the_last_worker_process() -> None:
    record = attempt(None, "9000", 11, at=NOW)
    death = Death("9000", 11, last_seen=NOW + 50, found=NOW + 60, cause=DeathCause.DIED)
    record = record._replace(deaths=(death,), deaths_total=1)
    health = assess(
        "m", "1.0", Observation(entry("UNLOADING", remaining=None), record=record, now=NOW + 70)
    )
    assert health.state is ModelState.INITIALIZING
    assert health.reason == (
        f"no READY worker (0/1 workers READY); the last initialization succeeded at "
        f"{record.last_finished_at}, a worker is restarting; the last worker process ended "
        "while serving: idle when last seen"
    )


# -- after READY: stuck before saturated, a death as a note ----------------------------------


def test_assess_puts_stuck_before_saturated_and_unstable_after() -> None:
    full_queue = entry("READY", remaining=0, pending=100)
    stuck = assess(
        "m", "1.0", Observation(full_queue, beats=(beat(in_flight_since=NOW - 40),), now=NOW)
    )
    assert stuck.state is ModelState.STUCK
    assert stuck.reason.endswith("(1/1 workers READY)")
    full = assess("m", "1.0", Observation(full_queue, beats=(beat(),), now=NOW))
    assert full.state is ModelState.SATURATED


def test_a_ready_reason_keeps_the_workers_and_adds_a_death_below_the_unstable_count() -> None:
    record = attempt(None, "9000", 11, at=NOW - 300)
    record = record.died(Death("9000", 11, NOW - 100, NOW - 90, DeathCause.DIED))
    described = entry("READY", remaining=None)
    health = assess("m", "1.0", Observation(described, record=record, beats=(beat(),), now=NOW))
    assert health.state is ModelState.READY
    assert health.reason == (
        "1/1 workers READY; a worker died once in the last 10 min while serving "
        "(last: idle when last seen)"
    )
