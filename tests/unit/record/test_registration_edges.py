"""Narrowing a record at its edges: which run is the newest and which error the newest when
the worker ids sort the other way, the record's own copy of an error (with its traceback),
an error exactly as old as the registration, and a registration with no run yet."""

from __future__ import annotations

from ts_health_handler.record import ErrorInfo, InitPhase, InitRecord
from ts_health_handler.record._deaths import Death, DeathCause
from ts_health_handler.record._record import Previous, WorkerRun
from ts_health_handler.record._registration import narrow


def at(second: int) -> str:
    return f"2025-06-15T15:06:{second:02d}.000Z"


# The newest error is the middle one, and its type sorts first: neither the order of the list
# nor a comparison of whole errors finds it.
OLD, NEWEST, MIDDLE = (
    ErrorInfo("B", "old", at(11), 1),
    ErrorInfo("A", "newest", at(30), 2),
    ErrorInfo("C", "middle", at(20), 1),
)
RUNS = (
    WorkerRun("9000", 10, InitPhase.FAILED, 1, at(10), at(10), OLD, 1, 1, at(11), at(11)),
    # the newest activity, though the id sorts before 9002's
    WorkerRun("9001", 11, InitPhase.INITIALIZING, 2, at(12), at(40), NEWEST, 1, 1, at(30)),
    WorkerRun("9002", 12, InitPhase.FAILED, 1, at(15), at(15), MIDDLE, 1, 1, at(20), at(20)),
)
DEATHS = (
    Death("9000", 5, 1.0, 2.0, DeathCause.DIED),
    Death("9003", 6, 1.0, 2.0, DeathCause.DIED),
)
RECORD = InitRecord(
    "m",
    "1.0",
    InitPhase.FAILED,
    attempts=9,
    failures=8,
    consecutive_failures=7,
    attempts_to_ready=3,
    first_failure_at=at(1),
    last_started_at=at(40),
    last_finished_at=at(30),
    last_duration_s=1.5,
    last_error=NEWEST._replace(traceback="Traceback (most recent call last): ..."),
    recent_errors=(ErrorInfo("X", "before", at(9), 1), ErrorInfo("Y", "edge", at(10), 1)),
    server="100-5",
    worker_pid=11,
    updated_at=at(40),
    workers=RUNS,
    deaths=DEATHS,
    deaths_total=4,
)


def test_the_registration_takes_the_newest_run_and_the_newest_error() -> None:
    narrowed = narrow(RECORD, ["9000", "9001", "9002"])
    assert narrowed == RECORD._replace(
        phase=InitPhase.INITIALIZING,  # 9001's: the newest activity
        attempts=4,
        failures=3,
        consecutive_failures=3,
        first_failure_at=at(11),
        last_started_at=at(40),
        last_finished_at=at(20),
        last_error=RECORD.last_error,  # the record's own copy: with the traceback
        recent_errors=(ErrorInfo("Y", "edge", at(10), 1),),  # since the first start, included
        worker_pid=11,
        workers=RUNS,
        deaths=(DEATHS[0],),
    )


def test_two_runs_of_three_take_their_own_start_pid_and_phase() -> None:
    narrowed = narrow(RECORD, ["9000", "9002"])
    assert (narrowed.phase, narrowed.worker_pid) == (InitPhase.FAILED, 12)  # 9002: the newer
    assert (narrowed.last_started_at, narrowed.last_finished_at) == (at(15), at(20))
    assert (narrowed.attempts, narrowed.last_error) == (2, MIDDLE)
    assert narrowed.previous == Previous(2, 1, InitPhase.INITIALIZING, at(40), NEWEST)


def test_an_error_of_the_runs_not_the_records_is_kept_as_the_run_has_it() -> None:
    other = RECORD._replace(last_error=ErrorInfo("A", "newest", at(31), 2, "Traceback"))
    assert narrow(other, ["9000", "9001", "9002"]).last_error == NEWEST
    assert narrow(RECORD._replace(last_error=None), ["9001"]).last_error == NEWEST


def test_the_runs_left_out_are_summed_up_with_their_newest_error() -> None:
    narrowed = narrow(RECORD, ["9004"])
    assert narrowed.previous == Previous(4, 3, InitPhase.INITIALIZING, at(40), NEWEST)
    clean = tuple(r._replace(last_error=None) for r in RUNS)
    summary = narrow(RECORD._replace(workers=(*clean, RUNS[0]._replace(id="9005"))), ["9005"])
    assert summary.previous == Previous(4, 3, InitPhase.INITIALIZING, at(40), None)


def test_a_registration_without_a_run_yet_starts_from_nothing() -> None:
    narrowed = narrow(RECORD, ["9004"])
    assert narrowed == InitRecord(
        "m",
        "1.0",
        InitPhase.INITIALIZING,
        server="100-5",
        updated_at=at(40),
        deaths_total=4,
        previous=Previous(4, 3, InitPhase.INITIALIZING, at(40), NEWEST),
    )
    assert narrowed.last_error is None
    assert narrowed.recent_errors == ()
