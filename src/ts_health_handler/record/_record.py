"""The initialization record of one registration of a model version on one server.

TorchServe starts a fresh worker process for every retry of a failing ``initialize()``, so
anything kept in memory dies with the worker. The record survives it: workers update it
(``_store.StateStore``) and the probe reads it even while no worker is alive. It is frozen;
its transitions (:meth:`InitRecord.started`, :meth:`~InitRecord.succeeded`,
:meth:`~InitRecord.failed`, :meth:`~InitRecord.interrupted`) are the only places it changes.

Identity (``_identity``): a record belongs to one server (``server``) and keeps a run per
TorchServe worker thread (``workers``, by worker id). Worker ids are ports from a counter that
only grows on one server, so a run never mixes two registrations. Which runs make up the
registration served now is not known inside a worker, and it is not guessed from the order in
which workers start: the reader asks TorchServe (``GET /models/{name}`` lists the worker threads
of the registration) and narrows the record with ``_registration.narrow``. The
record-level counters are of every registration of the version on this server. Standard
library only.

The types are named tuples (``typing.NamedTuple``), frozen as a frozen dataclass would be:
``ts-health`` reads records in a process started every few seconds, and a named tuple is
defined about ten times faster than a dataclass, without importing ``dataclasses`` (and with
it ``inspect``). The other types on the probe's path are named tuples for the same reason.
"""

# No `from __future__ import annotations`: typing would compile each named-tuple field's
# annotation when ts-health starts (docs/architecture.md, "Start-up").
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, Final, NamedTuple, Optional, Union

from .._lifecycle import InitPhase
from ._deaths import KEEP_DEATHS, Death
from ._fields import RecordError, duration_s, field, mapping
from ._fields import phase as read_phase

__all__ = [
    "ErrorInfo",
    "InitRecord",
    "Previous",
    "RecordError",
    "WorkerRun",
    "parse_iso",
    "utc_iso",
]

RECORD_SCHEMA_VERSION: Final = 3
#: Record versions still read (version 1 had ``server_pid`` and no ``workers``; version 2
#: started over inside the worker and had no per-thread counters nor ``deaths``).
READABLE_VERSIONS: Final = (1, 2, 3)
#: How many earlier failure reasons a record keeps.
RECENT_ERRORS: Final = 5
#: Longest message kept in a record, in characters.
MESSAGE_LIMIT: Final = 2000
#: Worker threads a record keeps (the most recently started); older ones are history.
MAX_RUNS: Final = 32


