"""``Tracker`` on its own: a fake clock and sleep are injected, a duck-typed context and a
recording metrics cache stand in for TorchServe's; nothing sleeps, no handler is involved."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import traceback
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip(
    "ts", reason="needs torchserve (the ts package): pip install torchserve==0.12.0"
)

from ts.metrics.metric_type_enum import MetricTypes

from tests.support.records import NOW, record_file_name
from ts_health_handler import HealthStatus, InferenceError, InitializationError, InitPhase
from ts_health_handler._lifecycle import ServingMode
from ts_health_handler.handler import _canary as canary_module
from ts_health_handler.handler._context import model_identity
from ts_health_handler.handler._describe import RESULT_LIMIT
from ts_health_handler.handler._identity import current_identity
from ts_health_handler.handler._termination import TERMINATION_LIMIT
from ts_health_handler.handler._tracker import Tracker, qualified_name
from ts_health_handler.record import MESSAGE_LIMIT, InitRecord, StateStore, utc_iso

#: Where the ``clock`` fixture starts (tests/unit/conftest.py): 2025-06-15T15:06:40.000Z.
EPOCH = 1_750_000_000.0
T0 = utc_iso(EPOCH)


#: The state gauge's dimensions, in metrics.yaml's order; outside a TorchServe worker the
#: worker id is unknown.
WORKER_DIMENSIONS = [("ModelName", "bert"), ("Level", "Model"), ("WorkerId", "unknown")]


class Metrics:
    """Records what ``add_metric`` was given, as TorchServe's metrics cache would get it."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def add_metric(self, *args: Any) -> None:
        name, value, unit, idx, dimensions, kind = args
        self.calls.append((name, value, unit, idx, [(d.name, d.value) for d in dimensions], kind))


def context(health: Any = None, *, name: str = "bert", version: str = "2.0") -> Any:
    return SimpleNamespace(
        model_name=name,
        manifest={"model": {"modelName": name, "modelVersion": version}},
        model_yaml_config={} if health is None else {"health": health},
        metrics=Metrics(),
    )


@pytest.fixture
def tracker(clock: Any, sleep: Any, health_state_dir: Path) -> Tracker:
    return Tracker(clock, sleep)


def record(state_dir: Path, name: str = "bert", version: str = "2.0") -> dict[str, Any]:
    return json.loads((state_dir / name / version / record_file_name()).read_text(encoding="utf-8"))


def loading(clock: Any, seconds: float, result: Any = "loaded") -> Any:
    def call() -> Any:
        clock.advance(seconds)
        return result

    return call


def failing(clock: Any, seconds: float, exc: BaseException) -> Any:
    def call() -> Any:
        clock.advance(seconds)
        raise exc

    return call


# -- before any initialize() ------------------------------------------------------------


def test_a_new_tracker_knows_only_when_it_started(clock: Any, sleep: Any) -> None:
    clock.advance(2.5)
    tracker = Tracker(clock, sleep)
    clock.advance(1)

    snapshot = tracker.snapshot()

    assert snapshot.started == EPOCH + 2.5
    assert (snapshot.model_name, snapshot.model_version) == ("unknown", "unknown")
    assert snapshot.phase is InitPhase.INITIALIZING
    assert (snapshot.attempt, snapshot.init_started_at, snapshot.init_finished_at) == (
        None,
        None,
        None,
    )
    assert (snapshot.requests_total, snapshot.requests_failed, snapshot.last_request_at) == (
        0,
        0,
        None,
    )
    assert (snapshot.in_flight, snapshot.open_requests, snapshot.mode) == (
        0,
        None,
        ServingMode.DEFAULT,
    )
    assert snapshot.error is None
    assert snapshot.store_path is None
    assert (tracker.requests.gated, tracker.requests.calls, tracker.in_initialize) == (
        False,
        {},
        False,
    )
    assert "unknown unknown initializing attempt=None requests=0/0" in repr(tracker)


# -- initialization --------------------------------------------------------------------


