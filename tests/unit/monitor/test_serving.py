"""After READY, what the monitor makes of the beats and deaths: stuck (a heartbeat exactly at
its limit; only when every READY worker has a beat that says so), failing (the fatal error's
policy in the reason, short type names, long messages cut), unstable (the thresholds of
deaths when no beat tells them, the beat's window), and the newest death.
Real TorchServe: tests/integration/test_after_ready.py."""

from __future__ import annotations

from tests.support.records import NOW, POISON, beat
from ts_health_handler._lifecycle import InitPhase, ModelState
from ts_health_handler.monitor._serving import Watch, after_ready, last_death
from ts_health_handler.record import ErrorInfo, InitRecord, narrow
from ts_health_handler.record._deaths import Death, DeathCause


def died(record: InitRecord, *found: float, worker: str = "9000") -> InitRecord:
    for n, at in enumerate(found):
        record = record.died(Death(worker, 100 + n, at - 1, at, DeathCause.DIED))
    return record


RECORD = InitRecord("m", "1.0", InitPhase.READY)


# -- stuck ----------------------------------------------------------------------------------


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


def test_the_oldest_of_many_requests_in_flight_is_named_stuck() -> None:
    busy = beat(in_flight_since=NOW - 40, in_flight=3, request_ids=("r1",))
    watch = after_ready([busy], 1, None, NOW)
    assert watch.state is ModelState.STUCK
    assert watch.reason.startswith("the oldest of 3 requests in flight has run for 40 s")
    one = after_ready([beat(in_flight_since=NOW - 40, in_flight=1)], 1, None, NOW)
    assert one.reason.startswith("one request has run for 40 s (stuck after 30 s)")


def test_a_stopped_heartbeat_is_stuck() -> None:
    watch = after_ready([beat(at=NOW - 7)], 1, None, NOW)
    assert watch.state is ModelState.STUCK
    assert "heartbeat stopped 7 s ago" in watch.reason
    assert after_ready([beat(at=NOW - 5)], 1, None, NOW).state is None  # beat + 5 s at least


def test_a_heartbeat_exactly_at_its_limit_has_not_stopped() -> None:
    assert after_ready([beat(at=NOW - 6)], 1, None, NOW) == Watch()
    assert after_ready([beat(at=NOW - 6.5)], 1, None, NOW).state is ModelState.STUCK
    assert after_ready([beat(at=NOW - 30, interval_s=10)], 1, None, NOW) == Watch()
    assert after_ready([beat(at=NOW - 31, interval_s=10)], 1, None, NOW).state is ModelState.STUCK


# -- failing --------------------------------------------------------------------------------


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


def test_one_worker_failing_of_two_is_a_note() -> None:
    error = ErrorInfo("ValueError", "bad", "t", 1)
    failing = beat(consecutive_failures=5, last_error=error)
    watch = after_ready([failing, beat(worker="9001", pid=42)], 2, None, NOW)
    assert watch.state is None
    assert watch.notes == (
        "1 of 2 workers failing: the last 5 requests failed, none succeeded since: ValueError: bad",
    )


# -- deaths ---------------------------------------------------------------------------------


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
