"""HealthMixin on a torch-free handler: recorded initialization, policies, describe, the status
document, controlled failures, fault knobs, the termination log and a broken state dir."""

from __future__ import annotations

import json
import os
import platform
import threading
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest

pytest.importorskip(
    "ts", reason="needs torchserve (the ts package): pip install torchserve==0.12.0"
)

from ts.metrics.metric_type_enum import MetricTypes
from ts.utils.util import PredictionException

from ts_health_handler import (
    ConfigError,
    HealthMixin,
    InferenceError,
    InitializationError,
    __version__,
)
from ts_health_handler._document import parse_status
from ts_health_handler.handler._identity import Identity, current_identity
from ts_health_handler.testing import describe, infer, set_requests

#: The record file this process writes: one per server (see _identity).
RECORD_FILE = f"init.{current_identity().server}.json"

pytestmark = pytest.mark.usefixtures("no_real_sleep")

T0_ISO = "2025-06-15T15:06:40.000Z"
T1_ISO = "2025-06-15T15:06:41.500Z"  # T0 + the 1.5 s every Model.initialize() takes


class Model(HealthMixin):
    """A torch-free model. ``fail`` makes initialize() raise; a request body of
    ``{"raise": exc}`` makes handle() raise ``exc``."""

    fail: BaseException | None = None
    init_seconds = 1.5

    def initialize(self, context: Any) -> str:
        self.init_calls = getattr(self, "init_calls", 0) + 1
        self.health_clock.advance(self.init_seconds)
        if self.fail is not None:
            raise self.fail
        return "initialized"

    def handle(self, data: Any, context: Any) -> Any:
        self.handle_calls = getattr(self, "handle_calls", 0) + 1
        for item in data:
            if "raise" in item:
                raise item["raise"]
        return [{"echo": item.get("body")} for item in data]


Make = Callable[..., tuple[Any, Any]]


@pytest.fixture
def make(ts_context: Any, fake_time: Any) -> Make:
    """Build a handler (fake clock and sleep installed) and its context; don't initialize."""

    def build(
        cls: type = Model,
        health: Any = None,
        *,
        fail: BaseException | None = None,
        name: str = "resnet",
        **context_kwargs: Any,
    ) -> tuple[Any, Any]:
        handler = fake_time(cls())
        if fail is not None:
            handler.fail = fail
        yaml = {} if health is None else {"health": health}
        return handler, ts_context(name, model_yaml_config=yaml, **context_kwargs)

    return build


def record_file(state_dir: Path, name: str = "resnet", version: str = "1.0") -> dict[str, Any]:
    return json.loads((state_dir / name / version / RECORD_FILE).read_text(encoding="utf-8"))


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
        "path": str(health_state_dir / "resnet" / "1.0" / RECORD_FILE),
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


# -- describe always answers -------------------------------------------------------------


def test_describe_is_answered_even_though_handle_is_overridden(make: Make) -> None:
    handler, context = make()
    handler.initialize(context)

    assert infer(handler, context, [{"body": "a"}]) == [{"echo": "a"}]
    document = describe(handler, context)

    assert isinstance(document, dict)
    assert document["status"] == "ready"
    assert handler.handle_calls == 1  # only the inference reached the user's handle()
    assert document["requests"]["total"] == 1  # describe is not a request


def test_describe_batch_gets_one_document_per_request(make: Make) -> None:
    handler, context = make()
    handler.initialize(context)
    set_requests(context, [{"describe": "True"}, {}, {}])

    answers = handler.handle([{}, {}, {}], context)

    assert len(answers) == 3
    assert all(a["status"] == "ready" for a in answers)


def test_describe_header_must_be_exactly_true(make: Make) -> None:
    handler, context = make()
    handler.initialize(context)
    set_requests(context, [{"describe": "true"}])

    assert handler.handle([{"body": 1}], context) == [{"echo": 1}]


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


