"""``HealthMixin``: recorded initialization, controlled failures and a JSON describe status.

Use it as the first base of a TorchServe handler::

    class MyHandler(HealthMixin, BaseHandler):
        def initialize(self, context): ...

TorchServe's worker takes the bound ``initialize`` and ``handle`` of the handler instance.
Every class that mixes us in gets its own ``initialize`` and ``handle`` wrapped when it is
defined (``__init_subclass__``), so the user's code is recorded without calling anything new,
and a describe request is answered even when the user overrides ``handle()``. Only the
outermost call of each does the bookkeeping; ``super()`` chains pass straight through.
"""

from __future__ import annotations

import functools
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from ._config import HealthConfig, InitFailurePolicy
from ._errors import ConfigError, InferenceError, InitializationError, to_prediction_exception
from ._state import (
    ErrorInfo,
    InitPhase,
    InitRecord,
    StateStore,
    bound,
    pid_alive,
    resolve_state_dir,
    utc_iso,
)
from ._status import (
    STATUS_SCHEMA_VERSION,
    CheckResult,
    CheckRunner,
    CheckStatus,
    HealthStatus,
    library_versions,
)

__all__ = ["HealthMixin"]

_F = TypeVar("_F", bound=Callable[..., Any])
_WRAPPED: Final = "__ts_health_wrapped__"
#: Metric names emitted through ``context.metrics``; declare them in the metrics config
#: (``examples/templates/metrics.yaml``) so that they reach the Prometheus endpoint.
METRIC_INIT_DURATION: Final = "HealthInitDurationMs"
METRIC_INIT_FAILURES: Final = "HealthInitFailures"
METRIC_STATE: Final = "HealthState"
#: ``HealthState`` gauge values: 0 is good, anything above wants attention.
STATE_GAUGE: Final = {HealthStatus.READY: 0, HealthStatus.DEGRADED: 1, HealthStatus.FAILED: 2}
#: Kubernetes keeps at most 4096 bytes of a termination message.
TERMINATION_LIMIT: Final = 4096
UNKNOWN_VERSION: Final = "unknown"


@dataclass(slots=True)
class _Runtime:
    """What one worker process knows about itself; held by the handler instance."""

    started: float
    config: HealthConfig = field(default_factory=HealthConfig)
    model_name: str = "unknown"
    model_version: str = UNKNOWN_VERSION
    store: StateStore | None = None
    store_error: str | None = None
    phase: InitPhase = InitPhase.INITIALIZING
    attempt: int | None = None
    init_started_at: float | None = None
    init_finished_at: float | None = None
    error: ErrorInfo | None = None
    record: InitRecord | None = None
    requests_total: int = 0
    requests_failed: int = 0
    last_request_at: float | None = None
    checker: CheckRunner | None = None
    in_initialize: bool = False
    in_handle: bool = False
    #: True when handle() must take the slow path (held failure or inference faults).
    gated: bool = False
    metrics: Any = None
    reported_state: HealthStatus | None = None


def _model_identity(context: Any) -> tuple[str, str]:
    name = getattr(context, "model_name", None)
    version = UNKNOWN_VERSION
    manifest = getattr(context, "manifest", None)
    if isinstance(manifest, dict):
        model = manifest.get("model")
        if isinstance(model, dict):
            name = name or model.get("modelName")
            version = str(model.get("modelVersion") or UNKNOWN_VERSION)
    return str(name or "unknown"), version


def _wrap_initialize(method: _F) -> _F:
    @functools.wraps(method)
    def initialize(self: HealthMixin, context: Any, *args: Any, **kwargs: Any) -> Any:
        return self._health_initialize(method, context, *args, **kwargs)

    setattr(initialize, _WRAPPED, True)
    return initialize  # type: ignore[return-value]


