"""The user's ``health_check()``: every kind of answer, exceptions and timeouts.

A failing or slow check makes the status ``degraded`` and never raises out of describe.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ts_health_handler import (
    CheckStatus,
    ErrorInfo,
    Faults,
    HealthConfig,
    HealthMixin,
    HealthStatus,
    InitFailurePolicy,
    InitPhase,
)
from ts_health_handler._text import clip
from ts_health_handler.handler._describe import (
    RESULT_LIMIT,
    CheckResult,
    CheckRunner,
    WorkerSnapshot,
    active_faults,
    build_status,
    document_status,
    interpret,
)
from ts_health_handler.record import InitRecord
from ts_health_handler.testing import describe

pytestmark = pytest.mark.usefixtures("no_real_sleep")


class Checked(HealthMixin):
    """A model whose health_check() does whatever the test put in ``self.check``."""

    check: Callable[[], Any] = staticmethod(lambda: True)

    def initialize(self, context: Any) -> None:
        self.loaded = True

    def handle(self, data: Any, context: Any) -> Any:
        return [{"ok": True} for _ in data]

    def health_check(self) -> Any:
        return self.check()


class Unchecked(HealthMixin):
    def initialize(self, context: Any) -> None:
        self.loaded = True

    def handle(self, data: Any, context: Any) -> Any:
        return data


@pytest.fixture
def make(ts_context: Any, fake_time: Any) -> Callable[..., tuple[Any, Any]]:
    def build(
        check: Callable[[], Any] | None = None, health: dict[str, Any] | None = None
    ) -> tuple[Any, Any]:
        handler = fake_time(Checked() if check is not None else Unchecked())
        if check is not None:
            handler.check = check
        context = ts_context("checked", model_yaml_config={"health": health or {}})
        handler.initialize(context)
        return handler, context

    return build


def _raise(exc: BaseException) -> Callable[[], Any]:
    def check() -> Any:
        raise exc

    return check


@pytest.mark.parametrize(
    ("check", "status", "check_status", "result", "error"),
    [
        (lambda: True, "ready", "ok", True, None),
        (lambda: {"queue": 3, "gpu": "ok"}, "ready", "ok", {"queue": 3, "gpu": "ok"}, None),
        (lambda: {"healthy": True}, "ready", "ok", {"healthy": True}, None),
        (
            lambda: {"healthy": False, "why": "gpu lost"},
            "degraded",
            "failed",
            {"healthy": False, "why": "gpu lost"},
            "health_check() reported healthy: false",
        ),
        (lambda: False, "degraded", "failed", False, "health_check() returned False"),
        (
            lambda: 1,
            "degraded",
            "error",
            1,
            "health_check() returned int; expected True, False or a dict",
        ),
        (
            lambda: "ok",
            "degraded",
            "error",
            "ok",
            "health_check() returned str; expected True, False or a dict",
        ),
        (
            lambda: None,
            "degraded",
            "error",
            None,
            "health_check() returned NoneType; expected True, False or a dict",
        ),
        (
            lambda: [True],
            "degraded",
            "error",
            [True],
            "health_check() returned list; expected True, False or a dict",
        ),
        (_raise(RuntimeError("cuda gone")), "degraded", "error", None, "RuntimeError: cuda gone"),
        (
            _raise(KeyError("weights")),
            "degraded",
            "error",
            None,
            "KeyError: 'weights'",
        ),
        (
            _raise(ValueError("first line\nsecond line")),
            "degraded",
            "error",
            None,
            "ValueError: first line second line",
        ),
    ],
    ids=[
        "true",
        "dict",
        "dict-healthy-true",
        "dict-healthy-false",
        "false",
        "int",
        "str",
        "none",
        "list",
        "raises",
        "raises-keyerror",
        "raises-multiline",
    ],
)
def test_check_outcomes(
    make: Any, check: Any, status: str, check_status: str, result: Any, error: str | None
) -> None:
    handler, context = make(check)

    document = describe(handler, context)

    assert document["status"] == status
    assert document["check"] == {
        "status": check_status,
        "result": result,
        "error": error,
        "duration_s": 0.0,
    }


def test_no_check_defined_is_not_configured_and_ready(make: Any) -> None:
    handler, context = make()

    document = describe(handler, context)

    assert document["status"] == "ready"
    assert document["check"] == {
        "status": "not_configured",
        "result": None,
        "error": None,
        "duration_s": None,
    }


def test_check_duration_comes_from_the_clock(make: Any, clock: Any) -> None:
    def slowish() -> bool:
        clock.advance(0.25)
        return True

    handler, context = make(slowish)

    assert describe(handler, context)["check"]["duration_s"] == 0.25


def test_check_is_run_on_every_describe(make: Any) -> None:
    answers = iter([True, False, {"healthy": True}])
    handler, context = make(lambda: next(answers))

    assert [describe(handler, context)["status"] for _ in range(3)] == [
        "ready",
        "degraded",
        "ready",
    ]


def test_failed_initialization_outranks_a_passing_check(make: Any) -> None:
    handler, context = make(
        lambda: True, {"on_init_failure": "hold", "faults": {"fail_initialize": "x"}}
    )

    document = describe(handler, context)

    assert document["status"] == "failed"
    assert document["check"]["status"] == "ok"


def test_unserialisable_results_are_made_json_safe(make: Any) -> None:
    marker = object()
    handler, context = make(lambda: {"handle": marker})

    check = describe(handler, context)["check"]

    assert check["status"] == "ok"
    assert check["result"] == repr({"handle": marker})


def test_long_exception_message_is_bounded(make: Any) -> None:
    handler, context = make(_raise(RuntimeError("x" * 10_000)))

    error = describe(handler, context)["check"]["error"]

    assert len(error) == RESULT_LIMIT
    assert error.startswith("RuntimeError: xxx")


# -- timeouts: a real thread, released in teardown --------------------------------------


class BlockingCheck:
    def __init__(self) -> None:
        self.release = threading.Event()
        self.finished = threading.Event()
        self.calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        try:
            self.release.wait(timeout=30)
            return {"slow": "but fine"}
        finally:
            self.finished.set()


@pytest.fixture
def blocking() -> Iterator[BlockingCheck]:
    check = BlockingCheck()
    yield check
    check.release.set()
    # A check that ran must end once released (a test skipped before it ran has none).
    assert check.calls == 0 or check.finished.wait(timeout=30)


def test_slow_check_times_out_and_is_not_started_twice(
    make: Any, blocking: BlockingCheck, clock: Any
) -> None:
    # 0.2 s: the only real wait of the unit tests (the first describe).
    handler, context = make(blocking, {"check_timeout_s": 0.2})

    first = describe(handler, context)
    assert first["status"] == "degraded"
    assert first["check"] == {
        "status": "timeout",
        "result": None,
        "error": "health_check() did not answer within 0.2 s",
        "duration_s": 0.2,
    }

    clock.advance(7)
    second = describe(handler, context)
    assert blocking.calls == 1  # no second thread while the first check still runs
    assert second["status"] == "degraded"
    assert second["check"] == {
        "status": "timeout",
        "result": None,
        "error": "health_check() still running after 7.0 s (limit 0.2 s)",
        "duration_s": 7.0,
    }

    blocking.release.set()
    assert blocking.finished.wait(timeout=30)
    for thread in threading.enumerate():
        if thread.name == "ts-health-check":
            thread.join(timeout=30)

    # The fresh check answers at once, but its thread must first be scheduled: on a loaded
    # machine that took longer than 0.2 s. A limit of 30 s only bounds that wait.
    tracker = handler._ts_health
    tracker._config = dataclasses.replace(tracker._config, check_timeout_s=30.0)
    third = describe(handler, context)
    assert blocking.calls == 2
    assert third["status"] == "ready"
    assert third["check"]["result"] == {"slow": "but fine"}


# -- interpret / CheckRunner as units ---------------------------------------------------


def test_interpret_bounds_large_results() -> None:
    outcome = interpret({"blob": "y" * 10_000}, 0.5)

    assert outcome.status is CheckStatus.OK
    assert isinstance(outcome.result, str)
    assert len(outcome.result) == RESULT_LIMIT
    assert outcome.result.startswith('{"blob": "yyy')
    assert outcome.healthy is True


def test_interpret_replaces_nan_with_repr() -> None:
    outcome = interpret({"loss": float("nan")}, 0.0)

    assert outcome.result == "{'loss': nan}"
    assert outcome.to_json() == {
        "status": "ok",
        "result": "{'loss': nan}",
        "error": None,
        "duration_s": 0.0,
    }


def test_check_raising_system_exit_is_an_error_not_a_timeout() -> None:
    runner = CheckRunner(_raise(SystemExit(3)), lambda: 0.0)

    outcome = runner.run(5)

    assert outcome.status is CheckStatus.ERROR
    assert outcome.error == "SystemExit: 3"
    assert outcome.healthy is False


def test_health_status_enum_values() -> None:
    assert [s.value for s in HealthStatus] == ["ready", "degraded", "failed"]
    assert [s.value for s in CheckStatus] == ["ok", "failed", "error", "timeout", "not_configured"]


def test_library_versions_of_missing_distributions_are_null(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from importlib import metadata

    from ts_health_handler import __version__
    from ts_health_handler.handler._describe import library_versions

    def missing(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", missing)
    versions = library_versions.__wrapped__()  # uncached

    assert versions["ts_health_handler"] == __version__
    assert (versions["torchserve"], versions["torch"]) == (None, None)


# -- build_status(): the whole document from plain data ---------------------------------

OK = CheckResult(CheckStatus.OK, True, None, 0.5)
NOT_CONFIGURED = CheckResult(CheckStatus.NOT_CONFIGURED)
FAILED_CHECK = CheckResult(CheckStatus.FAILED, False, "health_check() returned False", 0.0)


def snapshot(**changes: Any) -> WorkerSnapshot:
    fields: dict[str, Any] = {
        "model_name": "m",
        "model_version": "1",
        "started": 1_750_000_000.0,
        "config": HealthConfig(),
        "phase": InitPhase.READY,
        "attempt": 2,
        "init_started_at": 1_750_000_000.0,
        "init_finished_at": 1_750_000_001.2345678,
        "error": None,
        "requests_total": 7,
        "requests_failed": 2,
        "last_request_at": 1_750_000_005.5,
        "store_path": "/state/m/1/init.json",
    }
    fields.update(changes)
    return WorkerSnapshot(**fields)


def build(worker: WorkerSnapshot, check: CheckResult = OK, **kwargs: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "record": None,
        "store_error": None,
        "now": 1_750_000_010.0,
        "pid": 42,
        "device": "cpu",
        "versions": {"python": "3"},
    }
    arguments.update(kwargs)
    record, store_error = arguments.pop("record"), arguments.pop("store_error")
    return build_status(worker, check, record, store_error, **arguments)


@pytest.mark.parametrize(
    ("phase", "check", "status"),
    [
        (InitPhase.READY, OK, HealthStatus.READY),
        (InitPhase.READY, NOT_CONFIGURED, HealthStatus.READY),
        (InitPhase.READY, FAILED_CHECK, HealthStatus.DEGRADED),
        (InitPhase.FAILED, OK, HealthStatus.FAILED),
        (InitPhase.INITIALIZING, NOT_CONFIGURED, HealthStatus.FAILED),
        (InitPhase.FAILED, FAILED_CHECK, HealthStatus.FAILED),
    ],
)
def test_document_status(phase: InitPhase, check: CheckResult, status: HealthStatus) -> None:
    assert document_status(phase, check) is status
    assert build(snapshot(phase=phase), check)["status"] == status.value


def test_build_status_from_plain_data() -> None:
    error = ErrorInfo("OSError", "gone", "2025-06-15T15:06:41.000Z", 1)
    record = InitRecord(
        "m", "1", InitPhase.READY, attempts=2, failures=1, attempts_to_ready=2,
        recent_errors=(error,),
    )  # fmt: skip
    config = HealthConfig(
        on_init_failure=InitFailurePolicy.HOLD, faults=Faults(inference_delay_s=0.5)
    )

    document = build(snapshot(config=config, error=error), record=record, versions={"a": "1"})

    assert document == {
        "status": "ready",
        "schema_version": 1,
        "ready": True,
        "conditions": [
            {
                "type": "Initialized",
                "status": "True",
                "reason": "InitializeSucceeded",
                "message": "initialize() returned",
                "lastTransitionTime": "2025-06-15T15:06:41.234Z",
            },
            {
                "type": "HealthCheckPassed",
                "status": "True",
                "reason": "CheckOk",
                "message": "",
                "lastTransitionTime": None,  # the snapshot knows no check run before this one
            },
            {
                "type": "Ready",
                "status": "True",
                "reason": "Ready",
                "message": "initialized, and the health check passes",
                "lastTransitionTime": "2025-06-15T15:06:41.234Z",
            },
        ],
        "model": {"name": "m", "version": "1"},
        "worker": {
            "pid": 42,
            "started_at": "2025-06-15T15:06:40.000Z",
            "uptime_s": 10.0,
            "device": "cpu",
            "mode": "default",
        },
        "initialization": {
            "phase": "ready",
            "attempt": 2,
            "started_at": "2025-06-15T15:06:40.000Z",
            "finished_at": "2025-06-15T15:06:41.234Z",  # cut, not rounded
            "duration_s": 1.234568,
            "policy": "hold",
            "error": error.to_json(),
            "history": {
                "attempts": 2,
                "failures": 1,
                "consecutive_failures": 0,
                "attempts_to_ready": 2,
                "first_failure_at": None,
                "recent_errors": [error.to_json()],
            },
        },
        "requests": {
            "total": 7,
            "failed": 2,
            "in_flight": 0,
            "open": None,
            "last_request_at": "2025-06-15T15:06:45.500Z",
            "consecutive_failures": 0,
            "last_error": None,
            "fatal": None,
        },
        "check": {"status": "ok", "result": True, "error": None, "duration_s": 0.5},
        "state_store": {"path": "/state/m/1/init.json", "ok": True, "error": None},
        "faults": {"inference_delay_s": 0.5},
        "versions": {"a": "1"},
    }


@pytest.mark.parametrize(
    ("now", "uptime"),
    [(1_750_000_000.0, 0.0), (1_749_999_000.0, 0.0), (1_750_000_001.23449, 1.234)],
)
def test_uptime_is_rounded_and_never_negative(now: float, uptime: float) -> None:
    assert build(snapshot(), now=now)["worker"]["uptime_s"] == uptime


@pytest.mark.parametrize(
    ("started", "finished", "duration"),
    [(None, None, None), (1.0, None, None), (None, 2.0, None), (1.0, 3.5, 2.5)],
)
def test_duration_needs_both_ends(
    started: float | None, finished: float | None, duration: float | None
) -> None:
    worker = snapshot(init_started_at=started, init_finished_at=finished)

    initialization = build(worker)["initialization"]

    assert initialization["duration_s"] == duration
    assert initialization["started_at"] == (None if started is None else "1970-01-01T00:00:01.000Z")


def test_nothing_known_yet_is_null() -> None:
    worker = snapshot(
        phase=InitPhase.INITIALIZING, attempt=None, init_started_at=None, init_finished_at=None,
        last_request_at=None, store_path=None,
    )  # fmt: skip

    document = build(worker, NOT_CONFIGURED, device=None)

    assert document["initialization"]["finished_at"] is None
    assert document["initialization"]["error"] is None
    assert document["initialization"]["history"] is None
    assert document["requests"]["last_request_at"] is None
    assert document["worker"]["device"] is None
    assert document["state_store"] == {"path": None, "ok": False, "error": None}


@pytest.mark.parametrize(
    ("path", "error", "ok"),
    [("/s/init.json", None, True), ("/s/init.json", "RecordError: x", False), (None, None, False)],
)
def test_state_store_is_ok_only_with_a_path_and_no_error(
    path: str | None, error: str | None, ok: bool
) -> None:
    store = build(snapshot(store_path=path), store_error=error)["state_store"]

    assert store == {"path": path, "ok": ok, "error": error}


def test_active_faults_are_the_knobs_off_their_defaults() -> None:
    assert active_faults(Faults()) == {}
    assert active_faults(Faults(fail_inference_status=503)) == {}
    assert active_faults(Faults(fail_initialize="x", fail_inference_status=429)) == {
        "fail_initialize": "x",
        "fail_inference_status": 429,
    }


# -- exact boundaries and durations ---------------------------------------------------


def test_a_result_of_exactly_the_limit_is_kept_as_is() -> None:
    exact = {"b": "x" * (RESULT_LIMIT - len('{"b": ""}'))}
    over = {"b": "x" * (RESULT_LIMIT - len('{"b": ""}') + 1)}

    assert interpret(exact, 0.0).result == exact
    cut = interpret(over, 0.0).result
    text = json.dumps(over)
    assert len(cut) == RESULT_LIMIT
    assert cut.startswith('{"b": "xx')
    assert cut.endswith('xx"}')
    assert "...[truncated]...\n" in cut
    assert cut == clip(text, RESULT_LIMIT)


class StepClock:
    """Moves ``step`` seconds on every reading."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.mark.parametrize("check", [lambda: True, _raise(OSError("x"))], ids=["ok", "raises"])
