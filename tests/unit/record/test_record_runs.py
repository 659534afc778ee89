"""The record's run per TorchServe worker thread (``record/_record``): what a start, a success, a
failure and an attempt left unfinished by a dead process do to the thread's run, to the other
threads' runs and to the record; the runs a record keeps at most."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from tests.support.records import SERVER, started
from ts_health_handler.record import ErrorInfo, InitPhase, InitRecord, utc_iso
from ts_health_handler.record._record import MAX_RUNS, WorkerRun

T0 = 1_750_000_000.0  # 2025-06-15T15:06:40.000Z


def start(
    previous: InitRecord | None,
    worker: str | None,
    pid: int,
    now: float,
    alive: Iterable[int] = (),
) -> InitRecord:
    return started(previous, worker, pid, at=now, alive=alive)


def fail(record: InitRecord, worker: str | None, pid: int, now: float, text: str) -> InitRecord:
    error = ErrorInfo("builtins.OSError", text, utc_iso(now), record.attempts, "Traceback\n")
    return record.failed(error, now=now, duration_s=1.0, worker_pid=pid, worker_id=worker)


def brief(text: str, now: float, attempt: int) -> ErrorInfo:
    return ErrorInfo("builtins.OSError", text, utc_iso(now), attempt)


def run_of(record: InitRecord, worker: str) -> WorkerRun:
    run = record.run(worker)
    assert run is not None
    return run


# -- one thread's run through its attempts ---------------------------------------------------


def test_a_threads_first_start_is_a_new_run() -> None:
    record = start(None, "9000", 41, T0)

    assert record.workers == (
        WorkerRun("9000", 41, InitPhase.INITIALIZING, 1, utc_iso(T0), utc_iso(T0)),
    )
    assert (record.worker_pid, record.attempts, record.server) == (41, 1, SERVER)


def test_a_failure_is_counted_on_the_threads_run() -> None:
    record = fail(start(None, "9000", 41, T0), "9000", 41, T0 + 1, "first")

    assert record.workers == (
        WorkerRun(
            id="9000",
            pid=41,
            phase=InitPhase.FAILED,
            attempts=1,
            first_started_at=utc_iso(T0),
            last_started_at=utc_iso(T0),
            last_error=brief("first", T0 + 1, 1),
            failures=1,
            consecutive_failures=1,
            first_failure_at=utc_iso(T0 + 1),
            last_finished_at=utc_iso(T0 + 1),
        ),
    )
    assert record.last_error is not None
    assert record.last_error.traceback == "Traceback\n"  # the record keeps it, the run does not


def test_a_restart_of_a_failed_thread_keeps_its_history() -> None:
    failed = fail(start(None, "9000", 41, T0), "9000", 41, T0 + 1, "first")

    record = start(failed, "9000", 42, T0 + 10)

    assert record.workers == (
        WorkerRun(
            id="9000",
            pid=42,
            phase=InitPhase.INITIALIZING,
            attempts=2,
            first_started_at=utc_iso(T0),
            last_started_at=utc_iso(T0 + 10),
            last_error=brief("first", T0 + 1, 1),
            failures=1,
            consecutive_failures=1,
            first_failure_at=utc_iso(T0 + 1),
            last_finished_at=utc_iso(T0 + 1),
        ),
    )


def test_a_second_failure_keeps_the_first_failures_time() -> None:
    record = fail(start(None, "9000", 41, T0), "9000", 41, T0 + 1, "first")
    record = fail(start(record, "9000", 42, T0 + 10), "9000", 42, T0 + 11, "second")

    run = run_of(record, "9000")
    assert (run.failures, run.consecutive_failures, run.attempts) == (2, 2, 2)
    assert run.first_failure_at == utc_iso(T0 + 1)
    assert run.last_error == brief("second", T0 + 11, 2)
    assert run.last_finished_at == utc_iso(T0 + 11)
    assert record.first_failure_at == utc_iso(T0 + 1)


def test_a_success_clears_the_threads_failure_streak_and_keeps_its_totals() -> None:
    record = fail(start(None, "9000", 41, T0), "9000", 41, T0 + 1, "first")
    record = start(record, "9000", 42, T0 + 10).succeeded(
        now=T0 + 12, duration_s=2.0, worker_pid=43, worker_id="9000"
    )

    assert record.workers == (
        WorkerRun(
            id="9000",
            pid=43,
            phase=InitPhase.READY,
            attempts=2,
            first_started_at=utc_iso(T0),
            last_started_at=utc_iso(T0 + 10),
            last_error=brief("first", T0 + 1, 1),
            failures=1,
            consecutive_failures=0,
            first_failure_at=None,
            last_finished_at=utc_iso(T0 + 12),
        ),
    )
    assert (record.phase, record.attempts_to_ready, record.worker_pid) == (InitPhase.READY, 2, 43)


# -- only the named thread's run changes -----------------------------------------------------


def two_threads() -> InitRecord:
    """Thread 9000 (process 41) ready, then thread 9001 (process 51) initializing."""
    ready = start(None, "9000", 41, T0).succeeded(
        now=T0 + 1, duration_s=1.0, worker_pid=41, worker_id="9000"
    )
    return start(ready, "9001", 51, T0 + 2)


def test_a_record_finds_each_run_by_its_thread() -> None:
    record = two_threads()

    assert [r.id for r in record.workers] == ["9000", "9001"]
    assert run_of(record, "9001").pid == 51
    assert run_of(record, "9000").pid == 41
    assert record.run("9002") is None
    assert record.run(None) is None


@pytest.mark.parametrize("outcome", ["succeeded", "failed"])
def test_an_outcome_changes_only_its_own_threads_run(outcome: str) -> None:
    record = two_threads()
    if outcome == "succeeded":
        after = record.succeeded(now=T0 + 3, duration_s=1.0, worker_pid=51, worker_id="9001")
    else:
        after = fail(record, "9001", 51, T0 + 3, "x")

    assert after.workers[0] == record.workers[0]
    assert after.workers[1].phase is InitPhase(outcome.replace("succeeded", "ready"))
    assert after.workers[1].last_finished_at == utc_iso(T0 + 3)


@pytest.mark.parametrize("outcome", ["succeeded", "failed"])
def test_a_run_names_the_process_that_reported_its_outcome(outcome: str) -> None:
    record = start(None, "9000", 41, T0)
    if outcome == "succeeded":
        after = record.succeeded(now=T0 + 1, duration_s=1.0, worker_pid=42, worker_id="9000")
    else:
        after = fail(record, "9000", 42, T0 + 1, "x")

    assert (run_of(after, "9000").pid, after.worker_pid) == (42, 42)


@pytest.mark.parametrize("worker", [None, "9002"])
def test_an_outcome_of_a_thread_without_a_run_changes_no_run(worker: str | None) -> None:
    record = two_threads()

    failed = fail(record, worker, 51, T0 + 3, "x")
    succeeded = record.succeeded(now=T0 + 3, duration_s=1.0, worker_pid=51, worker_id=worker)

    assert failed.workers == record.workers
    assert succeeded.workers == record.workers
    assert (failed.failures, failed.phase) == (1, InitPhase.FAILED)


def test_a_new_thread_is_added_after_the_others() -> None:
    record = start(two_threads(), "9002", 61, T0 + 3)

    assert [(r.id, r.pid, r.attempts) for r in record.workers] == [
        ("9000", 41, 1),
        ("9001", 51, 1),
        ("9002", 61, 1),
    ]


def test_a_restarted_thread_moves_to_the_end_and_keeps_the_others() -> None:
    record = start(two_threads(), "9000", 42, T0 + 3, alive=(41, 51))

    assert [(r.id, r.pid, r.attempts) for r in record.workers] == [
        ("9001", 51, 1),
        ("9000", 42, 2),
    ]


# -- an attempt left unfinished by a process that is gone ------------------------------------


def unfinished_then_other_ready() -> InitRecord:
    """Thread 9000 (process 11) initializing since T0, then thread 9001 (process 12) ready: the
    record's own phase and process are 9001's."""
    unfinished = start(None, "9000", 11, T0)
    return start(unfinished, "9001", 12, T0 + 1, alive=(11,)).succeeded(
        now=T0 + 2, duration_s=1.0, worker_pid=12, worker_id="9001"
    )


def test_a_threads_own_unfinished_attempt_is_judged_by_its_run_not_the_record() -> None:
    record = start(unfinished_then_other_ready(), "9000", 13, T0 + 5, alive=(12,))

    died = "worker 11 ended during initialize() without a result"
    assert record.last_error is not None
    assert record.last_error.message.startswith(died)
    assert record.last_duration_s == 5.0  # since thread 9000 started, not 9001
    assert (record.failures, record.consecutive_failures, record.attempts) == (1, 1, 3)
    run = run_of(record, "9000")
    assert (run.pid, run.attempts, run.failures, run.consecutive_failures) == (13, 2, 1, 1)
    assert run.last_error is not None
    assert run.last_error.message.startswith(died)
    assert run.first_failure_at == run.last_finished_at == utc_iso(T0 + 5)
    assert run_of(record, "9001") == run_of(unfinished_then_other_ready(), "9001")


def test_an_interrupted_threads_error_names_its_own_process() -> None:
    record = unfinished_then_other_ready().interrupted(now=T0 + 4, worker_id="9000")

    assert record.last_error is not None
    assert record.last_error.message.startswith("worker 11 ended during initialize()")
    assert (record.worker_pid, record.last_duration_s) == (11, 4.0)
    assert run_of(record, "9000").phase is InitPhase.FAILED


def test_a_finished_threads_run_is_not_reinterpreted_by_the_records_phase() -> None:
    ready = start(None, "9000", 11, T0).succeeded(
        now=T0 + 1, duration_s=1.0, worker_pid=11, worker_id="9000"
    )
    other_unfinished = start(ready, "9001", 12, T0 + 2)

    record = start(other_unfinished, "9000", 13, T0 + 5)

    assert (record.failures, record.last_error) == (0, None)
    assert run_of(record, "9000").failures == 0


def test_a_new_thread_does_not_judge_another_threads_unfinished_attempt() -> None:
    record = start(start(None, "9000", 11, T0), "9001", 12, T0 + 5)

    assert (record.failures, record.last_error) == (0, None)
    assert run_of(record, "9000").phase is InitPhase.INITIALIZING


def test_a_start_without_a_liveness_check_takes_the_earlier_process_for_alive() -> None:
    earlier = start(None, None, 11, T0)

    record = InitRecord.started(
        earlier, model_name="m", model_version="1.0", now=T0 + 5, worker_pid=12, server=SERVER
    )

    assert (record.failures, record.last_error, record.attempts) == (0, None, 2)


# -- the runs kept ---------------------------------------------------------------------------


def with_runs(count: int) -> InitRecord:
    """A record with ``count`` runs, 9000 started last and each next id a second earlier."""
    runs = tuple(
        WorkerRun(str(9000 + i), 100 + i, InitPhase.READY, 1, utc_iso(T0 - i), utc_iso(T0 - i))
        for i in range(count)
    )
    return InitRecord("m", "1.0", InitPhase.READY, attempts=count, server=SERVER, workers=runs)


@pytest.mark.parametrize(
    ("others", "dropped"), [(MAX_RUNS - 1, 0), (MAX_RUNS, 1), (MAX_RUNS + 2, 3)]
)
def test_a_new_thread_drops_the_runs_started_longest_ago(others: int, dropped: int) -> None:
    record = start(with_runs(others), "9999", 7, T0 + 1)

    kept = [str(9000 + i) for i in range(others - dropped)]
    assert [r.id for r in record.workers] == [*kept, "9999"]
    assert MAX_RUNS == 32


def test_a_restarted_thread_among_the_most_runs_drops_none() -> None:
    record = start(with_runs(MAX_RUNS), "9031", 7, T0 + 1)

    assert len(record.workers) == MAX_RUNS
    assert record.workers[-1].id == "9031"
    assert record.workers[-1].attempts == 2


# -- a run's last activity -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("finished", "activity"),
    [
        (None, "2025-06-15T15:06:40.000Z"),
        ("2025-06-15T15:06:41.000Z", "2025-06-15T15:06:41.000Z"),
        ("2025-06-15T15:06:39.000Z", "2025-06-15T15:06:40.000Z"),
    ],
    ids=["not-finished", "finished-after-start", "restarted-after-finish"],
)
def test_a_runs_last_activity_is_its_latest_start_or_finish(
    finished: str | None, activity: str
) -> None:
    run = WorkerRun(
        "9000", 1, InitPhase.READY, 1, "x", "2025-06-15T15:06:40.000Z", last_finished_at=finished
    )

    assert run.last_activity == activity
