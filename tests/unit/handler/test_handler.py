"""HealthHandler on TorchServe's real BaseHandler (torch, no server). The testing helpers and
fixtures: tests/unit/testing/; what ``import ts_health_handler`` loads:
tests/unit/test_package.py. And HealthMixin's default clock and sleep (the time module)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.support.records import record_file_name
from tests.support.torch_marks import TORCH_WARNINGS, needs_torch
from ts_health_handler import HealthMixin, InitializationError
from ts_health_handler.handler import _mixin as mixin_module
from ts_health_handler.testing import describe, infer

pytestmark = TORCH_WARNINGS


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding a TorchScript model that doubles its input."""
    import torch

    class Doubler(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 2

    directory = tmp_path_factory.mktemp("doubler")
    torch.jit.save(torch.jit.script(Doubler()), str(directory / "model.pt"))
    return directory


def _handler_classes() -> dict[str, type]:
    import torch

    from ts_health_handler import HealthHandler

    class TensorHandler(HealthHandler):  # type: ignore[misc, valid-type]
        def initialize(self, context: Any) -> None:
            super().initialize(context)  # BaseHandler loads model.pt
            self.init_calls = getattr(self, "init_calls", 0) + 1

        def preprocess(self, data: Any) -> Any:
            return torch.tensor([row["body"] for row in data], dtype=torch.float32)

    class OwnHandle(TensorHandler):
        def handle(self, data: Any, context: Any) -> Any:
            self.own_handle_calls = getattr(self, "own_handle_calls", 0) + 1
            return ["custom"] * len(data)

    class ChainedHandle(TensorHandler):
        def handle(self, data: Any, context: Any) -> Any:
            return [{"y": y} for y in super().handle(data, context)]

    return {"plain": TensorHandler, "own": OwnHandle, "chained": ChainedHandle}


@pytest.fixture(scope="module")
def handlers() -> dict[str, type]:
    return _handler_classes()


@pytest.fixture
def doubler(ts_context: Any, model_dir: Path, fake_time: Any, handlers: dict[str, type]) -> Any:
    def build(kind: str = "plain", serialized: str = "model.pt") -> tuple[Any, Any]:
        manifest = {
            "runtime": "python",
            "model": {
                "modelName": "doubler",
                "modelVersion": "2.0",
                "serializedFile": serialized,
                "handler": "handler.py",
            },
        }
        context = ts_context("doubler", model_dir=model_dir, manifest=manifest)
        return fake_time(handlers[kind]()), context

    return build


@needs_torch
def test_health_handler_initializes_serves_and_describes(
    doubler: Any, health_state_dir: Path
) -> None:
    handler, context = doubler()

    handler.initialize(context)

    assert handler.init_calls == 1
    assert infer(handler, context, [{"body": [1.0, 2.0]}, {"body": [3.0, 4.0]}]) == [
        [2.0, 4.0],
        [6.0, 8.0],
    ]
    document = describe(handler, context)
    assert document["status"] == "ready"
    assert document["model"] == {"name": "doubler", "version": "2.0"}
    assert document["worker"]["device"] == "cpu"  # BaseHandler's torch.device
    assert document["initialization"]["history"]["attempts"] == 1  # nested super() once
    assert document["requests"]["total"] == 2
    record = json.loads((health_state_dir / "doubler" / "2.0" / record_file_name()).read_text())
    assert (record["phase"], record["attempts"]) == ("ready", 1)


@needs_torch
def test_describe_with_a_user_handle_override(doubler: Any) -> None:
    handler, context = doubler("own")
    handler.initialize(context)

    document = describe(handler, context)

    assert document["status"] == "ready"
    assert getattr(handler, "own_handle_calls", 0) == 0
    assert infer(handler, context, [{"body": [1.0]}]) == ["custom"]
    assert describe(handler, context)["requests"]["total"] == 1


@needs_torch
def test_super_handle_into_base_handler_is_counted_once(doubler: Any) -> None:
    handler, context = doubler("chained")
    handler.initialize(context)

    assert infer(handler, context, [{"body": [1.5]}]) == [{"y": [3.0]}]

    requests = describe(handler, context)["requests"]
    assert (requests["total"], requests["failed"]) == (1, 0)


@needs_torch
def test_missing_weights_fail_with_initialization_error(doubler: Any) -> None:
    handler, context = doubler(serialized="missing.pt")

    with pytest.raises(InitializationError) as caught:
        handler.initialize(context)

    cause = caught.value.__cause__
    assert cause is not None
    assert str(caught.value) == f"{type(cause).__name__}: {cause}"
    assert "missing.pt" in str(caught.value)
    document = describe(handler, context)
    assert document["status"] == "failed"
    assert document["initialization"]["error"]["type"] == type(cause).__name__


@needs_torch
def test_mixin_after_base_handler_is_refused() -> None:
    from ts.torch_handler.base_handler import BaseHandler

    with pytest.raises(TypeError, match="HealthMixin must come before BaseHandler in the bases"):

        class Bad(BaseHandler, HealthMixin):  # type: ignore[misc]
            def initialize(self, context: Any) -> None:
                pass

            def handle(self, data: Any, context: Any) -> Any:
                return data

    with pytest.raises(TypeError, match=r"class Quiet\(HealthMixin, BaseHandler\)"):

        class Quiet(BaseHandler, HealthMixin):  # type: ignore[misc]
            pass


# -- HealthMixin's default clock and sleep ----------------------------------------------------


def test_default_clock_and_sleep_use_the_time_module(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    fake_time = SimpleNamespace(time=lambda: 123.5, sleep=slept.append)
    monkeypatch.setattr(mixin_module, "time", fake_time)
    handler = HealthMixin()

    # The clock is time.time itself (read on every request, so no method around it).
    assert handler.health_clock is time.time
    assert HealthMixin.health_clock is time.time
    handler.health_sleep(0.25)
    assert slept == [0.25]