def test_mixin_alone_has_no_handle_but_answers_describe(make: Make) -> None:
    class OnlyInit(HealthMixin):
        pass

    handler, context = make(OnlyInit)
    assert handler.initialize(context) is None  # HealthMixin.initialize: nothing to chain to

    assert describe(handler, context)["status"] == "ready"
    with pytest.raises(NotImplementedError, match=r"OnlyInit has no handle\(\)"):
        infer(handler, context, [{}])
    requests = describe(handler, context)["requests"]
    assert requests["last_error"]["type"] == "NotImplementedError"
    assert requests == {
        "total": 1,
        "failed": 1,
        "last_request_at": T0_ISO,
        "consecutive_failures": 1,
        "last_error": requests["last_error"],
        "fatal": None,
    }


def test_status_before_initialize(fake_time: Any) -> None:
    handler = fake_time(Model())

    document = handler.health_status()

    assert document["status"] == "failed"
    assert document["model"] == {"name": "unknown", "version": "unknown"}
    assert document["initialization"]["phase"] == "initializing"
    assert document["initialization"]["attempt"] is None
    assert document["initialization"]["history"] is None
    assert document["state_store"] == {"path": None, "ok": False, "error": None}
    assert document["worker"]["device"] is None


def test_duck_typed_context_identity(fake_time: Any, health_state_dir: Path) -> None:
    handler = fake_time(Model())
    context = SimpleNamespace(
        model_name=None, manifest={"model": {"modelName": "m2", "modelVersion": 3}}
    )

    handler.initialize(context)
    # no get_request_header(): never a describe request
    assert handler.handle([{"body": 5}], context) == [{"echo": 5}]

    assert handler.health_status()["model"] == {"name": "m2", "version": "3"}
    assert (health_state_dir / "m2" / "3" / RECORD_FILE).is_file()


class HeaderContext:
    """A context that is not ts' own: only the public get_request_header()."""

    model_name = "duck"

    def __init__(self, describe: str | None) -> None:
        self.describe = describe

    def get_request_header(self, idx: int, key: str) -> str | None:
        return self.describe if (idx, key) == (0, "describe") else None


def test_describe_through_a_context_with_only_the_public_header_method(
    fake_time: Any, health_state_dir: Path
) -> None:
    handler = fake_time(Model())
    handler.initialize(HeaderContext(None))

    assert handler.handle([{"body": 1}], HeaderContext(None)) == [{"echo": 1}]
    assert handler.handle([{"body": 2}], HeaderContext("true")) == [{"echo": 2}]
    [document] = handler.handle([{}], HeaderContext("True"))

    assert document["model"]["name"] == "duck"
    assert document["requests"]["total"] == 2


def test_a_clock_replaced_after_first_use_is_seen(make: Make, clock: Any) -> None:
    handler, context = make()
    handler.initialize(context)
    later = type(clock)(clock.now + 3600)
    handler.health_clock = later

    infer(handler, context, [{"body": 1}])
    document = describe(handler, context)

    assert document["requests"]["last_request_at"] == "2025-06-15T16:06:41.500Z"
    assert document["worker"]["uptime_s"] == 3601.5


def test_manifest_without_version_is_unknown(make: Make) -> None:
    handler, context = make(manifest={"model": {"modelName": "resnet"}})
    handler.initialize(context)

    assert describe(handler, context)["model"] == {"name": "resnet", "version": "unknown"}


# -- the status document -----------------------------------------------------------------

FIELDS = [
    "status",
    "schema_version",
    "ready",
    "conditions",
    "model",
    "worker",
    "initialization",
    "requests",
    "check",
    "state_store",
    "faults",
    "versions",
]


def test_status_document_fields_order_and_values(make: Make, clock: Any) -> None:
    handler, context = make()
    handler.initialize(context)
    clock.advance(30)

    document = describe(handler, context)

    assert list(document) == FIELDS
    assert document["schema_version"] == 1
    assert document["ready"] is True
    now = "2025-06-15T15:07:11.500Z"  # T1 + 30 s: the first check run, at this describe
    assert [
        (c["type"], c["status"], c["reason"], c["lastTransitionTime"])
        for c in document["conditions"]
    ] == [
        ("Initialized", "True", "InitializeSucceeded", T1_ISO),
        ("HealthCheckPassed", "True", "CheckNotConfigured", now),
        ("Ready", "True", "Ready", now),
    ]
    assert document["model"] == {"name": "resnet", "version": "1.0"}
    assert document["worker"] == {
        "pid": os.getpid(),
        "started_at": T0_ISO,
        "uptime_s": 31.5,
        "device": "cpu",
    }
    assert list(document["initialization"]) == [
        "phase",
        "attempt",
        "started_at",
        "finished_at",
        "duration_s",
        "policy",
        "error",
        "history",
    ]
    assert document["requests"] == {
        "total": 0,
        "failed": 0,
        "last_request_at": None,
        "consecutive_failures": 0,
        "last_error": None,
        "fatal": None,
    }
    assert "heartbeat" not in document  # outside TorchServe: no worker id, no watchdog
    assert document["faults"] == {}
    assert document["versions"] == {
        "ts_health_handler": __version__,
        "torchserve": "0.12.0",
        "torch": document["versions"]["torch"],
        "python": platform.python_version(),
    }
    assert json.loads(json.dumps(document, allow_nan=False)) == document