def test_check_durations_are_rounded_to_six_decimals(check: Callable[[], Any]) -> None:
    outcome = CheckRunner(check, StepClock(0.12345678)).run(5)

    assert outcome.duration_s == 0.123457


def test_the_check_runs_in_a_named_daemon_thread() -> None:
    seen: list[threading.Thread] = []

    outcome = CheckRunner(lambda: seen.append(threading.current_thread()) or True, time_zero).run(5)

    assert outcome.status is CheckStatus.OK
    [thread] = seen
    assert thread is not threading.main_thread()
    assert thread.name == "ts-health-check"
    assert thread.daemon is True


def time_zero() -> float:
    return 0.0


def test_a_timeout_is_reported_after_timeout_s_with_rounded_figures(
    blocking: BlockingCheck, clock: Any
) -> None:
    runner = CheckRunner(blocking, clock)

    first = runner.run(0.0123456789)
    clock.advance(1.23456789)
    second = runner.run(0.0123456789)

    assert first.to_json() == {
        "status": "timeout",
        "result": None,
        "error": "health_check() did not answer within 0.0123457 s",
        "duration_s": 0.012346,
    }
    assert second.duration_s == 1.234568
    assert second.error == "health_check() still running after 1.2 s (limit 0.0123457 s)"
    assert blocking.calls == 1


