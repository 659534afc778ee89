"""The registration TorchServe serves now, out of a record that keeps every worker thread.

Standard library only, pure. A record (``_record``) keeps a run per TorchServe worker thread of
a model version on one server. Worker ids are ports from a counter that only grows on one
server (``WorkLoadManager`` in TorchServe 0.12), so a run never mixes registrations; but which
runs make up the registration is known only to TorchServe, whose describe lists its worker
threads. A worker cannot tell a new registration from a second worker or a scale-up by the
order in which workers start, so the record is narrowed where TorchServe's answer is at hand.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from .._lifecycle import InitPhase
from ._record import ErrorInfo, InitRecord, Previous, WorkerRun

__all__ = ["narrow"]


def narrow(record: InitRecord, worker_ids: Collection[str]) -> InitRecord:
    """``record`` narrowed to the worker threads ``worker_ids`` (one registration).

    TorchServe's describe names the worker threads of the registration it serves now; the
    counters, the phase and the last error are taken from their runs alone, and the other
    runs (earlier registrations, scaled-down threads) are summed up in ``previous``. A
    record that names no worker threads (written outside a TorchServe worker) is returned
    as it is.
    """
    if not record.workers:
        return record
    ids = set(worker_ids)
    runs = [r for r in record.workers if r.id in ids]
    others = [r for r in record.workers if r.id not in ids]
    previous = _summary(others) if others else record.previous
    if not runs:
        return _nothing_run_yet(record, previous)
    newest = max(runs, key=lambda r: r.last_activity)
    streaks = [r.first_failure_at for r in runs if r.consecutive_failures and r.first_failure_at]
    since = min(r.first_started_at for r in runs)
    finished = [r.last_finished_at for r in runs if r.last_finished_at]
    return record._replace(
        phase=newest.phase,
        attempts=sum(r.attempts for r in runs),
        failures=sum(r.failures for r in runs),
        consecutive_failures=sum(r.consecutive_failures for r in runs),
        first_failure_at=min(streaks, default=None),
        last_started_at=max(r.last_started_at for r in runs),
        last_finished_at=max(finished, default=None),
        last_error=_newest_error(record, runs),
        recent_errors=tuple(e for e in record.recent_errors if e.at >= since),
        worker_pid=newest.pid,
        workers=tuple(runs),
        deaths=tuple(d for d in record.deaths if d.worker in ids),
        previous=previous,
    )


def _nothing_run_yet(record: InitRecord, previous: Previous | None) -> InitRecord:
    """A registration none of whose worker threads has a run yet: it starts from nothing."""
    return record._replace(
        phase=InitPhase.INITIALIZING,
        attempts=0,
        failures=0,
        consecutive_failures=0,
        attempts_to_ready=None,
        first_failure_at=None,
        last_started_at=None,
        last_finished_at=None,
        last_duration_s=None,
        last_error=None,
        recent_errors=(),
        worker_pid=None,
        workers=(),
        deaths=(),
        previous=previous,
    )


def _newest_error(record: InitRecord, runs: Sequence[WorkerRun]) -> ErrorInfo | None:
    """The newest last error of ``runs``; the record's own copy when it is that one, for it
    keeps the traceback."""
    errors = [r.last_error for r in runs if r.last_error is not None]
    error = max(errors, key=lambda e: e.at, default=None)
    if error is not None and record.last_error is not None:
        full = record.last_error
        if (full.type, full.message, full.at) == (error.type, error.message, error.at):
            return full
    return error


def _summary(runs: Sequence[WorkerRun]) -> Previous:
    """What is left of worker threads that are not in the registration described now."""
    newest = max(runs, key=lambda r: r.last_activity)
    errors = [r.last_error for r in runs if r.last_error is not None]
    return Previous(
        attempts=sum(r.attempts for r in runs),
        failures=sum(r.failures for r in runs),
        phase=newest.phase,
        ended_at=newest.last_activity,
        last_error=max(errors, key=lambda e: e.at, default=None),
    )
