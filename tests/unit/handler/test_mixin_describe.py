"""HealthMixin's describe: answered whatever handle() does, the model's identity from any
context, and the status document's fields, device and schema."""

from __future__ import annotations

import json
import os
import platform
from importlib.resources import files
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest

pytest.importorskip(
    "ts", reason="needs torchserve (the ts package): pip install torchserve==0.12.0"
)

from tests.support.records import record_file_name
from tests.unit.handler.mixin_model import T0_ISO, T1_ISO, Make, Model
from ts_health_handler import HealthMixin, __version__
from ts_health_handler._document import parse_status
from ts_health_handler.testing import describe, infer, set_requests

pytestmark = pytest.mark.usefixtures("no_real_sleep")


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
        "in_flight": 0,
        "open": None,
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
    assert (health_state_dir / "m2" / "3" / record_file_name()).is_file()


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
        "mode": "default",
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
        "in_flight": 0,
        "open": None,
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