@pytest.mark.parametrize(("gpu_id", "device"), [(None, "cpu"), (0, "gpu:0"), (3, "gpu:3")])
def test_device_from_context(make: Make, gpu_id: int | None, device: str) -> None:
    handler, context = make(gpu_id=gpu_id)
    handler.initialize(context)

    assert describe(handler, context)["worker"]["device"] == device


def test_device_set_by_the_handler_wins(make: Make) -> None:
    handler, context = make(gpu_id=0)
    handler.initialize(context)
    handler.device = "cuda:1"

    assert describe(handler, context)["worker"]["device"] == "cuda:1"


@pytest.fixture(scope="module")
def status_validator() -> Any:
    schema = json.loads(
        files("ts_health_handler").joinpath("schema/status.v1.json").read_text(encoding="utf-8")
    )
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


class RaisingCheck(Model):
    def health_check(self) -> Any:
        raise RuntimeError("probe failed")


class ObjectCheck(Model):
    def health_check(self) -> Any:
        return {"handle": object(), "healthy": False}


def _documents(make: Make, tmp_path: Path) -> dict[str, dict[str, Any]]:
    documents: dict[str, dict[str, Any]] = {}
    handler, context = make()
    documents["before-initialize"] = handler.health_status()
    handler.initialize(context)
    infer(handler, context, [{"body": 1}])
    documents["ready"] = describe(handler, context)

    held, context = make(health={"on_init_failure": "hold"}, fail=OSError("weights missing"))
    held.initialize(context)
    documents["held-failure"] = describe(held, context)

    raising, context = make(RaisingCheck)
    raising.initialize(context)
    documents["check-raises"] = describe(raising, context)

    odd, context = make(ObjectCheck)
    odd.initialize(context)
    documents["check-odd-result"] = describe(odd, context)

    blocker = tmp_path / "blocker"
    blocker.write_text("")
    broken, context = make(
        health={"state_dir": str(blocker / "s"), "faults": {"fail_inference": "down"}}
    )
    broken.initialize(context)
    documents["store-error-and-faults"] = describe(broken, context)
    return documents


def test_every_kind_of_document_matches_the_schema(
    make: Make, tmp_path: Path, status_validator: Any
) -> None:
    documents = _documents(make, tmp_path)

    assert {name: d["status"] for name, d in documents.items()} == {
        "before-initialize": "failed",
        "ready": "ready",
        "held-failure": "failed",
        "check-raises": "degraded",
        "check-odd-result": "degraded",
        "store-error-and-faults": "ready",
    }
    for name, document in documents.items():
        errors = [e.message for e in status_validator.iter_errors(document)]
        assert errors == [], name
        assert list(document) == FIELDS, name
        json.dumps(document, allow_nan=False)
        # What the monitor reads back: as sent, and as TorchServe 0.12 hands it on (nulls
        # dropped), both are documents to the one check of the monitor.
        sent = json.loads(json.dumps(document))
        assert parse_status(sent) == document, name
        dropped = _without_nulls(sent)
        assert status_validator.is_valid(dropped), name
        assert parse_status(dropped) == dropped, name


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def test_schema_rejects_a_wrong_document(make: Make, status_validator: Any) -> None:
    handler, context = make()
    handler.initialize(context)
    document = describe(handler, context)

    assert status_validator.is_valid(document)
    assert not status_validator.is_valid({**document, "status": "fine"})
    assert not status_validator.is_valid({k: v for k, v in document.items() if k != "check"})


