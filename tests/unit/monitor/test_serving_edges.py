"""The truth after READY at its edges: a heartbeat exactly at its limit, the fatal error's
policy in the reason, short type names and long messages, workers without beats, the
thresholds of deaths when no beat tells them, and the newest death."""

from __future__ import annotations

from typing import Any

from ts_health_handler._lifecycle import InitPhase, ModelState
from ts_health_handler.monitor._serving import Watch, after_ready, last_death
from ts_health_handler.record import ErrorInfo, InitRecord
from ts_health_handler.record._beat import Beat
from ts_health_handler.record._deaths import Death, DeathCause

NOW = 1_750_000_000.0


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
    }
    values.update(changes)
    return Beat(**values)


def died(record: InitRecord, *found: float, worker: str = "9000") -> InitRecord:
    for n, at in enumerate(found):
        record = record.died(Death(worker, 100 + n, at - 1, at, DeathCause.DIED))
    return record


RECORD = InitRecord("m", "1.0", InitPhase.READY)


def test_a_heartbeat_exactly_at_its_limit_has_not_stopped() -> None:
    assert after_ready([beat(at=NOW - 6)], 1, None, NOW) == Watch()
    assert after_ready([beat(at=NOW - 6.5)], 1, None, NOW).state is ModelState.STUCK
    assert after_ready([beat(at=NOW - 30, interval_s=10)], 1, None, NOW) == Watch()
    assert after_ready([beat(at=NOW - 31, interval_s=10)], 1, None, NOW).state is ModelState.STUCK


def test_a_fatal_error_says_whether_the_worker_restarts() -> None:
    fatal = ErrorInfo("torch.cuda.OutOfMemoryError", "CUDA out of memory", "t", 1)
    watch = after_ready([beat(fatal=fatal, restarting=True)], 1, None, NOW)
    assert (watch.state, watch.reason) == (
        ModelState.FAILING,
        "fatal error, the worker restarts: OutOfMemoryError: CUDA out of memory",
    )
    watch = after_ready([beat(fatal=fatal)], 1, None, NOW)
    assert watch.reason == (
        "fatal error, health.on_fatal_error: report: OutOfMemoryError: CUDA out of memory"
    )


def test_a_long_error_message_is_cut_and_made_one_line() -> None:
    error = ErrorInfo("ValueError", "bad\ninput " + "x" * 1000, "t", 1)
    watch = after_ready([beat(consecutive_failures=5, last_error=error)], 1, None, NOW)
    prefix = "the last 5 requests failed, none succeeded since: ValueError: "
    assert watch.reason.startswith(prefix + "bad input xxx")
    assert len(watch.reason) == len(prefix) + 300
    assert "..." in watch.reason
    assert "\n" not in watch.reason


def test_failures_without_an_error_recorded_are_not_failing() -> None:
    assert after_ready([beat(consecutive_failures=9)], 1, None, NOW) == Watch()


def test_a_version_is_stuck_only_when_every_ready_worker_has_a_beat_that_says_so() -> None:
    stuck = beat(in_flight_since=NOW - 40)
    # two READY workers, one beat: the other worker may serve
    watch = after_ready([stuck], 2, None, NOW)
    assert watch.state is None
    assert watch.notes == (
        "1 of 2 workers stuck: one request has run for 40 s (stuck after 30 s); "
        "TorchServe kills the worker at responseTimeout 120 s",
    )
    both = [stuck, beat(worker="9001", pid=42, in_flight_since=NOW - 50)]
    assert after_ready(both, 2, None, NOW).state is ModelState.STUCK
    assert after_ready(both, 2, None, NOW).reason.startswith("one request has run for 40 s")


def test_one_worker_failing_of_two_is_a_note() -> None:
    error = ErrorInfo("ValueError", "bad", "t", 1)
    failing = beat(consecutive_failures=5, last_error=error)
    watch = after_ready([failing, beat(worker="9001", pid=42)], 2, None, NOW)
    assert watch.state is None
    assert watch.notes == (
        "1 of 2 workers failing: the last 5 requests failed, none succeeded since: ValueError: bad",
    )


def test_without_beats_the_default_thresholds_judge_the_deaths() -> None:
    two = died(RECORD, NOW - 599, NOW - 10)
    assert after_ready([], 1, two, NOW).notes == (
        "a worker died 2 times in the last 10 min while serving (last: idle when last seen)",
    )
    three = died(RECORD, NOW - 700, NOW - 599, NOW - 30, NOW - 10)
    assert after_ready([], 1, three, NOW).unstable == (
        "a worker died 3 times in the last 10 min while serving "
        "(last: idle when last seen); unstable from 3"
    )


def test_one_recent_death_is_told_once_and_in_the_beats_window() -> None:
    one = died(RECORD, NOW - 100)
    watch = after_ready([beat(death_window_s=150, unstable_after_deaths=1)], 1, one, NOW)
    assert watch.unstable == (
        "a worker died once in the last 2.5 min while serving (last: idle when last seen); "
        "unstable from 1"
    )
    assert watch.notes == ()
    assert after_ready([beat(death_window_s=99)], 1, one, NOW) == Watch()
    assert after_ready([beat()], 1, RECORD, NOW) == Watch()
    assert after_ready([beat()], 1, None, NOW) == Watch()


def test_the_newest_death_is_the_one_found_last() -> None:
    assert last_death(None) is None
    assert last_death(RECORD) is None
    record = died(RECORD, NOW - 50, worker="9000")
    record = died(record, NOW - 10, worker="9001")
    record = died(record, NOW - 90, worker="9002")
    newest = last_death(record)
    assert newest is not None
    assert (newest.worker, newest.found) == ("9001", NOW - 10)
