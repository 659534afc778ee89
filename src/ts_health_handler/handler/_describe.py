"""The status document returned by ``describe_handle()`` and the user check that feeds it.

Standard library only. The document's schema ships as ``schema/status.v1.json``, its type is
``_document.StatusDoc``, and every field is documented in ``docs/status.md``.
:func:`build_status` assembles the whole document from plain data (a :class:`WorkerSnapshot`,
a :class:`CheckResult`, the record as read); it touches no handler, no file and no clock.
"""

from __future__ import annotations

import json
import platform
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from functools import cache
from importlib import metadata
from typing import Any, Final

from .._document import (
    CheckDoc,
    ConditionDoc,
    ConditionStatus,
    ConditionType,
    ErrorDoc,
    GpuDoc,
    HeartbeatDoc,
    HistoryDoc,
    InitializationDoc,
    RequestsDoc,
    StateStoreDoc,
    StatusDoc,
    WorkerDoc,
)
from .._lifecycle import CheckStatus, HealthStatus, InitPhase, ServingMode
from .._text import clip
from .._version import __version__
from ..record import ErrorInfo, InitRecord, utc_iso
from ._config import Faults, HealthConfig

__all__ = [
    "CheckResult",
    "CheckRunner",
    "CheckStatus",
    "HealthStatus",
    "WorkerSnapshot",
    "build_status",
    "document_status",
    "library_versions",
]

STATUS_SCHEMA_VERSION: Final = 1
#: Longest JSON text of a user check result kept in the status.
RESULT_LIMIT: Final = 4000


@dataclass(frozen=True)
class CheckResult:
    """One run of ``health_check()``."""

    status: CheckStatus
    result: Any = None
    error: str | None = None
    duration_s: float | None = None

    @property
    def healthy(self) -> bool:
        return self.status in (CheckStatus.OK, CheckStatus.NOT_CONFIGURED)

    def to_json(self) -> CheckDoc:
        return {
            "status": self.status.value,
            "result": self.result,
            "error": self.error,
            "duration_s": self.duration_s,
        }


def _json_safe(value: Any) -> Any:
    """``value`` as plain JSON, or its bounded ``repr`` when it is not serialisable."""
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return _cut(repr(value))
    if len(text) > RESULT_LIMIT:
        return _cut(text)
    return value


def _cut(text: str) -> str:
    """At most :data:`RESULT_LIMIT` characters, head and tail (see :func:`~._text.clip`)."""
    return clip(text, RESULT_LIMIT)


def interpret(returned: Any, duration_s: float) -> CheckResult:
    """Turn what ``health_check()`` returned into a :class:`CheckResult`.

    ``True`` is ok and ``False`` failed; a dict is ok unless it holds ``"healthy": false``;
    anything else is an error, since a check that cannot say yes or no is not a pass.
    """
    if returned is True:
        return CheckResult(CheckStatus.OK, True, None, duration_s)
    if returned is False:
        return CheckResult(CheckStatus.FAILED, False, "health_check() returned False", duration_s)
    if isinstance(returned, dict):
        safe = _json_safe(returned)
        if returned.get("healthy", True) is False:
            return CheckResult(
                CheckStatus.FAILED, safe, "health_check() reported healthy: false", duration_s
            )
        return CheckResult(CheckStatus.OK, safe, None, duration_s)
    return CheckResult(
        CheckStatus.ERROR,
        _json_safe(returned),
        f"health_check() returned {type(returned).__name__}; expected True, False or a dict",
        duration_s,
    )


class CheckRunner:
    """Runs a check in a daemon thread and waits at most ``timeout_s`` for it.

    TorchServe gives describe no timeout and queues it on the worker, so a hanging user
    check must not hang describe. A check still running from an earlier call is not started
    again: the answer is a timeout naming how long it has run, so threads never pile up.
    """

    def __init__(self, check: Callable[[], Any], clock: Callable[[], float]) -> None:
        self._check: Final = check
        self._clock: Final = clock
        self._lock = threading.Lock()
        self._running: threading.Thread | None = None
        self._started = 0.0
        self._outcome: CheckResult | None = None

    def run(self, timeout_s: float) -> CheckResult:
        with self._lock:
            if self._running is not None and self._running.is_alive():
                waited = self._clock() - self._started
                return CheckResult(
                    CheckStatus.TIMEOUT,
                    None,
                    f"health_check() still running after {waited:.1f} s (limit {timeout_s:g} s)",
                    round(waited, 6),
                )
            self._outcome = None
            self._started = self._clock()
            thread = threading.Thread(target=self._call, name="ts-health-check", daemon=True)
            self._running = thread
            thread.start()
        thread.join(timeout_s)
        outcome = self._outcome
        if thread.is_alive() or outcome is None:
            return CheckResult(
                CheckStatus.TIMEOUT,
                None,
                f"health_check() did not answer within {timeout_s:g} s",
                round(timeout_s, 6),
            )
        return outcome

    def _call(self) -> None:
        started = self._clock()
        # The user's check may raise anything, SystemExit included (uncaught, it would end the
        # thread with no outcome, misreported as a timeout): report it, never crash.
        try:
            returned = self._check()
        except BaseException as exc:
            duration = round(self._clock() - started, 6)
            # check.error is documented as one line: join a multi-line message.
            error = _cut(" ".join(f"{type(exc).__name__}: {exc}".splitlines()))
            self._outcome = CheckResult(CheckStatus.ERROR, None, error, duration)
            return
        self._outcome = interpret(returned, round(self._clock() - started, 6))