def _wrap_handle(method: _F) -> _F:
    # handle() runs on every request: this closure is the whole hot path, kept flat
    # (see benchmarks/handle_overhead.py before adding anything here).
    @functools.wraps(method)
    def handle(self: HealthMixin, data: Any, context: Any) -> Any:
        runtime: _Runtime = self.__dict__.get("_ts_health") or self._health_runtime()
        if runtime.in_handle:  # a super() call inside the user's handle()
            return method(self, data, context)
        try:
            describe = context.get_request_header(0, "describe") == "True"
        except (AttributeError, IndexError, KeyError, TypeError):
            describe = False
        if describe:
            return self._health_describe(data, context)
        count = len(data) if isinstance(data, list) else 1
        runtime.requests_total += count
        runtime.last_request_at = self.health_clock()
        runtime.in_handle = True
        try:
            if runtime.gated:
                self._health_gate(runtime)
            return method(self, data, context)
        except InferenceError as exc:
            runtime.requests_failed += count
            raise to_prediction_exception(exc) from exc
        except Exception:
            runtime.requests_failed += count
            raise
        finally:
            runtime.in_handle = False

    setattr(handle, _WRAPPED, True)
    return handle  # type: ignore[return-value]


_WRAPPERS: Final = {"initialize": _wrap_initialize, "handle": _wrap_handle}