def test_success_is_timed_by_the_injected_clock_and_persisted(
    tracker: Tracker, clock: Any, health_state_dir: Path
) -> None:
    ctx = context()

    assert tracker.initialize(ctx, loading(clock, 0.25)) == "loaded"

    snapshot = tracker.snapshot()
    assert snapshot.phase is InitPhase.READY
    assert (snapshot.init_started_at, snapshot.init_finished_at) == (EPOCH, EPOCH + 0.25)
    assert snapshot.attempt == 1
    assert snapshot.store_path == str(health_state_dir / "bert" / "2.0" / record_file_name())
    assert tracker.requests.gated is False
    assert tracker.in_initialize is False
    stored = record(health_state_dir)
    assert (stored["phase"], stored["attempts"], stored["last_duration_s"]) == ("ready", 1, 0.25)
    assert (stored["last_started_at"], stored["worker_pid"]) == (T0, os.getpid())
    assert ctx.metrics.calls == [
        ("ts_health_init_duration_seconds", 0.25, "Seconds", None, [], MetricTypes.GAUGE),
        ("ts_health_worker_state", 0, "State", None, WORKER_DIMENSIONS, MetricTypes.GAUGE),
    ]


def test_failure_under_raise_is_recorded_then_raised(
    tracker: Tracker, clock: Any, health_state_dir: Path
) -> None:
    original = OSError("weights\nmissing")
    ctx = context({"traceback_limit": 0})

    with pytest.raises(InitializationError) as caught:
        tracker.initialize(ctx, failing(clock, 0.5, original))

    assert caught.value.__cause__ is original
    assert str(caught.value) == "OSError: weights\nmissing"
    snapshot = tracker.snapshot()
    assert snapshot.phase is InitPhase.FAILED
    assert snapshot.init_finished_at == EPOCH + 0.5
    assert snapshot.error is not None
    assert snapshot.error.to_json() == {
        "type": "OSError",
        "message": "weights\nmissing",
        "at": utc_iso(EPOCH + 0.5),
        "attempt": 1,
        "traceback": None,
    }
    assert tracker.requests.gated is True
    assert tracker.in_initialize is False
    assert record(health_state_dir)["last_error"] == snapshot.error.to_json()
    assert ctx.metrics.calls == [
        ("ts_health_init_failures_total", 1, "Count", None, [], MetricTypes.COUNTER),
        ("ts_health_worker_state", 2, "State", None, WORKER_DIMENSIONS, MetricTypes.GAUGE),
    ]


def test_failure_message_is_cut_to_the_record_limit(tracker: Tracker, clock: Any) -> None:
    with pytest.raises(InitializationError):
        tracker.initialize(context(), failing(clock, 0, ValueError("x" * MESSAGE_LIMIT + "END")))

    error = tracker.snapshot().error
    assert error is not None
    assert len(error.message) == MESSAGE_LIMIT
    assert error.message.endswith("xxEND")
    assert error.type == "ValueError"


def test_hold_keeps_the_failure_and_the_gate_refuses(tracker: Tracker, clock: Any) -> None:
    ctx = context({"on_init_failure": "hold"})

    assert tracker.initialize(ctx, failing(clock, 0, KeyError("w"))) is None

    assert tracker.requests.gated is True
    with pytest.raises(InferenceError) as caught:
        tracker.gate()
    assert caught.value.status_code == 503
    assert str(caught.value) == "model bert is not initialized (KeyError: 'w')"


def test_invalid_config_fails_even_under_hold(tracker: Tracker, clock: Any) -> None:
    calls: list[str] = []

    with pytest.raises(InitializationError, match=r"^ConfigError: invalid health\.check_timeout"):
        tracker.initialize(
            context({"on_init_failure": "hold", "check_timeout_s": "x"}),
            lambda: calls.append("user"),
        )

    assert calls == []  # the user's initialize() never ran


def test_initialize_delay_goes_through_the_injected_sleep(
    tracker: Tracker, clock: Any, sleep: Any
) -> None:
    tracker.initialize(context({"faults": {"initialize_delay_s": 3}}), loading(clock, 1))

    assert sleep.calls == [3.0]
    snapshot = tracker.snapshot()
    assert (snapshot.init_started_at, snapshot.init_finished_at) == (EPOCH, EPOCH + 4)