@dataclass(frozen=True)
class WorkerSnapshot:
    """What one worker knows about itself at one moment: the tracker's part of the status."""

    model_name: str
    model_version: str
    started: float
    config: HealthConfig
    phase: InitPhase
    attempt: int | None
    init_started_at: float | None
    init_finished_at: float | None
    error: ErrorInfo | None
    requests_total: int
    requests_failed: int
    last_request_at: float | None
    #: The record file, ``None`` until the store exists (before ``initialize()``).
    store_path: str | None
    #: When the user check's outcome (healthy or not) last changed, ``None`` before its first run.
    check_changed_at: float | None = None
    #: After READY (``_serving``): failed requests in a row, the last failure, a fatal error.
    consecutive_failures: int = 0
    request_error: ErrorInfo | None = None
    fatal: ErrorInfo | None = None
    #: The heartbeat file and why the last write failed; ``None`` outside TorchServe.
    heartbeat_path: str | None = None
    heartbeat_error: str | None = None
    #: Requests in the calls running now; continuous batching's open requests.
    in_flight: int = 0
    open_requests: int | None = None
    mode: ServingMode = ServingMode.DEFAULT


def document_status(phase: InitPhase, check: CheckResult) -> HealthStatus:
    """The document's first field, ``status``: initialization outranks the user's check."""
    if phase is not InitPhase.READY:
        return HealthStatus.FAILED
    if not check.healthy:
        return HealthStatus.DEGRADED
    return HealthStatus.READY


def build_status(
    worker: WorkerSnapshot,
    check: CheckResult,
    record: InitRecord | None,
    store_error: str | None,
    *,
    now: float,
    pid: int,
    device: str | None,
    versions: Mapping[str, str | None],
    gpu: GpuDoc | None = None,
) -> StatusDoc:
    """The status document; ``docs/status.md`` describes every field.

    Args:
        worker: this worker's snapshot.
        check: this describe's run of ``health_check()``.
        record: the persisted record as read now (``None``: unreadable or absent).
        store_error: why the record could not be written or read, if it could not.
        now: epoch seconds, for the uptime.
        pid: the worker process.
        device: the handler's device (``None`` when unknown).
        versions: :func:`library_versions`.
        gpu: the CUDA device's memory (``_canary.device_info``); ``None`` on a CPU.
    """
    status = document_status(worker.phase, check)
    document: StatusDoc = {
        "status": status.value,
        "schema_version": STATUS_SCHEMA_VERSION,
        "ready": status is HealthStatus.READY,
        "conditions": conditions(worker, check),
        "model": {"name": worker.model_name, "version": worker.model_version},
        "worker": _worker_doc(worker, now=now, pid=pid, device=device, gpu=gpu),
        "initialization": _initialization_doc(worker, record),
        "requests": _requests_doc(worker),
        "check": check.to_json(),
        "state_store": _state_store_doc(worker, store_error),
        "faults": active_faults(worker.config.faults),
        "versions": dict(versions),
    }
    if worker.heartbeat_path is not None:
        document["heartbeat"] = _heartbeat_doc(worker)
    return document


def _worker_doc(
    worker: WorkerSnapshot, *, now: float, pid: int, device: str | None, gpu: GpuDoc | None
) -> WorkerDoc:
    """``worker``: the process, its uptime at ``now``, its device and serving mode."""
    doc: WorkerDoc = {
        "pid": pid,
        "started_at": utc_iso(worker.started),
        "uptime_s": round(max(0.0, now - worker.started), 3),
        "device": device,
        "mode": worker.mode.value,
    }
    if gpu is not None:
        doc["gpu"] = gpu
    return doc


