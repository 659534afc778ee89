"""A record belongs to one registration of one server: its transitions and ``narrow`` (which
run and which error are the newest when the worker ids sort the other way, the record's own
copy of an error with its traceback, an error exactly as old as the registration, a
registration with no run yet). Which record TorchServe's describe picks:
tests/unit/monitor/test_match.py."""

from __future__ import annotations

from tests.support.records import SERVER, attempt
from ts_health_handler.record import ErrorInfo, InitPhase, InitRecord, utc_iso
from ts_health_handler.record._deaths import Death, DeathCause
from ts_health_handler.record._record import MAX_RUNS, Previous, WorkerRun
from ts_health_handler.record._registration import narrow

T0 = 1_750_000_000.0


# -- transitions ----------------------------------------------------------------------------


def test_retries_of_one_worker_thread_continue_the_streak() -> None:
    record = attempt(None, "9000", 11, at=T0, fail="a")
    record = attempt(record, "9000", 12, at=T0 + 2, fail="b")
    assert (record.attempts, record.consecutive_failures, record.previous) == (2, 2, None)
    [run] = record.workers
    assert (run.id, run.pid, run.attempts, run.phase) == ("9000", 12, 2, InitPhase.FAILED)
    assert run.first_started_at == utc_iso(T0)
    assert run.last_started_at == utc_iso(T0 + 2)
    assert run.last_error is not None
    assert run.last_error.message == "b"


def test_a_new_worker_thread_with_none_alive_keeps_every_run() -> None:
    # Inside a worker a re-registration, a second worker and a scale-up look alike: the
    # record keeps every thread's run, and TorchServe's describe narrows it (below).
    broken = attempt(None, "9000", 11, at=T0, fail="old build")
    broken = attempt(broken, "9000", 12, at=T0 + 2, fail="old build")
    fixed = attempt(broken, "9001", 21, at=T0 + 60)
    assert [(r.id, r.phase, r.failures) for r in fixed.workers] == [
        ("9000", InitPhase.FAILED, 2),
        ("9001", InitPhase.READY, 0),
    ]
    assert InitRecord.from_json(fixed.to_json()) == fixed


def test_narrowed_to_the_new_registration_the_old_build_is_previous() -> None:
    broken = attempt(None, "9000", 11, at=T0, fail="old build")
    broken = attempt(broken, "9000", 12, at=T0 + 2, fail="old build")
    fixed = InitRecord.started(
        broken, model_name="m", model_version="1.0", now=T0 + 60, worker_pid=21,
        server=SERVER, worker_id="9001", worker_alive=lambda pid: False,
    )  # fmt: skip
    view = narrow(fixed, ["9001"])
    assert (view.attempts, view.failures, view.consecutive_failures) == (1, 0, 0)
    assert (view.first_failure_at, view.last_error, view.recent_errors) == (None, None, ())
    assert view.phase is InitPhase.INITIALIZING
    assert [r.id for r in view.workers] == ["9001"]
    assert view.previous is not None
    assert (view.previous.attempts, view.previous.failures) == (2, 2)
    assert view.previous.phase is InitPhase.FAILED
    assert view.previous.last_error is not None
    assert view.previous.last_error.message == "old build"
    assert view.previous.last_error.traceback is None
    assert view.previous.ended_at == broken.updated_at


def test_a_record_keeps_the_newest_runs_only() -> None:
    record = None
    for n in range(MAX_RUNS + 3):
        record = attempt(record, str(9000 + n), 100 + n, at=T0 + n)
    assert record is not None
    assert len(record.workers) == MAX_RUNS
    assert record.workers[0].id == "9003"
    assert record.workers[-1].id == str(9000 + MAX_RUNS + 2)


def test_narrowing_a_record_without_worker_ids_changes_nothing() -> None:
    legacy = attempt(None, None, 11, at=T0, fail="x")
    assert narrow(legacy, ["9000"]) is legacy


def test_narrowing_to_threads_the_record_never_had_leaves_only_history() -> None:
    old = attempt(None, "9000", 11, at=T0, fail="old")
    view = narrow(old, ["9005"])
    assert (view.attempts, view.failures, view.workers, view.last_error) == (0, 0, (), None)
    assert view.previous is not None
    assert view.previous.failures == 1


def test_a_new_worker_thread_while_another_lives_joins_the_registration() -> None:
    record = attempt(None, "9000", 11, at=T0)
    record = attempt(record, "9001", 12, at=T0 + 5, alive=(11,))  # scale-up
    assert [r.id for r in record.workers] == ["9000", "9001"]
    assert record.attempts == 2
    assert record.previous is None


def test_a_worker_that_died_inside_initialize_is_counted_for_its_own_thread() -> None:
    record = InitRecord.started(
        None, model_name="m", model_version="1.0", now=T0, worker_pid=11, server=SERVER,
        worker_id="9000",
    )  # fmt: skip
    # Another thread starts meanwhile: its start says nothing about 9000's process.
    record = attempt(record, "9001", 31, at=T0 + 1, fail="x", alive=(11,))
    record = attempt(record, "9000", 12, at=T0 + 5, alive=())
    assert [e.type for e in record.recent_errors] == ["builtins.KeyError", "WorkerDied"]
    assert "worker 11 ended during initialize()" in record.recent_errors[1].message
    run = record.run("9000")
    assert run is not None
    assert run.attempts == 2
    assert run.phase is InitPhase.READY


def test_another_server_starts_over_without_history() -> None:
    record = attempt(None, "9000", 11, at=T0, fail="a")
    other = attempt(record, "9000", 51, at=T0 + 9, server="200-7")
    assert (other.server, other.attempts, other.failures, other.previous) == ("200-7", 1, 0, None)


# -- narrowed: the newest run and the newest error -------------------------------------------


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
