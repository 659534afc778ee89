"""After READY, what the monitor makes of the beats and deaths: stuck, failing, unstable.
Real TorchServe: tests/integration/test_after_ready.py."""

from __future__ import annotations

from tests.support.records import NOW, POISON, beat
from ts_health_handler._lifecycle import InitPhase, ModelState
from ts_health_handler.monitor._serving import after_ready
from ts_health_handler.record import ErrorInfo, InitRecord, narrow
from ts_health_handler.record._deaths import Death, DeathCause


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


def test_the_oldest_of_many_requests_in_flight_is_named_stuck() -> None:
    busy = beat(in_flight_since=NOW - 40, in_flight=3, request_ids=("r1",))
    watch = after_ready([busy], 1, None, NOW)
    assert watch.state is ModelState.STUCK
    assert watch.reason.startswith("the oldest of 3 requests in flight has run for 40 s")
    one = after_ready([beat(in_flight_since=NOW - 40, in_flight=1)], 1, None, NOW)
    assert one.reason.startswith("one request has run for 40 s (stuck after 30 s)")