def utc_iso(timestamp: float) -> str:
    """Render epoch seconds as ISO 8601 UTC with millisecond precision."""
    return (
        datetime.fromtimestamp(timestamp, tz=timezone.utc)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def parse_iso(text: str) -> float:
    """Inverse of :func:`utc_iso` (epoch seconds)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class ErrorInfo(NamedTuple):
    """One failed ``initialize()``: what was raised, when, on which attempt."""

    type: str
    message: str
    at: str
    attempt: int
    traceback: Optional[str] = None

    def to_json(self) -> dict[str, Any]:
        return self._asdict()

    @classmethod
    def from_json(cls, raw: Any, where: str, name: str = "error") -> "ErrorInfo":
        """Parse one error; ``name`` (e.g. ``recent_errors[2]``) is named in any complaint."""
        data = mapping(raw, where, name)
        prefix = f"{name}."
        return cls(
            type=field(data, "type", str, where, prefix=prefix),
            message=field(data, "message", str, where, prefix=prefix),
            at=field(data, "at", str, where, prefix=prefix),
            attempt=field(data, "attempt", int, where, prefix=prefix),
            traceback=field(
                data, "traceback", (str, type(None)), where, default=None, prefix=prefix
            ),
        )


class WorkerRun(NamedTuple):
    """One TorchServe worker thread of the registration (the same id through its retries)."""

    id: str
    pid: Optional[int]
    phase: InitPhase
    attempts: int
    first_started_at: str
    last_started_at: str
    last_error: Optional[ErrorInfo] = None
    failures: int = 0
    consecutive_failures: int = 0
    first_failure_at: Optional[str] = None
    last_finished_at: Optional[str] = None

    @property
    def last_activity(self) -> str:
        """When this thread last started or finished an attempt (ISO 8601, sortable)."""
        return max(self.last_started_at, self.last_finished_at or "")

    def to_json(self) -> dict[str, Any]:
        return _with_phase(self)

    @classmethod
    def from_json(cls, raw: Any, where: str, name: str) -> "WorkerRun":
        data = mapping(raw, where, name)
        prefix = f"{name}."
        error = data.get("last_error")
        optional_str = (str, type(None))
        return cls(
            id=field(data, "id", str, where, prefix=prefix),
            pid=field(data, "pid", (int, type(None)), where, prefix=prefix),
            phase=read_phase(field(data, "phase", str, where, prefix=prefix), where),
            attempts=field(data, "attempts", int, where, prefix=prefix),
            first_started_at=field(data, "first_started_at", str, where, prefix=prefix),
            last_started_at=field(data, "last_started_at", str, where, prefix=prefix),
            last_error=None
            if error is None
            else ErrorInfo.from_json(error, where, f"{prefix}last_error"),
            failures=field(data, "failures", int, where, default=0, prefix=prefix),
            consecutive_failures=field(
                data, "consecutive_failures", int, where, default=0, prefix=prefix
            ),
            first_failure_at=field(
                data, "first_failure_at", optional_str, where, default=None, prefix=prefix
            ),
            last_finished_at=field(
                data, "last_finished_at", optional_str, where, default=None, prefix=prefix
            ),
        )


class Previous(NamedTuple):
    """What is left of the registration a record started over from."""

    attempts: int
    failures: int
    phase: InitPhase
    ended_at: Optional[str]
    last_error: Optional[ErrorInfo] = None

    def to_json(self) -> dict[str, Any]:
        return _with_phase(self)

    @classmethod
    def from_json(cls, raw: Any, where: str) -> "Previous":
        data = mapping(raw, where, "previous")
        error = data.get("last_error")
        return cls(
            attempts=field(data, "attempts", int, where, prefix="previous."),
            failures=field(data, "failures", int, where, prefix="previous."),
            phase=read_phase(field(data, "phase", str, where, prefix="previous."), where),
            ended_at=field(data, "ended_at", (str, type(None)), where, prefix="previous."),
            last_error=None
            if error is None
            else ErrorInfo.from_json(error, where, "previous.last_error"),
        )


class InitRecord(NamedTuple):
    """Initialization history of a model version on one server, a run per worker thread.

    Narrowed to the registration TorchServe describes by ``_registration.narrow``.
    """

    model_name: str
    model_version: str
    phase: InitPhase
    attempts: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    attempts_to_ready: Optional[int] = None
    first_failure_at: Optional[str] = None
    last_started_at: Optional[str] = None
    last_finished_at: Optional[str] = None
    last_duration_s: Optional[float] = None
    last_error: Optional[ErrorInfo] = None
    recent_errors: tuple[ErrorInfo, ...] = ()
    #: The server (``_identity``: the TorchServe frontend's pid and start time).
    server: Optional[str] = None
    worker_pid: Optional[int] = None
    updated_at: Optional[str] = None
    #: The worker threads, by TorchServe's worker id (at most :data:`MAX_RUNS`).
    workers: tuple[WorkerRun, ...] = ()
    #: Worker processes that ended while serving (the newest :data:`KEEP_DEATHS`).
    deaths: tuple[Death, ...] = ()
    #: Every death this record has seen (``deaths`` keeps the newest only).
    deaths_total: int = 0
    #: The earlier registrations: set on a record narrowed by ``_registration.narrow`` (and
    #: read from records of schema 2, which started over on the worker side).
    previous: Optional[Previous] = None
    schema_version: int = RECORD_SCHEMA_VERSION

    def run(self, worker_id: Optional[str]) -> Optional[WorkerRun]:
        """The worker thread ``worker_id`` of this registration, if it has one."""
        return next((r for r in self.workers if r.id == worker_id), None)

    # -- transitions: the only places a record changes ---------------------------------

    @classmethod
    def started(
        cls,
        previous: "Optional[InitRecord]",
        *,
        model_name: str,
        model_version: str,
        now: float,
        worker_pid: int,
        server: Optional[str] = None,
        worker_id: Optional[str] = None,
        worker_alive: Callable[[int], bool] = lambda pid: True,
    ) -> "InitRecord":
        """A worker entered ``initialize()``.

        Another server's record starts a new record. An earlier attempt of the same worker
        still marked ``initializing`` whose process is gone (``worker_alive`` says so) never
        reached a result: TorchServe's ``startupTimeout``, the OOM killer or a signal ended
        it. It is counted as a failure first, so it is not lost.
        """
        if previous is None or previous.server != server:
            previous = cls(model_name, model_version, InitPhase.INITIALIZING, server=server)
        previous = previous._unless_interrupted(worker_pid, worker_id, now, worker_alive)
        stamp = utc_iso(now)
        workers = previous.workers
        if worker_id is not None:
            workers = _with_run_started(workers, worker_id, worker_pid, stamp)
        return previous._replace(
            phase=InitPhase.INITIALIZING,
            attempts=previous.attempts + 1,
            last_started_at=stamp,
            worker_pid=worker_pid,
            updated_at=stamp,
            workers=workers,
        )

    def _unless_interrupted(
        self,
        worker_pid: int,
        worker_id: Optional[str],
        now: float,
        worker_alive: Callable[[int], bool],
    ) -> "InitRecord":
        """This record, with the earlier attempt of ``worker_id`` (or of the record, without
        worker ids) counted as :meth:`interrupted` when it is still ``initializing`` and its
        process, not ``worker_pid``, is gone."""
        run = self.run(worker_id)
        last_pid = self.worker_pid if run is None else run.pid
        last_phase = self.phase if run is None else run.phase
        if (
            last_phase is InitPhase.INITIALIZING
            and last_pid is not None
            and last_pid != worker_pid
            and (run is not None or worker_id is None)
            and not worker_alive(last_pid)
        ):
            return self.interrupted(now=now, worker_id=worker_id)
        return self

    def interrupted(self, *, now: float, worker_id: Optional[str] = None) -> "InitRecord":
        """The worker of the unfinished attempt died before ``initialize()`` returned."""
        run = self.run(worker_id)
        pid = self.worker_pid if run is None else run.pid
        since = self.last_started_at if run is None else run.last_started_at
        started = parse_iso(since) if since else now
        error = ErrorInfo(
            type="WorkerDied",
            message=(
                f"worker {pid} ended during initialize() without a result (killed by "
                "TorchServe's startupTimeout, the OOM killer or a signal)"
            ),
            at=utc_iso(now),
            attempt=self.attempts,
        )
        return self.failed(
            error,
            now=now,
            duration_s=max(0.0, now - started),
            worker_pid=pid or 0,
            worker_id=worker_id,
        )

    def died(self, death: Death) -> "InitRecord":
        """A worker process that served was found gone by its successor."""
        return self._replace(
            deaths=(*self.deaths, death)[-KEEP_DEATHS:], deaths_total=self.deaths_total + 1
        )

    def _with_run(self, worker_id: Optional[str], **changes: Any) -> tuple[WorkerRun, ...]:
        run = self.run(worker_id)
        if run is None:
            return self.workers
        changed = run._replace(**changes)
        return tuple(changed if r.id == worker_id else r for r in self.workers)

    def succeeded(
        self, *, now: float, duration_s: float, worker_pid: int, worker_id: Optional[str] = None
    ) -> "InitRecord":
        """A worker's ``initialize()`` returned."""
        return self._replace(
            workers=self._with_run(
                worker_id,
                phase=InitPhase.READY,
                pid=worker_pid,
                consecutive_failures=0,
                first_failure_at=None,
                last_finished_at=utc_iso(now),
            ),
            phase=InitPhase.READY,
            consecutive_failures=0,
            attempts_to_ready=self.consecutive_failures + 1,
            first_failure_at=None,
            last_finished_at=utc_iso(now),
            last_duration_s=round(duration_s, 6),
            worker_pid=worker_pid,
            updated_at=utc_iso(now),
        )

    def failed(
        self,
        error: ErrorInfo,
        *,
        now: float,
        duration_s: float,
        worker_pid: int,
        worker_id: Optional[str] = None,
    ) -> "InitRecord":
        """A worker's ``initialize()`` raised ``error``."""
        brief = error._replace(traceback=None)
        run = self.run(worker_id)
        return self._replace(
            workers=self._with_run(
                worker_id,
                phase=InitPhase.FAILED,
                pid=worker_pid,
                last_error=brief,
                failures=0 if run is None else run.failures + 1,
                consecutive_failures=0 if run is None else run.consecutive_failures + 1,
                first_failure_at=error.at if run is None else run.first_failure_at or error.at,
                last_finished_at=utc_iso(now),
            ),
            phase=InitPhase.FAILED,
            failures=self.failures + 1,
            consecutive_failures=self.consecutive_failures + 1,
            first_failure_at=self.first_failure_at or error.at,
            last_finished_at=utc_iso(now),
            last_duration_s=round(duration_s, 6),
            last_error=error,
            recent_errors=(*self.recent_errors, brief)[-RECENT_ERRORS:],
            worker_pid=worker_pid,
            updated_at=utc_iso(now),
        )

    # -- JSON ----------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        data = self._asdict()
        data["phase"] = self.phase.value
        data["last_error"] = self.last_error.to_json() if self.last_error else None
        data["recent_errors"] = [e.to_json() for e in self.recent_errors]
        data["workers"] = [r.to_json() for r in self.workers]
        data["previous"] = None if self.previous is None else self.previous.to_json()
        data["deaths"] = [d.to_json() for d in self.deaths]
        return data

    @classmethod
    def from_json(cls, raw: Any, where: str = "record") -> "InitRecord":
        """Parse a record; raise :class:`RecordError` naming the first bad field."""
        data = mapping(raw, where)
        version = field(data, "schema_version", int, where)
        if version not in READABLE_VERSIONS:
            raise RecordError(
                where, f"schema_version {version!r}, expected {RECORD_SCHEMA_VERSION}"
            )
        parsed_phase = read_phase(field(data, "phase", str, where), where)
        workers = field(data, "workers", list, where, default=[])
        previous = data.get("previous")
        optional_int = (int, type(None))
        optional_str = (str, type(None))
        last_error = data.get("last_error")
        recent = field(data, "recent_errors", list, where, default=[])
        duration = field(data, "last_duration_s", (int, float, type(None)), where, default=None)
        return cls(
            model_name=field(data, "model_name", str, where),
            model_version=field(data, "model_version", str, where),
            phase=parsed_phase,
            attempts=field(data, "attempts", int, where),
            failures=field(data, "failures", int, where),
            consecutive_failures=field(data, "consecutive_failures", int, where),
            attempts_to_ready=field(data, "attempts_to_ready", optional_int, where, default=None),
            first_failure_at=field(data, "first_failure_at", optional_str, where, default=None),
            last_started_at=field(data, "last_started_at", optional_str, where, default=None),
            last_finished_at=field(data, "last_finished_at", optional_str, where, default=None),
            last_duration_s=duration_s(duration, where),
            last_error=None
            if last_error is None
            else ErrorInfo.from_json(last_error, where, "last_error"),
            recent_errors=tuple(
                ErrorInfo.from_json(e, where, f"recent_errors[{i}]") for i, e in enumerate(recent)
            ),
            server=field(data, "server", optional_str, where, default=None),
            worker_pid=field(data, "worker_pid", optional_int, where, default=None),
            updated_at=field(data, "updated_at", optional_str, where, default=None),
            workers=tuple(
                WorkerRun.from_json(w, where, f"workers[{i}]") for i, w in enumerate(workers)
            ),
            previous=None if previous is None else Previous.from_json(previous, where),
            deaths_total=field(data, "deaths_total", int, where, default=0),
            deaths=tuple(
                Death.from_json(d, where, f"deaths[{i}]")
                for i, d in enumerate(field(data, "deaths", list, where, default=[]))
            ),
        )


def _with_phase(value: Union[WorkerRun, Previous]) -> dict[str, Any]:
    """A run or a summary as JSON: its fields, the phase as its word, the error as JSON."""
    data = value._asdict()
    data["phase"] = value.phase.value
    data["last_error"] = None if value.last_error is None else value.last_error.to_json()
    return data


def _with_run_started(
    workers: tuple[WorkerRun, ...], worker_id: str, worker_pid: int, stamp: str
) -> tuple[WorkerRun, ...]:
    """``workers`` with ``worker_id``'s run started again at ``stamp`` (its history kept),
    last; the runs started longest ago dropped beyond :data:`MAX_RUNS`."""
    run = next((r for r in workers if r.id == worker_id), None)
    started = WorkerRun(
        id=worker_id,
        pid=worker_pid,
        phase=InitPhase.INITIALIZING,
        attempts=1 if run is None else run.attempts + 1,
        first_started_at=stamp if run is None else run.first_started_at,
        last_started_at=stamp,
        last_error=None if run is None else run.last_error,
        failures=0 if run is None else run.failures,
        consecutive_failures=0 if run is None else run.consecutive_failures,
        first_failure_at=None if run is None else run.first_failure_at,
        last_finished_at=None if run is None else run.last_finished_at,
    )
    others = [r for r in workers if r.id != worker_id]
    if len(others) >= MAX_RUNS:
        dropped = sorted(others, key=lambda r: r.last_started_at)[: len(others) - MAX_RUNS + 1]
        others = [r for r in others if r not in dropped]
    return (*others, started)