def test_a_second_initialize_starts_afresh(tracker: Tracker, clock: Any) -> None:
    with pytest.raises(InitializationError):
        tracker.initialize(context(), failing(clock, 1, OSError("first")))
    clock.advance(10)

    tracker.initialize(context(), loading(clock, 1))

    snapshot = tracker.snapshot()
    assert (snapshot.phase, snapshot.error, snapshot.attempt) == (InitPhase.READY, None, 2)
    assert snapshot.init_started_at == EPOCH + 11
    assert tracker.requests.gated is False


@pytest.mark.parametrize(
    ("faults", "gated"),
    [
        ({}, False),
        ({"inference_delay_s": 0.5}, True),
        ({"fail_inference": "down"}, True),
        ({"fail_initialize": None, "initialize_delay_s": 1}, False),
    ],
)
def test_only_inference_faults_gate_a_ready_worker(
    tracker: Tracker, clock: Any, faults: dict[str, Any], gated: bool
) -> None:
    tracker.initialize(context({"faults": faults}), loading(clock, 0))

    assert tracker.requests.gated is gated


def test_gate_applies_the_inference_faults(tracker: Tracker, clock: Any, sleep: Any) -> None:
    faults = {"inference_delay_s": 0.75, "fail_inference": "down", "fail_inference_status": 429}
    tracker.initialize(context({"faults": faults}), loading(clock, 0))

    assert tracker.gate() == 0.75  # the wrapper waits, as its mode allows
    with pytest.raises(InferenceError) as caught:
        tracker.inject()

    assert sleep.calls == []
    assert (str(caught.value), caught.value.status_code) == (
        "injected by health.faults.fail_inference: down",
        429,
    )


# -- the termination log ------------------------------------------------------------------


def test_termination_log_is_one_line_with_its_head_and_the_error_at_the_end(
    tracker: Tracker, clock: Any, tmp_path: Path
) -> None:
    log = tmp_path / "termination-log"
    message = "start\n" + "\u20ac" * 1985 + "\nb  c\nEND"  # 3 bytes per euro sign

    with pytest.raises(InitializationError):
        tracker.initialize(
            context({"termination_log": str(log)}), failing(clock, 0, ValueError(message))
        )

    text = log.read_text(encoding="utf-8")
    # The byte budget cuts between characters (at the head's end and the tail's start, each
    # dropping at most 2 bytes of a split euro sign); no euro sign is ever split.
    assert TERMINATION_LIMIT - 4 <= len(text.encode("utf-8")) <= TERMINATION_LIMIT
    assert text.startswith(
        "model bert 2.0 failed to initialize (attempt 1): ValueError: start \u20ac"
    )
    assert "...[truncated]... " in text
    assert text.endswith("\u20ac b  c END")  # newlines become spaces; other spacing is kept