def _initialization_doc(worker: WorkerSnapshot, record: InitRecord | None) -> InitializationDoc:
    """``initialization``: this worker's ``initialize()``, and the record's history."""
    return {
        "phase": worker.phase.value,
        "attempt": worker.attempt,
        "started_at": _iso_or_none(worker.init_started_at),
        "finished_at": _iso_or_none(worker.init_finished_at),
        "duration_s": _duration(worker.init_started_at, worker.init_finished_at),
        "policy": worker.config.on_init_failure.value,
        "error": None if worker.error is None else _error(worker.error),
        "history": None if record is None else _history(record),
    }


def _requests_doc(worker: WorkerSnapshot) -> RequestsDoc:
    """``requests``: the inference requests this worker has seen, and its last failures."""
    return {
        "total": worker.requests_total,
        "failed": worker.requests_failed,
        "in_flight": worker.in_flight,
        "open": worker.open_requests,
        "last_request_at": _iso_or_none(worker.last_request_at),
        "consecutive_failures": worker.consecutive_failures,
        "last_error": None if worker.request_error is None else _error(worker.request_error),
        "fatal": None if worker.fatal is None else _error(worker.fatal),
    }


def _state_store_doc(worker: WorkerSnapshot, store_error: str | None) -> StateStoreDoc:
    """``state_store``: the record file, and why it could not be written or read."""
    return {
        "path": worker.store_path,
        "ok": worker.store_path is not None and store_error is None,
        "error": store_error,
    }


def _heartbeat_doc(worker: WorkerSnapshot) -> HeartbeatDoc:
    """``heartbeat``: the watchdog's file, its interval and its last write's error."""
    return {
        "path": worker.heartbeat_path,
        "interval_s": worker.config.heartbeat_interval_s,
        "error": worker.heartbeat_error,
    }


#: A condition's status, reason and message.
_Condition = tuple[ConditionStatus, str, str]


def conditions(worker: WorkerSnapshot, check: CheckResult) -> list[ConditionDoc]:
    """Kubernetes-style conditions: ``Initialized``, ``HealthCheckPassed`` and ``Ready``.

    Each is ``{type, status: "True"|"False"|"Unknown", reason, message, lastTransitionTime}``.
    """
    initialized: _Condition
    if worker.phase is InitPhase.READY:
        initialized = ("True", "InitializeSucceeded", "initialize() returned")
    elif worker.phase is InitPhase.FAILED:
        error = worker.error
        message = "initialize() failed" if error is None else f"{error.type}: {error.message}"
        initialized = ("False", "InitializeFailed", message)
    else:
        initialized = ("Unknown", "Initializing", "initialize() is running")
    init_at = _iso_or_none(worker.init_finished_at or worker.init_started_at)
    check_reason = "".join(word.capitalize() for word in f"check_{check.status.value}".split("_"))
    passed: _Condition = ("True" if check.healthy else "False", check_reason, check.error or "")
    check_at = _iso_or_none(worker.check_changed_at)
    ready: _Condition
    if initialized[0] != "True":
        ready = initialized
        ready_at = init_at
    elif passed[0] != "True":
        ready = ("False", "HealthCheckFailed", passed[2])
        ready_at = check_at
    else:
        ready = ("True", "Ready", "initialized, and the health check passes")
        ready_at = max((t for t in (init_at, check_at) if t), default=None)
    return [
        _condition("Initialized", initialized, init_at),
        _condition("HealthCheckPassed", passed, check_at),
        _condition("Ready", ready, ready_at),
    ]


def _condition(kind: ConditionType, value: _Condition, at: str | None) -> ConditionDoc:
    status, reason, message = value
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": at,
    }


def active_faults(faults: Faults) -> dict[str, Any]:
    """The fault knobs that differ from their defaults (``{}`` when none is on)."""
    default = Faults()
    return {
        field.name: getattr(faults, field.name)
        for field in fields(faults)
        if getattr(faults, field.name) != getattr(default, field.name)
    }


def _error(error: ErrorInfo) -> ErrorDoc:
    return {
        "type": error.type,
        "message": error.message,
        "at": error.at,
        "attempt": error.attempt,
        "traceback": error.traceback,
    }


def _history(record: InitRecord) -> HistoryDoc:
    return {
        "attempts": record.attempts,
        "failures": record.failures,
        "consecutive_failures": record.consecutive_failures,
        "attempts_to_ready": record.attempts_to_ready,
        "first_failure_at": record.first_failure_at,
        "recent_errors": [_error(e) for e in record.recent_errors],
    }


def _iso_or_none(timestamp: float | None) -> str | None:
    return None if timestamp is None else utc_iso(timestamp)


def _duration(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return round(end - start, 6)


@cache
def library_versions() -> dict[str, str | None]:
    """Versions worth knowing when reading a status; looked up once per process."""

    def installed(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {
        "ts_health_handler": __version__,
        "torchserve": installed("torchserve"),
        "torch": installed("torch"),
        "python": platform.python_version(),
    }