def _conditions(document: dict[str, Any]) -> dict[str, tuple[str, str, str, Any]]:
    return {
        c["type"]: (c["status"], c["reason"], c["message"], c["lastTransitionTime"])
        for c in document["conditions"]
    }


def test_conditions_of_a_failed_initialization() -> None:
    error = ErrorInfo("builtins.OSError", "weights gone", "2025-06-15T15:06:41.000Z", 3)
    worker = snapshot(phase=InitPhase.FAILED, error=error, check_changed_at=1_750_000_002.0)

    document = build(worker)

    assert document["ready"] is False
    found = _conditions(document)
    failed_at = "2025-06-15T15:06:41.234Z"
    assert found["Initialized"] == (
        "False",
        "InitializeFailed",
        "builtins.OSError: weights gone",
        failed_at,
    )
    assert found["Ready"] == (
        "False",
        "InitializeFailed",
        "builtins.OSError: weights gone",
        failed_at,
    )


def test_conditions_of_a_failing_check_name_when_it_started_failing() -> None:
    worker = snapshot(check_changed_at=1_750_000_007.0)
    failing = CheckResult(
        CheckStatus.TIMEOUT, None, "health_check() did not answer within 1 s", 1.0
    )

    document = build(worker, failing)

    assert document["status"] == "degraded"
    assert document["ready"] is False
    found = _conditions(document)
    since = "2025-06-15T15:06:47.000Z"
    assert found["Initialized"][0] == "True"
    assert found["HealthCheckPassed"] == (
        "False",
        "CheckTimeout",
        "health_check() did not answer within 1 s",
        since,
    )
    assert found["Ready"] == (
        "False",
        "HealthCheckFailed",
        "health_check() did not answer within 1 s",
        since,
    )


def test_conditions_while_initializing_are_unknown() -> None:
    worker = snapshot(phase=InitPhase.INITIALIZING, init_finished_at=None)

    found = _conditions(build(worker, NOT_CONFIGURED))

    assert found["Initialized"][:2] == ("Unknown", "Initializing")
    assert found["Initialized"][3] == "2025-06-15T15:06:40.000Z"  # since it started
    assert found["HealthCheckPassed"][:2] == ("True", "CheckNotConfigured")
    assert found["Ready"][:2] == ("Unknown", "Initializing")


def test_a_gpu_is_the_last_field_of_worker_and_absent_on_a_cpu() -> None:
    gpu = {"device": "cuda:0", "memory_allocated": 1024, "memory_reserved": 2048}

    on_gpu = build(snapshot(), device="cuda:0", gpu=gpu)["worker"]
    on_cpu = build(snapshot(), gpu=None)["worker"]

    assert list(on_gpu) == ["pid", "started_at", "uptime_s", "device", "mode", "gpu"]
    assert on_gpu["gpu"] == gpu
    assert "gpu" not in on_cpu