def test_termination_log_of_exactly_the_limit_is_kept_whole(
    tracker: Tracker, clock: Any, tmp_path: Path
) -> None:
    log = tmp_path / "termination-log"
    prefix = "model bert 2.0 failed to initialize (attempt 1): ValueError: "
    room = TERMINATION_LIMIT - len(prefix)
    message = "z" * (room % 3) + "\u20ac" * (room // 3)
    assert len(message) <= MESSAGE_LIMIT

    with pytest.raises(InitializationError):
        tracker.initialize(
            context({"termination_log": str(log)}), failing(clock, 0, ValueError(message))
        )

    assert log.read_text(encoding="utf-8") == prefix + message
    assert len(log.read_bytes()) == TERMINATION_LIMIT


# -- describe --------------------------------------------------------------------------


def test_status_reads_the_record_once_and_reports_the_state_once(
    tracker: Tracker, clock: Any, health_state_dir: Path, mocker: Any
) -> None:
    ctx = context()
    tracker.initialize(ctx, loading(clock, 0.5))
    clock.advance(9.5)
    requests = tracker.requests
    requests.total, requests.failed, requests.last_started = 4, 1, EPOCH + 2
    reads = mocker.spy(StateStore, "read")
    answers = iter([True, {"healthy": False}])

    first = tracker.status(lambda: next(answers), "cpu")
    second = tracker.status(lambda: True, "cpu")

    assert reads.call_count == 2
    assert (first["status"], second["status"]) == ("ready", "degraded")
    assert first["worker"] == {
        "pid": os.getpid(),
        "started_at": T0,
        "uptime_s": 10.0,
        "device": "cpu",
        "mode": "default",
    }
    assert first["requests"] == {
        "total": 4,
        "failed": 1,
        "in_flight": 0,
        "open": None,
        "last_request_at": utc_iso(EPOCH + 2),
        "consecutive_failures": 0,  # counters set by hand: no failure went through handle()
        "last_error": None,
        "fatal": None,
    }
    assert first["initialization"]["history"]["attempts"] == 1
    assert first["state_store"]["ok"] is True
    assert [c[:2] for c in ctx.metrics.calls if c[0] == "ts_health_worker_state"] == [
        ("ts_health_worker_state", 0),
        ("ts_health_worker_state", 1),
    ]


def test_status_without_a_check_is_not_configured(tracker: Tracker) -> None:
    document = tracker.status(None, None)

    assert document["status"] == HealthStatus.FAILED.value  # never initialized
    assert document["check"]["status"] == "not_configured"
    assert document["state_store"] == {"path": None, "ok": False, "error": None}


def test_status_reports_a_vanished_record(
    tracker: Tracker, clock: Any, health_state_dir: Path
) -> None:
    tracker.initialize(context(), loading(clock, 0))
    path = health_state_dir / "bert" / "2.0" / record_file_name()
    path.unlink()

    document = tracker.status(None, None)

    assert document["initialization"]["history"] is None
    assert document["state_store"] == {
        "path": str(path),
        "ok": False,
        "error": f"record missing: {path}",
    }


def test_check_runs_on_the_injected_clock(tracker: Tracker, clock: Any) -> None:
    tracker.initialize(context(), loading(clock, 0))

    def check() -> dict[str, Any]:
        clock.advance(0.125)
        return {"blob": "b" * RESULT_LIMIT}

    result = tracker.status(check, None)["check"]

    assert result["duration_s"] == 0.125
    assert len(result["result"]) == RESULT_LIMIT


# -- helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ctx", "identity"),
    [
        (SimpleNamespace(model_name="m", manifest={"model": {"modelVersion": 3}}), ("m", "3")),
        (
            SimpleNamespace(model_name=None, manifest={"model": {"modelName": "n"}}),
            ("n", "unknown"),
        ),
        (SimpleNamespace(model_name="", manifest={"model": []}), ("unknown", "unknown")),
        (None, ("unknown", "unknown")),
    ],
)
def test_model_identity(ctx: Any, identity: tuple[str, str]) -> None:
    assert model_identity(ctx) == identity


class Outer:
    class Inner(Exception):
        pass


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        (OSError, "OSError"),
        (InitializationError, "ts_health_handler.InitializationError"),
        (Outer.Inner, f"{__name__}.Outer.Inner"),
    ],
)
def test_qualified_name(kind: type, name: str) -> None:
    assert qualified_name(kind) == name


# -- the record as other workers and a broken state dir leave it ----------------------------


def test_while_the_user_initializes_the_record_names_this_worker(
    tracker: Tracker, health_state_dir: Path
) -> None:
    seen: list[dict[str, Any]] = []

    tracker.initialize(context(), lambda: seen.append(record(health_state_dir)))

    [during] = seen
    assert (during["phase"], during["worker_pid"], during["server"]) == (
        "initializing",
        os.getpid(),
        current_identity().server,
    )


def test_an_attempt_left_by_a_dead_worker_is_counted_as_a_failure(
    tracker: Tracker, clock: Any, health_state_dir: Path
) -> None:
    dead = subprocess.Popen([sys.executable, "-c", ""])
    dead.wait()
    store = StateStore(health_state_dir, "bert", "2.0", current_identity().server)
    store.update(
        lambda previous: InitRecord.started(
            previous, model_name="bert", model_version="2.0", now=EPOCH - 60,
            worker_pid=dead.pid, server=current_identity().server,
        )
    )  # fmt: skip

    tracker.initialize(context(), loading(clock, 1))

    stored = record(health_state_dir)
    assert (stored["attempts"], stored["failures"], stored["attempts_to_ready"]) == (2, 1, 2)
    assert stored["recent_errors"][0]["type"] == "WorkerDied"