def test_no_environment_values_in_the_document(
    make: Make, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TS_HEALTH_TEST_SECRET", "s3cr3t-token")

    for name, document in _documents(make, tmp_path).items():
        text = json.dumps(document)
        assert "s3cr3t-token" not in text, name
        assert "TS_HEALTH_TEST_SECRET" not in text, name


# -- requests, controlled failures -----------------------------------------------------------


def test_requests_are_counted(make: Make, clock: Any) -> None:
    handler, context = make()
    handler.initialize(context)

    clock.advance(5)
    infer(handler, context, [{"body": 1}, {"body": 2}])
    clock.advance(5)
    with pytest.raises(ZeroDivisionError):  # anything else passes through unchanged
        infer(handler, context, [{"raise": ZeroDivisionError("x")}])

    assert describe(handler, context)["requests"] == {
        "total": 3,
        "failed": 1,
        "last_request_at": "2025-06-15T15:06:51.500Z",
        "consecutive_failures": 1,
        "last_error": {
            "type": "ZeroDivisionError",
            "message": "x",
            "at": "2025-06-15T15:06:51.500Z",
            "attempt": 3,
            "traceback": None,
        },
        "fatal": None,
    }


@pytest.mark.parametrize("code", [400, 429, 503, 599])
def test_inference_error_becomes_prediction_exception(make: Make, code: int) -> None:
    handler, context = make()
    handler.initialize(context)

    with pytest.raises(PredictionException) as caught:
        infer(handler, context, [{"raise": InferenceError("input too long", code)}])

    assert (caught.value.message, caught.value.error_code) == ("input too long", code)
    assert str(caught.value) == f"input too long : {code}"
    assert describe(handler, context)["requests"]["failed"] == 1


def test_inference_error_defaults_to_500() -> None:
    error = InferenceError("broken")

    assert (error.message, error.status_code, str(error)) == ("broken", 500, "broken")


@pytest.mark.parametrize("code", [399, 600, 200, True, "500", 500.0, None])
def test_inference_error_rejects_bad_status_codes(code: Any) -> None:
    with pytest.raises(ValueError, match=r"^invalid status_code: ") as caught:
        InferenceError("x", code)

    assert str(caught.value) == f"invalid status_code: {code!r}; expected an int from 400 to 599"


# -- fault knobs ------------------------------------------------------------------------------


def test_fail_initialize_fault(make: Make) -> None:
    handler, context = make(health={"faults": {"fail_initialize": "weights missing"}})

    with pytest.raises(InitializationError) as caught:
        handler.initialize(context)

    assert str(caught.value) == "injected by health.faults.fail_initialize: weights missing"
    assert getattr(handler, "init_calls", 0) == 0
    document = describe(handler, context)
    assert document["faults"] == {"fail_initialize": "weights missing"}
    assert document["initialization"]["error"]["message"] == str(caught.value)


def test_initialize_delay_uses_health_sleep(make: Make, sleep: Any) -> None:
    handler, context = make(health={"faults": {"initialize_delay_s": 2.5}})

    handler.initialize(context)

    assert sleep.calls == [2.5]
    document = describe(handler, context)
    assert document["initialization"]["duration_s"] == 4.0  # delay + the model's 1.5 s
    assert document["faults"] == {"initialize_delay_s": 2.5}
    assert document["status"] == "ready"


def test_inference_delay_uses_health_sleep_per_request_batch(make: Make, sleep: Any) -> None:
    handler, context = make(health={"faults": {"inference_delay_s": 0.75}})
    handler.initialize(context)

    infer(handler, context, [{"body": 1}, {"body": 2}])
    describe(handler, context)
    infer(handler, context, [{"body": 3}])

    assert sleep.calls == [0.75, 0.75]  # not on describe


def test_no_faults_no_sleep(make: Make, sleep: Any) -> None:
    handler, context = make()
    handler.initialize(context)
    infer(handler, context, [{"body": 1}])

    assert sleep.calls == []


@pytest.mark.parametrize(("faults", "code"), [({}, 503), ({"fail_inference_status": 429}, 429)])
def test_fail_inference_fault(make: Make, faults: dict[str, Any], code: int) -> None:
    handler, context = make(health={"faults": {"fail_inference": "backend down", **faults}})
    handler.initialize(context)

    with pytest.raises(PredictionException) as caught:
        infer(handler, context, [{"body": 1}])

    assert caught.value.error_code == code
    assert caught.value.message == "injected by health.faults.fail_inference: backend down"
    assert getattr(handler, "handle_calls", 0) == 0
    document = describe(handler, context)
    assert document["status"] == "ready"
    assert document["requests"]["failed"] == 1
    assert document["faults"] == {"fail_inference": "backend down", **faults}


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
    assert store["path"] == str(blocker / "state" / "resnet" / "1.0" / RECORD_FILE)
    assert store["ok"] is False
    assert store["error"].startswith("NotADirectoryError: ")
    assert str(blocker) in store["error"]
    assert document["requests"]["total"] == 1


def test_corrupt_record_is_replaced_at_initialize(make: Make, health_state_dir: Path) -> None:
    path = health_state_dir / "resnet" / "1.0" / RECORD_FILE
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
    path = health_state_dir / "resnet" / "1.0" / RECORD_FILE

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


# -- metrics ---------------------------------------------------------------------------------


def _metric_calls(spy: Any) -> list[tuple[Any, ...]]:
    return [(c.args[0], c.args[1], c.args[2], c.args[5]) for c in spy.call_args_list]


def test_metrics_on_success_and_state_changes(make: Make, mocker: Any) -> None:
    class Flaky(Model):
        healthy = True

        def health_check(self) -> bool:
            return self.healthy

    handler, context = make(Flaky)
    spy = mocker.spy(context.metrics, "add_metric")

    handler.initialize(context)
    describe(handler, context)  # still ready: no new state sample
    handler.healthy = False
    describe(handler, context)
    describe(handler, context)  # still degraded

    assert _metric_calls(spy) == [
        ("ts_health_init_duration_seconds", 1.5, "Seconds", MetricTypes.GAUGE),
        ("ts_health_worker_state", 0, "State", MetricTypes.GAUGE),
        ("ts_health_worker_state", 1, "State", MetricTypes.GAUGE),
    ]


def test_metrics_on_failure(make: Make, mocker: Any) -> None:
    handler, context = make(fail=OSError("x"))
    spy = mocker.spy(context.metrics, "add_metric")

    with pytest.raises(InitializationError):
        handler.initialize(context)

    assert _metric_calls(spy) == [
        ("ts_health_init_failures_total", 1, "Count", MetricTypes.COUNTER),
        ("ts_health_worker_state", 2, "State", MetricTypes.GAUGE),
    ]


def test_broken_metrics_never_fail_the_handler(make: Make, mocker: Any) -> None:
    handler, context = make()
    mocker.patch.object(context.metrics, "add_metric", side_effect=RuntimeError("cache broken"))

    handler.initialize(context)

    assert describe(handler, context)["status"] == "ready"


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


def test_record_lost_during_initialize_continues_from_the_workers_copy(
    make: Make, health_state_dir: Path
) -> None:
    class Wiping(Model):
        def initialize(self, context: Any) -> str:
            (health_state_dir / "resnet" / "1.0" / RECORD_FILE).write_text("garbage")
            return super().initialize(context)

    handler, context = make(Wiping)
    handler.initialize(context)

    record = record_file(health_state_dir)
    assert (record["phase"], record["attempts"], record["attempts_to_ready"]) == ("ready", 1, 1)
    assert record["last_started_at"] == T0_ISO


@pytest.mark.parametrize(
    ("context", "identity"),
    [
        (SimpleNamespace(model_name="solo"), {"name": "solo", "version": "unknown"}),
        (
            SimpleNamespace(model_name="solo", manifest={"model": "x"}),
            {"name": "solo", "version": "unknown"},
        ),
        (SimpleNamespace(), {"name": "unknown", "version": "unknown"}),
    ],
)
def test_context_without_usable_manifest(
    fake_time: Any, health_state_dir: Path, context: Any, identity: dict[str, str]
) -> None:
    handler = fake_time(Model())

    handler.initialize(context)

    document = handler.health_status()
    assert document["model"] == identity
    assert document["status"] == "ready"


def test_default_health_check_answers_none() -> None:
    assert HealthMixin().health_check() is None