class HealthMixin:
    """Adds honest health to a TorchServe handler. Put it first among the bases.

    Override :meth:`health_check` to add a runtime check of your own. Read
    :meth:`health_status` (or ``describe_handle()``) for the status document.
    """

    def health_clock(self) -> float:
        """Wall clock in epoch seconds. Tests replace it: ``handler.health_clock = fake``."""
        return time.time()

    def health_sleep(self, seconds: float) -> None:
        """Sleep used by the delay faults. Tests replace it like :meth:`health_clock`."""
        time.sleep(seconds)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, wrap in _WRAPPERS.items():
            method = cls.__dict__.get(name)
            if method is None and getattr(cls, name, None) is _MIXIN_METHODS.get(name):
                # Wrap the next implementation after the mixin directly: one call layer
                # (our pass-through super() call) less on every request.
                method = _next_after_mixin(cls, name)
            if callable(method) and not getattr(method, _WRAPPED, False):
                setattr(cls, name, wrap(method))
        for klass in cls.__mro__:
            if klass is HealthMixin:
                break
            if not issubclass(klass, HealthMixin) and any(n in vars(klass) for n in _WRAPPERS):
                raise TypeError(
                    f"{cls.__qualname__}: HealthMixin must come before {klass.__qualname__} "
                    f"in the bases, e.g. class {cls.__name__}(HealthMixin, "
                    f"{klass.__name__}); otherwise {klass.__name__}.initialize/handle "
                    "would bypass it"
                )

    # -- hooks users may override -------------------------------------------------------

    def health_check(self) -> Any:
        """Your own runtime check, run on every describe within ``health.check_timeout_s``.

        Return ``True``, ``False`` or a dict (``{"healthy": False, ...}`` fails); raising
        fails too. The default reports ``not_configured``.
        """
        return None

    # -- TorchServe entry points ----------------------------------------------------------

    @_wrap_initialize
    def initialize(self, context: Any) -> Any:
        parent = super()
        if hasattr(parent, "initialize"):
            return parent.initialize(context)
        return None

    @_wrap_handle
    def handle(self, data: Any, context: Any) -> Any:
        try:
            parent_handle = super().handle  # type: ignore[misc]
        except AttributeError:
            raise NotImplementedError(
                f"{type(self).__qualname__} has no handle(): subclass BaseHandler or define one"
            ) from None
        return parent_handle(data, context)

    def describe_handle(self) -> dict[str, Any]:
        """The status document (a dict: TorchServe 0.12 drops anything but a JSON object)."""
        return self.health_status()

    # -- the status document ------------------------------------------------------------

    def health_status(self) -> dict[str, Any]:
        """Build the status document; see ``docs/status.md`` for every field."""
        runtime = self._health_runtime()
        now = self.health_clock()
        check = self._health_run_check(runtime)
        if runtime.phase is not InitPhase.READY:
            status = HealthStatus.FAILED
        elif not check.healthy:
            status = HealthStatus.DEGRADED
        else:
            status = HealthStatus.READY
        self._health_report_state(runtime, status)
        record, store_error = self._health_read_record(runtime)
        return {
            "status": status.value,
            "schema_version": STATUS_SCHEMA_VERSION,
            "model": {"name": runtime.model_name, "version": runtime.model_version},
            "worker": {
                "pid": os.getpid(),
                "started_at": utc_iso(runtime.started),
                "uptime_s": round(max(0.0, now - runtime.started), 3),
                "device": self._health_device(),
            },
            "initialization": {
                "phase": runtime.phase.value,
                "attempt": runtime.attempt,
                "started_at": _iso_or_none(runtime.init_started_at),
                "finished_at": _iso_or_none(runtime.init_finished_at),
                "duration_s": _duration(runtime.init_started_at, runtime.init_finished_at),
                "policy": runtime.config.on_init_failure.value,
                "error": runtime.error.to_json() if runtime.error else None,
                "history": None if record is None else _history(record),
            },
            "requests": {
                "total": runtime.requests_total,
                "failed": runtime.requests_failed,
                "last_request_at": _iso_or_none(runtime.last_request_at),
            },
            "check": check.to_json(),
            "state_store": {
                "path": None if runtime.store is None else str(runtime.store.path),
                "ok": runtime.store is not None and store_error is None,
                "error": store_error,
            },
            "faults": _active_faults(runtime.config),
            "versions": library_versions(),
        }

    # -- internals ------------------------------------------------------------------------

    def _health_read_record(self, runtime: _Runtime) -> tuple[InitRecord | None, str | None]:
        """The record as stored now (other workers update it too), and what went wrong.

        A record that cannot be read gives ``None``: the status then says why instead of
        showing a history that may be stale.
        """
        if runtime.store is None or runtime.store_error is not None:
            return runtime.record, runtime.store_error
        try:
            record = runtime.store.read()
        except Exception as exc:  # a corrupt or vanished record must not break describe
            return None, f"{type(exc).__name__}: {exc}"
        if record is None:
            return None, f"record missing: {runtime.store.path}"
        return record, None

    def _health_runtime(self) -> _Runtime:
        runtime: _Runtime | None = self.__dict__.get("_ts_health")
        if runtime is None:
            runtime = _Runtime(started=self.health_clock())
            self.__dict__["_ts_health"] = runtime
        return runtime

    def _health_initialize(
        self, method: Callable[..., Any], context: Any, *args: Any, **kwargs: Any
    ) -> Any:
        runtime = self._health_runtime()
        if runtime.in_initialize:  # a super() call inside the user's initialize()
            return method(self, context, *args, **kwargs)
        runtime.in_initialize = True
        try:
            return self._health_initialize_outer(runtime, method, context, *args, **kwargs)
        finally:
            runtime.in_initialize = False

    def _health_initialize_outer(
        self,
        runtime: _Runtime,
        method: Callable[..., Any],
        context: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        runtime.model_name, runtime.model_version = _model_identity(context)
        runtime.metrics = getattr(context, "metrics", None)
        started = self.health_clock()
        runtime.init_started_at, runtime.init_finished_at = started, None
        runtime.phase, runtime.error = InitPhase.INITIALIZING, None
        config_error: ConfigError | None = None
        try:
            runtime.config = HealthConfig.from_model_yaml(
                getattr(context, "model_yaml_config", None)
            )
        except ConfigError as exc:
            config_error = exc
            runtime.config = HealthConfig.salvage(getattr(context, "model_yaml_config", None))
        runtime.store = None  # the state dir may differ from an earlier initialize()
        self._health_persist(
            runtime,
            lambda previous: InitRecord.started(
                previous,
                model_name=runtime.model_name,
                model_version=runtime.model_version,
                now=started,
                worker_pid=os.getpid(),
                server_pid=os.getppid(),
                worker_alive=pid_alive,
            ),
        )
        if runtime.record is not None:
            runtime.attempt = runtime.record.attempts
        faults = runtime.config.faults
        try:
            if config_error is not None:
                raise config_error
            if faults.initialize_delay_s:
                self.health_sleep(faults.initialize_delay_s)
            if faults.fail_initialize is not None:
                raise InitializationError(
                    f"injected by health.faults.fail_initialize: {faults.fail_initialize}"
                )
            result = method(self, context, *args, **kwargs)
        except Exception as exc:
            self._health_record_failure(runtime, exc)
            self._health_metric(runtime, METRIC_INIT_FAILURES, 1, "Count", counter=True)
            self._health_report_state(runtime, HealthStatus.FAILED)
            runtime.gated = True
            if config_error is None and runtime.config.on_init_failure is InitFailurePolicy.HOLD:
                return None
            if isinstance(exc, InitializationError):
                raise
            raise InitializationError(f"{type(exc).__name__}: {exc}") from exc
        finished = self.health_clock()
        runtime.phase, runtime.init_finished_at = InitPhase.READY, finished
        runtime.gated = faults.inference_delay_s > 0 or faults.fail_inference is not None
        self._health_persist(
            runtime,
            lambda previous: _current(previous, runtime).succeeded(
                now=finished, duration_s=finished - started, worker_pid=os.getpid()
            ),
        )
        self._health_metric(runtime, METRIC_INIT_DURATION, (finished - started) * 1000, "ms")
        self._health_report_state(runtime, HealthStatus.READY)
        return result

    def _health_record_failure(self, runtime: _Runtime, exc: BaseException) -> None:
        finished = self.health_clock()
        limit = runtime.config.traceback_limit
        runtime.phase, runtime.init_finished_at = InitPhase.FAILED, finished
        runtime.error = ErrorInfo(
            type=_qualified_name(type(exc)),
            message=bound(str(exc), 2000),
            at=utc_iso(finished),
            attempt=runtime.attempt or 0,
            traceback=bound(
                "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)), limit
            )
            if limit
            else None,
        )
        error = runtime.error
        started = runtime.init_started_at or finished
        self._health_persist(
            runtime,
            lambda previous: _current(previous, runtime).failed(
                error, now=finished, duration_s=finished - started, worker_pid=os.getpid()
            ),
        )
        self._health_write_termination_log(runtime, error)

    def _health_persist(
        self, runtime: _Runtime, change: Callable[[InitRecord | None], InitRecord]
    ) -> None:
        """Update the record; a broken state dir is reported in the status, never raised."""
        try:
            if runtime.store is None:
                runtime.store = StateStore(
                    resolve_state_dir(runtime.config.state_dir),
                    runtime.model_name,
                    runtime.model_version,
                )
            runtime.record = runtime.store.update(change)
            runtime.store_error = None
        except Exception as exc:  # our bookkeeping must never fail the handler
            runtime.store_error = f"{type(exc).__name__}: {exc}"
            try:
                runtime.record = change(runtime.record)
            except Exception:  # pragma: no cover - transitions are pure; defensive only
                runtime.record = None

    def _health_report_state(self, runtime: _Runtime, status: HealthStatus) -> None:
        if status is not runtime.reported_state:
            runtime.reported_state = status
            self._health_metric(runtime, METRIC_STATE, STATE_GAUGE[status], "State")

    def _health_metric(
        self, runtime: _Runtime, name: str, value: float, unit: str, *, counter: bool = False
    ) -> None:
        """Emit through TorchServe's metrics cache; a missing or broken cache is ignored."""
        if runtime.metrics is None:
            return
        try:
            from ts.metrics.metric_type_enum import MetricTypes

            kind = MetricTypes.COUNTER if counter else MetricTypes.GAUGE
            # A fresh list each call: ts appends default dimensions to the list it is given.
            runtime.metrics.add_metric(name, value, unit, None, [], kind)
        except Exception:  # metrics are best effort; they must never fail the handler
            return

    def _health_write_termination_log(self, runtime: _Runtime, error: ErrorInfo) -> None:
        path = runtime.config.termination_log
        if not path:
            return
        message = (
            f"model {runtime.model_name} {runtime.model_version} failed to initialize "
            f"(attempt {error.attempt}): {error.type}: {error.message}"
        )
        try:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(_termination_text(message))
        except OSError as exc:
            runtime.store_error = runtime.store_error or f"termination_log {path}: {exc}"

    def _health_describe(self, data: Any, context: Any) -> list[Any]:
        self.context = context
        document = self.describe_handle()
        return [document] * max(1, len(data) if isinstance(data, list) else 1)

    def _health_gate(self, runtime: _Runtime) -> None:
        """The slow path of ``handle()``: a held failure or an inference fault."""
        if runtime.phase is InitPhase.FAILED and runtime.error is not None:
            raise InferenceError(
                f"model {runtime.model_name} is not initialized "
                f"({runtime.error.type}: {runtime.error.message})",
                503,
            )
        faults = runtime.config.faults
        if faults.inference_delay_s:
            self.health_sleep(faults.inference_delay_s)
        if faults.fail_inference is not None:
            raise InferenceError(
                f"injected by health.faults.fail_inference: {faults.fail_inference}",
                faults.fail_inference_status,
            )

    def _health_run_check(self, runtime: _Runtime) -> CheckResult:
        if type(self).health_check is HealthMixin.health_check:
            return CheckResult(CheckStatus.NOT_CONFIGURED)
        if runtime.checker is None:
            runtime.checker = CheckRunner(self.health_check, self.health_clock)
        return runtime.checker.run(runtime.config.check_timeout_s)

    def _health_device(self) -> str | None:
        device = getattr(self, "device", None)
        if device is not None:
            return str(device)
        context = getattr(self, "context", None)
        properties = getattr(context, "system_properties", None)
        if isinstance(properties, dict):
            gpu = properties.get("gpu_id")
            return "cpu" if gpu is None else f"gpu:{gpu}"
        return None


def _next_after_mixin(cls: type, name: str) -> Any:
    mro = cls.__mro__
    for klass in mro[mro.index(HealthMixin) + 1 :]:
        if name in vars(klass):
            return vars(klass)[name]
    return None


_MIXIN_METHODS: Final = {"initialize": HealthMixin.initialize, "handle": HealthMixin.handle}


def _current(previous: InitRecord | None, runtime: _Runtime) -> InitRecord:
    """The record to move on from: the stored one, else this worker's own copy."""
    if previous is not None:
        return previous
    if runtime.record is not None:
        return runtime.record
    return InitRecord(runtime.model_name, runtime.model_version, InitPhase.INITIALIZING)


def _history(record: InitRecord) -> dict[str, Any]:
    return {
        "attempts": record.attempts,
        "failures": record.failures,
        "consecutive_failures": record.consecutive_failures,
        "attempts_to_ready": record.attempts_to_ready,
        "first_failure_at": record.first_failure_at,
        "recent_errors": [e.to_json() for e in record.recent_errors],
    }


def _active_faults(config: HealthConfig) -> dict[str, Any]:
    faults = config.faults
    default = type(faults)()
    return {
        name: getattr(faults, name)
        for name in faults.__dataclass_fields__
        if getattr(faults, name) != getattr(default, name)
    }


def _termination_text(message: str) -> str:
    """``message`` as one line of at most :data:`TERMINATION_LIMIT` UTF-8 bytes (end kept)."""
    text = " ".join(message.splitlines())
    data = text.encode("utf-8")
    if len(data) <= TERMINATION_LIMIT:
        return text
    marker = "...[truncated]... "
    tail = data[len(data) - (TERMINATION_LIMIT - len(marker)) :]
    return marker + tail.decode("utf-8", errors="ignore")


def _iso_or_none(timestamp: float | None) -> str | None:
    return None if timestamp is None else utc_iso(timestamp)


def _duration(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return round(end - start, 6)


def _qualified_name(kind: type) -> str:
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"