@pytest.mark.parametrize("fails", [False, True], ids=["success", "failure"])
def test_an_outcome_is_applied_to_the_record_as_other_workers_left_it(
    tracker: Tracker, clock: Any, health_state_dir: Path, fails: bool
) -> None:
    def another_worker_starts() -> None:
        StateStore(health_state_dir, "bert", "2.0", current_identity().server).update(
            lambda previous: InitRecord.started(
                previous, model_name="bert", model_version="2.0", now=EPOCH,
                worker_pid=os.getpid() + 1, server=current_identity().server,
            )
        )  # fmt: skip
        clock.advance(0.5)
        if fails:
            raise OSError("no")

    with contextlib.suppress(InitializationError):
        tracker.initialize(context(), another_worker_starts)

    stored = record(health_state_dir)
    assert stored["attempts"] == 2
    assert stored["phase"] == ("failed" if fails else "ready")
    assert stored["last_duration_s"] == 0.5
    assert stored["worker_pid"] == os.getpid()


def test_a_broken_state_dir_keeps_this_workers_own_history(
    tracker: Tracker, clock: Any, tmp_path: Path
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    ctx = context({"state_dir": str(blocker / "state")})

    with pytest.raises(InitializationError):
        tracker.initialize(ctx, failing(clock, 1, OSError("first")))
    tracker.initialize(ctx, loading(clock, 1))
    document = tracker.status(None, None)

    assert document["initialization"]["attempt"] == 2
    assert document["initialization"]["history"]["attempts"] == 2
    assert document["initialization"]["history"]["failures"] == 1
    assert document["state_store"]["ok"] is False
    assert document["state_store"]["error"].startswith("NotADirectoryError: ")


def test_the_traceback_is_the_whole_formatted_exception(tracker: Tracker, clock: Any) -> None:
    original = ValueError("deep")

    with pytest.raises(InitializationError):
        tracker.initialize(context(), failing(clock, 0, original))

    error = tracker.snapshot().error
    assert error is not None
    assert error.traceback == "".join(
        traceback.format_exception(type(original), original, original.__traceback__)
    )


@pytest.mark.parametrize(
    ("raised", "kind", "message"),
    [
        (SystemExit("weights server said no"), "SystemExit", "weights server said no"),
        (SystemExit(3), "SystemExit", "3"),
        (KeyboardInterrupt(), "KeyboardInterrupt", ""),
        (GeneratorExit("closed"), "GeneratorExit", "closed"),
    ],
)
def test_a_base_exception_in_initialize_is_recorded_as_the_cause_then_raised(
    tracker: Tracker,
    clock: Any,
    health_state_dir: Path,
    raised: BaseException,
    kind: str,
    message: str,
) -> None:
    with pytest.raises(type(raised)) as caught:
        tracker.initialize(context(), failing(clock, 0.5, raised))

    assert caught.value is raised  # propagated unchanged: the worker is ending
    stored = record(health_state_dir)
    assert (stored["phase"], stored["failures"]) == ("failed", 1)
    assert (stored["last_error"]["type"], stored["last_error"]["message"]) == (kind, message)
    assert tracker.snapshot().phase is InitPhase.FAILED


# -- the device -----------------------------------------------------------------------------


def test_the_document_names_the_gpus_memory_and_nothing_on_a_cpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ts_health_handler._document import parse_status

    figures = {"device": "cuda:0", "memory_allocated": 5, "memory_reserved": 8,
               "max_memory_allocated": 6}  # fmt: skip
    asked: list[str] = []
    monkeypatch.setattr(
        canary_module, "device_info", lambda device: asked.append(device) or figures
    )
    tracker = Tracker(clock=lambda: NOW, sleep=lambda s: None)
    on_gpu = tracker.status(None, "cuda:0")
    assert on_gpu["worker"]["gpu"] == figures
    assert parse_status(json.loads(json.dumps(on_gpu)))["worker"]["gpu"] == figures
    on_cpu = tracker.status(None, "cpu")
    assert "gpu" not in on_cpu["worker"]
    assert asked == ["cuda:0"]  # a CPU never asks torch
