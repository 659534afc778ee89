"""HealthMixin on a torch-free handler: recorded initialization, the hold policy, bad
configuration, super() chains and other bases, the termination log and a broken state dir.
Describe: test_mixin_describe.py; requests and fault knobs: test_mixin_requests.py; metrics:
test_mixin_metrics.py."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip(
    "ts", reason="needs torchserve (the ts package): pip install torchserve==0.12.0"
)

from ts.utils.util import PredictionException

from tests.support.records import record_file_name
from tests.unit.handler.mixin_model import T0_ISO, T1_ISO, Make, Model, record_file
from ts_health_handler import ConfigError, HealthMixin, InferenceError, InitializationError
from ts_health_handler.handler._identity import Identity, current_identity
from ts_health_handler.testing import describe, infer

pytestmark = pytest.mark.usefixtures("no_real_sleep")


# -- recorded initialization ------------------------------------------------------------


def test_successful_initialize_is_recorded(make: Make, health_state_dir: Path) -> None:
    handler, context = make()

    assert handler.initialize(context) == "initialized"

    document = describe(handler, context)
    assert document["status"] == "ready"
    assert document["initialization"] == {
        "phase": "ready",
        "attempt": 1,
        "started_at": T0_ISO,
        "finished_at": T1_ISO,
        "duration_s": 1.5,
        "policy": "raise",
        "error": None,
        "history": {
            "attempts": 1,
            "failures": 0,
            "consecutive_failures": 0,
            "attempts_to_ready": 1,
            "first_failure_at": None,
            "recent_errors": [],
        },
    }
    assert record_file(health_state_dir) == {
        "model_name": "resnet",
        "model_version": "1.0",
        "phase": "ready",
        "attempts": 1,
        "failures": 0,
        "consecutive_failures": 0,
        "attempts_to_ready": 1,
        "first_failure_at": None,
        "last_started_at": T0_ISO,
        "last_finished_at": T1_ISO,
        "last_duration_s": 1.5,
        "last_error": None,
        "recent_errors": [],
        "server": current_identity().server,
        "worker_pid": os.getpid(),
        "updated_at": T1_ISO,
        "workers": [],  # outside a TorchServe worker there is no worker id
        "deaths": [],
        "deaths_total": 0,
        "previous": None,
        "schema_version": 3,
    }
    assert document["state_store"] == {
        "path": str(health_state_dir / "resnet" / "1.0" / record_file_name()),
        "ok": True,
        "error": None,
    }


def test_failing_initialize_raises_initialization_error_with_the_cause(
    make: Make, health_state_dir: Path
) -> None:
    original = OSError("weights missing")
    handler, context = make(fail=original)

    with pytest.raises(InitializationError) as caught:
        handler.initialize(context)

    assert isinstance(caught.value, RuntimeError)
    assert caught.value.__cause__ is original
    assert str(caught.value) == "OSError: weights missing"
    assert caught.value.message == "OSError: weights missing"

    record = record_file(health_state_dir)
    assert record["phase"] == "failed"
    assert (record["attempts"], record["failures"], record["consecutive_failures"]) == (1, 1, 1)
    assert record["attempts_to_ready"] is None
    assert record["first_failure_at"] == T1_ISO
    error = record["last_error"]
    assert (error["type"], error["message"], error["at"], error["attempt"]) == (
        "OSError",
        "weights missing",
        T1_ISO,
        1,
    )
    assert error["traceback"].startswith("Traceback (most recent call last):\n")
    assert "in initialize\n    raise self.fail" in error["traceback"]
    assert error["traceback"].endswith("OSError: weights missing\n")
    assert record["recent_errors"] == [{**error, "traceback": None}]

    document = describe(handler, context)
    assert document["status"] == "failed"
    assert document["initialization"]["phase"] == "failed"
    assert document["initialization"]["error"] == error


def test_long_failure_message_and_traceback_are_bounded(make: Make, health_state_dir: Path) -> None:
    handler, context = make(
        health={"traceback_limit": 120}, fail=ValueError("START" + "x" * 5000 + "END")
    )

    with pytest.raises(InitializationError):
        handler.initialize(context)

    error = record_file(health_state_dir)["last_error"]
    assert len(error["message"]) == 2000
    # Both ends survive: what failed (the start) and where it ended (the end).
    assert error["message"].startswith("STARTxx")
    assert error["message"].endswith("xxEND")
    assert "...[truncated]...\n" in error["message"]
    assert len(error["traceback"]) == 120
    assert error["traceback"].startswith("Traceback (most recent call last)")
    assert "...[truncated]...\n" in error["traceback"]
    assert error["traceback"].endswith("xxxEND\n")


def test_traceback_limit_zero_keeps_no_traceback(make: Make, health_state_dir: Path) -> None:
    handler, context = make(health={"traceback_limit": 0}, fail=ValueError("bad"))

    with pytest.raises(InitializationError):
        handler.initialize(context)

    assert record_file(health_state_dir)["last_error"]["traceback"] is None
    assert describe(handler, context)["initialization"]["error"]["traceback"] is None


def test_user_raised_initialization_error_passes_through_unchanged(make: Make) -> None:
    deliberate = InitializationError("no GPU with 40 GB free")
    handler, context = make(fail=deliberate)

    with pytest.raises(InitializationError) as caught:
        handler.initialize(context)

    assert caught.value is deliberate
    assert caught.value.__cause__ is None
    error = describe(handler, context)["initialization"]["error"]
    assert error["type"].endswith("InitializationError")
    assert error["message"] == "no GPU with 40 GB free"


def test_worker_restarts_are_counted_until_ready(
    make: Make, clock: Any, health_state_dir: Path
) -> None:
    # TorchServe retries a failing initialize() in a fresh worker: a new handler instance.
    first, context = make(fail=OSError("weights not mounted yet"))
    with pytest.raises(InitializationError):
        first.initialize(context)

    clock.advance(10)
    second, context = make(fail=OSError("still not mounted"))
    with pytest.raises(InitializationError):
        second.initialize(context)

    history = describe(second, context)["initialization"]["history"]
    assert describe(second, context)["initialization"]["attempt"] == 2
    assert history["attempts"] == 2
    assert history["failures"] == 2
    assert history["consecutive_failures"] == 2
    assert history["attempts_to_ready"] is None
    assert history["first_failure_at"] == T1_ISO  # from the first worker
    assert [(e["message"], e["attempt"]) for e in history["recent_errors"]] == [
        ("weights not mounted yet", 1),
        ("still not mounted", 2),
    ]

    clock.advance(10)
    third, context = make()
    third.initialize(context)

    document = describe(third, context)
    assert document["status"] == "ready"
    assert document["initialization"]["attempt"] == 3
    assert document["initialization"]["history"] == {
        "attempts": 3,
        "failures": 2,
        "consecutive_failures": 0,
        "attempts_to_ready": 3,
        "first_failure_at": None,
        "recent_errors": history["recent_errors"],
    }
    assert record_file(health_state_dir)["phase"] == "ready"


def test_a_new_torchserve_process_starts_a_fresh_record(
    make: Make, monkeypatch: pytest.MonkeyPatch, health_state_dir: Path
) -> None:
    earlier, context = make(fail=OSError("old session"))
    with pytest.raises(InitializationError):
        earlier.initialize(context)
    assert record_file(health_state_dir)["server"] == current_identity().server

    import ts_health_handler.handler._tracker as tracker_module

    restarted = Identity("999999-1", None, os.getpid())
    monkeypatch.setattr(tracker_module, "current_identity", lambda: restarted)
    handler, context = make()
    handler.initialize(context)

    history = describe(handler, context)["initialization"]["history"]
    assert (history["attempts"], history["failures"], history["recent_errors"]) == (1, 0, [])
    fresh = json.loads((health_state_dir / "resnet" / "1.0" / "init.999999-1.json").read_text())
    assert fresh["server"] == "999999-1"
    # The earlier server's record is kept beside it, untouched: its history, not current.
    assert record_file(health_state_dir)["failures"] == 1


def test_concurrent_worker_initializations_are_all_counted(
    make: Make, health_state_dir: Path
) -> None:
    workers = [make() for _ in range(6)]
    barrier = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def start(handler: Any, context: Any) -> None:
        try:
            barrier.wait(timeout=30)
            handler.initialize(context)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=pair) for pair in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    record = record_file(health_state_dir)
    assert record["attempts"] == 6
    assert record["phase"] == "ready"
    assert sorted(describe(h, c)["initialization"]["attempt"] for h, c in workers) == [
        1,
        2,
        3,
        4,
        5,
        6,
    ]


# -- hold policy --------------------------------------------------------------------------


def test_hold_keeps_the_worker_and_answers_503(make: Make, health_state_dir: Path) -> None:
    handler, context = make(health={"on_init_failure": "hold"}, fail=OSError("weights missing"))

    assert handler.initialize(context) is None  # no raise

    document = describe(handler, context)
    assert document["status"] == "failed"
    assert document["initialization"]["policy"] == "hold"
    assert document["initialization"]["error"]["message"] == "weights missing"
    assert record_file(health_state_dir)["phase"] == "failed"

    with pytest.raises(PredictionException) as caught:
        infer(handler, context, [{"body": 1}, {"body": 2}])

    assert caught.value.error_code == 503
    assert caught.value.message == "model resnet is not initialized (OSError: weights missing)"
    assert isinstance(caught.value.__cause__, InferenceError)
    assert caught.value.__cause__.status_code == 503
    assert getattr(handler, "handle_calls", 0) == 0

    with pytest.raises(PredictionException):
        infer(handler, context, [{"body": 3}])
    requests = describe(handler, context)["requests"]
    assert (requests["total"], requests["failed"]) == (3, 3)
    assert requests["last_request_at"] == T1_ISO


def test_hold_with_injected_failure(make: Make) -> None:
    handler, context = make(
        health={"on_init_failure": "hold", "faults": {"fail_initialize": "weights missing"}}
    )

    handler.initialize(context)

    with pytest.raises(
        PredictionException, match=r"injected by health\.faults\.fail_initialize: weights missing"
    ):
        infer(handler, context, [{"body": 1}])
    assert describe(handler, context)["status"] == "failed"


# -- bad configuration fails initialization, even under hold -------------------------------


@pytest.mark.parametrize(
    ("health", "line"),
    [
        (
            {"on_init_failure": "hold", "check_timeout_s": "soon"},
            "invalid health.check_timeout_s: 'soon'; expected a number from 0.01 to 300",
        ),
        (
            {"on_init_failure": "wait"},
            "invalid health.on_init_failure: 'wait'; expected raise or hold",
        ),
        (
            {"on_init_failure": "hold", "faults": {"fail_inference_status": 200}},
            "invalid health.faults.fail_inference_status: 200; expected an integer from 400 to 599",
        ),
        ("hold", "invalid health: 'hold'; expected a mapping"),
    ],
)
def test_bad_config_fails_initialization_with_the_config_line(
    make: Make, health: Any, line: str, health_state_dir: Path
) -> None:
    handler, context = make(health=health)

    with pytest.raises(InitializationError) as caught:
        handler.initialize(context)

    assert str(caught.value) == f"ConfigError: {line}"
    assert isinstance(caught.value.__cause__, ConfigError)
    assert getattr(handler, "init_calls", 0) == 0  # the model's initialize() never ran
    document = describe(handler, context)
    assert document["status"] == "failed"
    assert document["initialization"]["error"]["message"] == line
    assert document["initialization"]["error"]["type"].endswith("ConfigError")
    assert record_file(health_state_dir)["failures"] == 1


def test_bad_config_still_records_where_asked_and_writes_the_termination_log(
    make: Make, tmp_path: Path, health_state_dir: Path
) -> None:
    configured, log = tmp_path / "configured-state", tmp_path / "termination-log"
    health = {
        "state_dir": str(configured),
        "termination_log": str(log),
        "check_timeout_s": "fast",
    }
    handler, context = make(health=health)

    with pytest.raises(InitializationError):
        handler.initialize(context)

    assert record_file(configured)["failures"] == 1
    assert not (health_state_dir / "resnet").exists()
    assert "invalid health.check_timeout_s: 'fast'" in log.read_text(encoding="utf-8")


# -- super() chains and other bases: wrapped, and counted once ------------------------------


class Base(HealthMixin):
    def initialize(self, context: Any) -> None:
        self.base_init_calls = getattr(self, "base_init_calls", 0) + 1
        if getattr(self, "fail", None) is not None:
            raise self.fail

    def handle(self, data: Any, context: Any) -> Any:
        self.base_handle_calls = getattr(self, "base_handle_calls", 0) + 1
        if data and data[0].get("boom"):
            raise KeyError("boom")
        return [item.get("body") for item in data]


class Child(Base):
    def initialize(self, context: Any) -> None:
        super().initialize(context)
        self.child_init_calls = getattr(self, "child_init_calls", 0) + 1

    def handle(self, data: Any, context: Any) -> Any:
        return [f"child:{x}" for x in super().handle(data, context)]


def test_super_chains_are_recorded_and_counted_once(make: Make, health_state_dir: Path) -> None:
    handler, context = make(Child)

    handler.initialize(context)
    assert infer(handler, context, [{"body": 1}, {"body": 2}]) == ["child:1", "child:2"]
    with pytest.raises(KeyError):
        infer(handler, context, [{"boom": True}])

    assert (handler.base_init_calls, handler.child_init_calls) == (1, 1)
    assert handler.base_handle_calls == 2
    document = describe(handler, context)
    assert document["initialization"]["history"]["attempts"] == 1
    assert record_file(health_state_dir)["attempts"] == 1
    assert document["requests"]["total"] == 3
    assert document["requests"]["failed"] == 1


def test_failure_inside_a_super_initialize_is_wrapped_once(
    make: Make, health_state_dir: Path
) -> None:
    original = OSError("disk")
    handler, context = make(Child, fail=original)

    with pytest.raises(InitializationError) as caught:
        handler.initialize(context)

    assert caught.value.__cause__ is original
    assert record_file(health_state_dir)["failures"] == 1
    assert record_file(health_state_dir)["attempts"] == 1


class Plain:
    """A base handler that is not ours (like ts' BaseHandler)."""

    def initialize(self, context: Any) -> None:
        self.plain_init_calls = getattr(self, "plain_init_calls", 0) + 1

    def handle(self, data: Any, context: Any) -> Any:
        self.plain_handle_calls = getattr(self, "plain_handle_calls", 0) + 1
        return ["plain"] * len(data)


class OnPlain(HealthMixin, Plain):
    pass


class SubOnPlain(OnPlain):
    pass


@pytest.mark.parametrize("cls", [OnPlain, SubOnPlain])
def test_inherited_base_methods_are_wrapped(make: Make, cls: type) -> None:
    handler, context = make(cls)
    handler.initialize(context)

    assert infer(handler, context, [{}, {}]) == ["plain", "plain"]
    document = describe(handler, context)

    assert handler.plain_init_calls == 1
    assert handler.plain_handle_calls == 1  # describe did not reach Plain.handle
    assert document["status"] == "ready"
    assert document["requests"]["total"] == 2


def test_mixin_after_another_base_is_refused() -> None:
    with pytest.raises(TypeError) as caught:

        class Bad(Plain, HealthMixin):
            pass

    message = str(caught.value)
    assert "Bad: HealthMixin must come before Plain in the bases" in message
    assert "e.g. class Bad(HealthMixin, Plain)" in message
    assert "Plain.initialize/handle would bypass it" in message


class OverPlain(HealthMixin, Plain):
    """User methods on a (HealthMixin, Base) class that chain with super()."""

    def initialize(self, context: Any) -> None:
        super().initialize(context)
        self.own_init_calls = getattr(self, "own_init_calls", 0) + 1

    def handle(self, data: Any, context: Any) -> Any:
        return [f"over:{x}" for x in super().handle(data, context)]


def test_super_through_the_mixin_reaches_the_base_once(make: Make, health_state_dir: Path) -> None:
    handler, context = make(OverPlain)
    handler.initialize(context)

    assert infer(handler, context, [{}]) == ["over:plain"]
    assert (handler.plain_init_calls, handler.own_init_calls) == (1, 1)
    assert handler.plain_handle_calls == 1
    assert record_file(health_state_dir)["attempts"] == 1
    assert describe(handler, context)["requests"]["total"] == 1


# -- termination log ---------------------------------------------------------------------------


def test_termination_log_written_on_failure(make: Make, tmp_path: Path) -> None:
    log = tmp_path / "termination-log"
    handler, context = make(health={"termination_log": str(log)}, fail=OSError("weights missing"))

    with pytest.raises(InitializationError):
        handler.initialize(context)

    assert log.read_text(encoding="utf-8") == (
        "model resnet 1.0 failed to initialize (attempt 1): OSError: weights missing"
    )


def test_termination_log_not_written_on_success(make: Make, tmp_path: Path) -> None:
    log = tmp_path / "termination-log"
    handler, context = make(health={"termination_log": str(log)})
    handler.initialize(context)

    assert not log.exists()


def test_termination_log_is_one_line_of_at_most_4096_bytes(make: Make, tmp_path: Path) -> None:
    log = tmp_path / "termination-log"
    message = "first line\n" + "\u20ac" * 1985 + "\nTHE END"  # 3 bytes per euro sign
    handler, context = make(health={"termination_log": str(log)}, fail=ValueError(message))

    with pytest.raises(InitializationError):
        handler.initialize(context)

    data = log.read_bytes()
    text = data.decode("utf-8")
    assert 4090 <= len(data) <= 4096
    assert "\n" not in text
    # Head and tail: what failed first, the error's own end last, the cut in between.
    assert text.startswith("model resnet 1.0 failed to initialize (attempt 1): ValueError: first")
    assert "...[truncated]... " in text
    assert text.endswith("\u20ac\u20ac THE END")


def test_unwritable_termination_log_does_not_crash(make: Make, tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    original = OSError("weights missing")
    handler, context = make(
        health={"termination_log": str(blocker / "log"), "on_init_failure": "hold"}, fail=original
    )

    assert handler.initialize(context) is None

    document = describe(handler, context)
    assert document["status"] == "failed"
    assert document["initialization"]["error"]["message"] == "weights missing"
    assert f"termination_log {blocker / 'log'}" in document["state_store"]["error"]


# -- state directory problems ------------------------------------------------------------------


def test_unwritable_state_dir_still_serves(make: Make, tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    handler, context = make(health={"state_dir": str(blocker / "state")})

    assert handler.initialize(context) == "initialized"
    assert infer(handler, context, [{"body": 1}]) == [{"echo": 1}]

    document = describe(handler, context)
    assert document["status"] == "ready"
    store = document["state_store"]
    assert store["path"] == str(blocker / "state" / "resnet" / "1.0" / record_file_name())
    assert store["ok"] is False
    assert store["error"].startswith("NotADirectoryError: ")
    assert str(blocker) in store["error"]
    assert document["requests"]["total"] == 1


def test_corrupt_record_is_replaced_at_initialize(make: Make, health_state_dir: Path) -> None:
    path = health_state_dir / "resnet" / "1.0" / record_file_name()
    path.parent.mkdir(parents=True)
    path.write_text('{"schema_version": 1, "attem', encoding="utf-8")
    handler, context = make()

    handler.initialize(context)

    document = describe(handler, context)
    assert document["state_store"]["ok"] is True
    assert document["initialization"]["history"]["attempts"] == 1
    assert record_file(health_state_dir)["phase"] == "ready"


@pytest.mark.parametrize(
    ("damage", "error_start"),
    [
        (lambda path: path.write_text('{"phase": "rea', encoding="utf-8"), "RecordError: "),
        (lambda path: path.write_text("[]", encoding="utf-8"), "RecordError: "),
        (lambda path: path.unlink(), "record missing: "),
    ],
    ids=["truncated", "wrong-shape", "deleted"],
)
def test_record_damaged_mid_run_is_reported_and_serving_goes_on(
    make: Make, health_state_dir: Path, damage: Callable[[Path], Any], error_start: str
) -> None:
    handler, context = make()
    handler.initialize(context)
    path = health_state_dir / "resnet" / "1.0" / record_file_name()

    damage(path)

    assert infer(handler, context, [{"body": 2}]) == [{"echo": 2}]
    document = describe(handler, context)
    assert document["status"] == "ready"
    assert document["initialization"]["history"] is None
    assert document["state_store"]["ok"] is False
    assert document["state_store"]["error"].startswith(error_start)
    assert str(path) in document["state_store"]["error"]


def test_history_shows_other_workers_updates(make: Make, health_state_dir: Path) -> None:
    first, context = make()
    first.initialize(context)
    second, second_context = make()
    second.initialize(second_context)

    assert describe(first, context)["initialization"]["history"]["attempts"] == 2


def test_configured_state_dir_wins_over_the_environment(
    make: Make, tmp_path: Path, health_state_dir: Path
) -> None:
    custom = tmp_path / "custom"
    handler, context = make(health={"state_dir": str(custom)})

    handler.initialize(context)

    assert record_file(custom)["phase"] == "ready"
    assert not (health_state_dir / "resnet").exists()


def test_record_lost_during_initialize_continues_from_the_workers_copy(
    make: Make, health_state_dir: Path
) -> None:
    class Wiping(Model):
        def initialize(self, context: Any) -> str:
            (health_state_dir / "resnet" / "1.0" / record_file_name()).write_text("garbage")
            return super().initialize(context)

    handler, context = make(Wiping)
    handler.initialize(context)

    record = record_file(health_state_dir)
    assert (record["phase"], record["attempts"], record["attempts_to_ready"]) == ("ready", 1, 1)
    assert record["last_started_at"] == T0_ISO
