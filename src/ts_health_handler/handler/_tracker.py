"""``Tracker``: the bookkeeping of one worker, kept apart from the handler it serves.

It owns this worker's initialization attempts (persisted through ``StateStore.update`` with
the frozen ``InitRecord`` transitions), its request counters, the slow path of ``handle()``
(a heartbeat due, a held failure, inference faults), the termination log and the metrics. The
clock and sleep are injected, so that its unit tests never wait.

One describe request, each step once::

    HealthMixin handle() wrapper (a describe header) -> describe_handle() -> health_status()
      -> Tracker.status()
           -> CheckRunner.run()   the user's health_check(), bounded
           -> StateStore.read()   the record as other workers left it
           -> build_status()      pure: snapshot + check + record -> the document
      <- the document (and HealthState, when the status changed)
"""

from __future__ import annotations

import contextlib
import os
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from .._document import StatusDoc
from .._errors import ConfigError, InferenceError, InitializationError
from .._lifecycle import CheckStatus, HealthStatus, InitPhase, ServingMode
from .._text import clip, valid_utf8
from ..record import (
    MESSAGE_LIMIT,
    Death,
    ErrorInfo,
    InitRecord,
    StateStore,
    beat_path,
    death_from_beat,
    pid_alive,
    read_beat,
    resolve_state_dir,
    utc_iso,
)
from ._canary import gpu_memory
from ._config import HealthConfig, InitFailurePolicy
from ._context import UNKNOWN, model_identity, serving_mode
from ._describe import CheckResult, CheckRunner, WorkerSnapshot, build_status, library_versions
from ._identity import Identity, current_identity
from ._metrics import METRIC_INIT_DURATION, METRIC_INIT_FAILURES, METRIC_STATE, STATE_GAUGE, emit
from ._requests import Requests, Spans
from ._serving import Serving, qualified_name
from ._termination import write_termination_log

__all__ = ["Tracker"]


class Tracker:
    """What one worker knows about itself, and the only code that changes it.

    ``HealthMixin``'s ``handle()`` wrapper writes :attr:`requests` (``_requests.Requests``)
    directly, and calls :meth:`gate` only when that says so.

    Args:
        clock: wall clock in epoch seconds (``time.time``).
        sleep: used by the delay faults (``time.sleep``).
    """

    __slots__ = (
        "_attempt",
        "_check_changed_at",
        "_check_healthy",
        "_checker",
        "_clock",
        "_config",
        "_error",
        "_finished_at",
        "_identity",
        "_metrics",
        "_model_name",
        "_model_version",
        "_phase",
        "_record",
        "_reported",
        "_serving",
        "_sleep",
        "_started",
        "_started_at",
        "_store",
        "_store_error",
        "in_initialize",
        "mode",
        "requests",
    )

    def __init__(self, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self._clock: Final = clock
        self._sleep: Final = sleep
        self._started: Final = clock()
        self._config = HealthConfig()
        self._model_name = UNKNOWN
        self._model_version = UNKNOWN
        self._metrics: Any = None
        self._store: StateStore | None = None
        self._store_error: str | None = None
        self._identity = Identity(UNKNOWN, None, os.getpid())
        self._record: InitRecord | None = None
        self._phase = InitPhase.INITIALIZING
        self._attempt: int | None = None
        self._started_at: float | None = None
        self._finished_at: float | None = None
        self._error: ErrorInfo | None = None
        self._checker: CheckRunner | None = None
        self._check_healthy: bool | None = None
        self._check_changed_at: float | None = None
        self._reported: HealthStatus | None = None
        #: After a successful ``initialize()`` inside TorchServe: requests and the heartbeat.
        self._serving: Serving | None = None
        #: The requests served: counters and the calls in flight.
        self.requests: Final = Requests()
        #: How TorchServe hands this worker its requests (``model-config.yml``).
        self.mode = ServingMode.DEFAULT
        #: Set while the outermost ``initialize()`` runs: an inner ``super()`` call passes
        #: straight through.
        self.in_initialize = False

    def __repr__(self) -> str:
        return (
            f"<Tracker {self._model_name} {self._model_version} {self._phase.value} "
            f"attempt={self._attempt} requests={self.requests.total}/{self.requests.failed}>"
        )

    # -- initialization ------------------------------------------------------------------

    def initialize(self, context: Any, call: Callable[[], Any]) -> Any:
        """One attempt: ``call`` is the user's ``initialize()``; record it, apply the policy.

        Raises:
            InitializationError: ``call`` (or the configuration) failed under ``raise``, or
                the ``health`` section is invalid (whatever the policy).
        """
        self.in_initialize = True
        try:
            return self._attempt_once(context, call)
        finally:
            self.in_initialize = False

    def _attempt_once(self, context: Any, call: Callable[[], Any]) -> Any:
        started, config_error = self._begin(context)
        faults = self._config.faults
        try:
            if config_error is not None:
                raise config_error
            if faults.initialize_delay_s:
                self._sleep(faults.initialize_delay_s)
            if faults.fail_initialize is not None:
                raise InitializationError(
                    f"injected by health.faults.fail_initialize: {faults.fail_initialize}"
                )
            result = call()
        except Exception as exc:
            self._failed(exc, started)
            if config_error is None and self._config.on_init_failure is InitFailurePolicy.HOLD:
                return None
            if isinstance(exc, InitializationError):
                raise
            raise InitializationError(f"{type(exc).__name__}: {exc}") from exc
        except BaseException as exc:
            # SystemExit, KeyboardInterrupt, GeneratorExit: the worker is ending. Record why
            # (the next attempt would only know that the process died) and let it end.
            self._failed(exc, started)
            raise
        self._succeeded(started)
        return result

    def _begin(self, context: Any) -> tuple[float, ConfigError | None]:
        name, version = self._model_name, self._model_version = model_identity(context)
        self._metrics = getattr(context, "metrics", None)
        started = self._clock()
        self._started_at, self._finished_at = started, None
        self._phase, self._error = InitPhase.INITIALIZING, None
        raw = getattr(context, "model_yaml_config", None)
        config_error: ConfigError | None = None
        try:
            self._config = HealthConfig.from_model_yaml(raw)
        except ConfigError as exc:
            config_error = exc
            self._config = HealthConfig.salvage(raw)
        self.mode = serving_mode(raw)
        self.requests.spans = Spans() if self.mode.spans_calls else None
        self._store = None  # the state dir may differ from an earlier initialize()
        identity = self._identity = current_identity()
        death = self._predecessor_death(started)

        def start(previous: InitRecord | None) -> InitRecord:
            record = InitRecord.started(
                previous,
                model_name=name,
                model_version=version,
                now=started,
                worker_pid=identity.pid,
                server=identity.server,
                worker_id=identity.worker,
                worker_alive=pid_alive,
            )
            return record if death is None else record.died(death)

        self._persist(start)
        if self._record is not None:
            run = self._record.run(identity.worker)
            self._attempt = self._record.attempts if run is None else run.attempts
        return started, config_error

    def _beat_path(self) -> Path | None:
        """This worker thread's heartbeat file (``None`` outside TorchServe: no worker id)."""
        worker = self._identity.worker
        if worker is None or os.environ.get("LOCAL_RANK", "0") != "0":
            return None  # outside TorchServe; or a torchrun rank but the first, which beats
        directory = StateStore(
            resolve_state_dir(self._config.state_dir), self._model_name, self._model_version
        ).directory
        return beat_path(directory, self._identity.server, worker)

    def _predecessor_death(self, now: float) -> Death | None:
        """The process this worker thread ran before, if it was serving and is gone.

        Its last heartbeat tells what it was doing; the file is removed once read, so that
        the death is recorded once (this process writes its own beats when it is READY).
        """
        try:
            path = self._beat_path()
            beat = None if path is None else read_beat(path)
        except Exception:  # an unreadable beat must not fail initialize(): nothing to tell
            return None
        if path is None or beat is None or beat.pid == os.getpid() or pid_alive(beat.pid):
            return None
        with contextlib.suppress(OSError):
            path.unlink()
        return death_from_beat(beat, found=now)

    def _succeeded(self, started: float) -> None:
        finished = self._clock()
        self._phase, self._finished_at = InitPhase.READY, finished
        self.requests.gated = self.always_gated
        self._persist(
            lambda previous: self._current(previous).succeeded(
                now=finished,
                duration_s=finished - started,
                worker_pid=os.getpid(),
                worker_id=self._identity.worker,
            )
        )
        self._metric(METRIC_INIT_DURATION, finished - started, "Seconds")
        self._report(HealthStatus.READY)
        self._start_serving()

    def _start_serving(self) -> None:
        """Watch the requests; inside TorchServe also beat (a worker initializes once)."""
        if self._serving is not None:
            return
        path = self._beat_path()
        self._serving = Serving(
            self.requests,
            self.mode,
            self._config,
            self._identity.worker,
            path,
            self._clock,
            always_gated=self.always_gated,
        )
        if self._serving.watchdog is not None:
            self._serving.watchdog.start()

    def _failed(self, exc: BaseException, started: float) -> None:
        finished = self._clock()
        limit = self._config.traceback_limit
        self._phase, self._finished_at = InitPhase.FAILED, finished
        error = self._error = ErrorInfo(
            type=qualified_name(type(exc)),
            message=clip(valid_utf8(str(exc)), MESSAGE_LIMIT),
            at=utc_iso(finished),
            attempt=self._attempt or 0,
            traceback=clip(
                valid_utf8("".join(traceback.format_exception(type(exc), exc, exc.__traceback__))),
                limit,
            )
            if limit
            else None,
        )
        self._persist(
            lambda previous: self._current(previous).failed(
                error,
                now=finished,
                duration_s=finished - started,
                worker_pid=os.getpid(),
                worker_id=self._identity.worker,
            )
        )
        self._write_termination_log(error)
        self._metric(METRIC_INIT_FAILURES, 1, "Count", counter=True)
        self._report(HealthStatus.FAILED)
        self.requests.gated = True

    def _current(self, previous: InitRecord | None) -> InitRecord:
        """The record to move on from: the stored one, else this worker's own copy."""
        if previous is not None:
            return previous
        if self._record is not None:
            return self._record
        return InitRecord(self._model_name, self._model_version, InitPhase.INITIALIZING)

    def _persist(self, change: Callable[[InitRecord | None], InitRecord]) -> None:
        """Update the record; a broken state dir is reported in the status, never raised."""
        try:
            if self._store is None:
                self._store = StateStore(
                    resolve_state_dir(self._config.state_dir),
                    self._model_name,
                    self._model_version,
                    self._identity.server,
                )
            self._record = self._store.update(change)
            self._store_error = None
        except Exception as exc:  # our bookkeeping must never fail the handler
            self._store_error = f"{type(exc).__name__}: {exc}"
            try:
                self._record = change(self._record)
            except Exception:  # pragma: no cover - transitions are pure; defensive only
                self._record = None

    def _write_termination_log(self, error: ErrorInfo) -> None:
        path = self._config.termination_log
        if not path:
            return
        problem = write_termination_log(path, self._model_name, self._model_version, error)
        if problem is not None:
            self._store_error = self._store_error or problem

    # -- requests --------------------------------------------------------------------------

    @property
    def always_gated(self) -> bool:
        """Every call goes through :meth:`gate`: inference faults, or requests that span
        calls (each call's ids are looked up)."""
        return self._config.faults.in_inference or self.requests.spans is not None

    def request_failed(self, exc: BaseException, count: int, context: Any = None) -> None:
        """The failure path of ``handle()``: count it, and tell the serving watch."""
        requests = self.requests
        spans = requests.spans
        if spans is not None:  # the failed call's requests end with it
            spans.end_call(context)
        requests.failed += count
        if self._serving is not None:
            try:
                self._serving.failed(exc, count)
            except Exception:  # e.g. an exception whose str() raises: the handler's wins
                return

    def described(self) -> None:
        """A describe request reached this worker (the heartbeat shows when)."""
        if self._serving is not None:
            self._serving.describe_at = self._clock()

    def gate(self, context: Any = None, count: int = 1, started: float = 0.0) -> float:
        """The slow path of ``handle()``: the heartbeat when due, a held failure, faults,
        requests that span calls (counted once). Returns the injected delay to wait now
        (``handle()`` waits in the way its mode allows: an async one must not block).

        Raises:
            InferenceError: 503 while a failed initialization is held.
        """
        if self._phase is InitPhase.FAILED and self._error is not None:
            raise InferenceError(
                f"model {self._model_name} is not initialized "
                f"({self._error.type}: {self._error.message})",
                503,
            )
        spans = self.requests.spans
        if spans is not None:
            self.requests.total -= spans.begin(context, started)
        if self._serving is not None:
            self._serving.request_started()
        return self._config.faults.inference_delay_s

    def inject(self) -> None:
        """After :meth:`gate`'s delay: the injected inference failure, if one is set.

        Raises:
            InferenceError: ``health.faults.fail_inference`` with its status.
        """
        faults = self._config.faults
        if faults.fail_inference is not None:
            raise InferenceError(
                f"injected by health.faults.fail_inference: {faults.fail_inference}",
                faults.fail_inference_status,
            )

    # -- describe --------------------------------------------------------------------------

    def status(self, check: Callable[[], Any] | None, device: str | None) -> StatusDoc:
        """The status document (see the module docstring for the path it takes).

        Args:
            check: the user's ``health_check()``, ``None`` when the handler has none.
            device: the handler's device, as the document shows it.
        """
        now = self._clock()
        result = self._run_check(check)
        if result.healthy is not self._check_healthy:
            self._check_healthy, self._check_changed_at = result.healthy, now
        record, store_error = self._read_record()
        document = build_status(
            self.snapshot(),
            result,
            record,
            store_error,
            now=now,
            pid=os.getpid(),
            device=device,
            versions=library_versions(),
            gpu=gpu_memory(device),
        )
        self._report(HealthStatus(document["status"]))
        return document

    def snapshot(self) -> WorkerSnapshot:
        """This worker's state now, as plain frozen data."""
        return WorkerSnapshot(
            model_name=self._model_name,
            model_version=self._model_version,
            started=self._started,
            config=self._config,
            phase=self._phase,
            attempt=self._attempt,
            init_started_at=self._started_at,
            init_finished_at=self._finished_at,
            error=self._error,
            requests_total=self.requests.total,
            requests_failed=self.requests.failed,
            last_request_at=self.requests.last_started,
            in_flight=self.requests.in_flight().requests,
            open_requests=None if self.requests.spans is None else len(self.requests.spans.open),
            mode=self.mode,
            store_path=None if self._store is None else str(self._store.path),
            check_changed_at=self._check_changed_at,
            **self._serving_fields(),
        )

    def _serving_fields(self) -> dict[str, Any]:
        serving = self._serving
        if serving is None:
            return {}
        watchdog = serving.watchdog
        return {
            "consecutive_failures": serving.consecutive_failures,
            "request_error": serving.last_error,
            "fatal": serving.fatal,
            "heartbeat_path": None if watchdog is None else str(watchdog.path),
            "heartbeat_error": None if watchdog is None else watchdog.error,
        }

    def _run_check(self, check: Callable[[], Any] | None) -> CheckResult:
        if check is None:
            return CheckResult(CheckStatus.NOT_CONFIGURED)
        if self._checker is None:
            self._checker = CheckRunner(check, self._clock)
        return self._checker.run(self._config.check_timeout_s)

    def _read_record(self) -> tuple[InitRecord | None, str | None]:
        """The record as stored now (other workers update it too), and what went wrong.

        A record that cannot be read gives ``None``: the status then says why instead of
        showing a history that may be stale.
        """
        if self._store is None or self._store_error is not None:
            return self._record, self._store_error
        try:
            record = self._store.read()
        except Exception as exc:  # a corrupt or vanished record must not break describe
            return None, f"{type(exc).__name__}: {exc}"
        if record is None:
            return None, f"record missing: {self._store.path}"
        return record, None

    # -- metrics ---------------------------------------------------------------------------

    def _report(self, status: HealthStatus) -> None:
        """Emit ``HealthState`` when the status differs from the one last emitted."""
        if status is not self._reported:
            self._reported = status
            self._metric(METRIC_STATE, STATE_GAUGE[status], "State", per_worker=True)

    def _metric(
        self, name: str, value: float, unit: str, *, counter: bool = False, per_worker: bool = False
    ) -> None:
        worker = (self._identity.worker or UNKNOWN) if per_worker else None
        emit(self._metrics, self._model_name, name, value, unit, counter=counter, worker=worker)
