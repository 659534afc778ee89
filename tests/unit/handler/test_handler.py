"""HealthHandler on TorchServe's real BaseHandler (torch, no server), the testing helpers, the
pytest fixtures, and the promise that ``import ts_health_handler`` stays light."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import ts_health_handler
from ts_health_handler import HealthMixin, InitializationError
from ts_health_handler.handler import _mixin as mixin_module
from ts_health_handler.handler._identity import current_identity
from ts_health_handler.testing import describe, infer, mock_context, set_requests

#: The record file this process writes: one per server (see _identity).
RECORD_FILE = f"init.{current_identity().server}.json"

#: TorchServe's BaseHandler imports torch; torch 2.13.0 is built for Python 3.11 only, so on
#: other Pythons (the CI's 3.9 and 3.13 runs) these tests are skipped with this reason.
needs_torch = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None,
    reason="needs torch (BaseHandler imports it; torch==2.13.0 exists for Python 3.11 only)",
)

# torch 2.13 deprecates TorchScript, which TorchServe 0.12's BaseHandler loads; not our concern.
pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Failed to initialize NumPy:UserWarning"),
]

# -- import cost --------------------------------------------------------------------------


def test_import_loads_neither_torch_nor_ts() -> None:
    code = (
        "import json, sys\n"
        "import ts_health_handler, ts_health_handler.testing\n"
        "names = [n for n in ts_health_handler.__all__ if n != 'HealthHandler']\n"
        "assert all(getattr(ts_health_handler, n) is not None for n in names)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'ts'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


@needs_torch
def test_health_handler_is_loaded_on_first_access() -> None:
    from ts.torch_handler.base_handler import BaseHandler

    from ts_health_handler.handler._handler import HealthHandler

    assert ts_health_handler.HealthHandler is HealthHandler
    mro = HealthHandler.__mro__
    assert mro.index(HealthMixin) < mro.index(BaseHandler)
    assert "HealthHandler" in ts_health_handler.__all__


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="module 'ts_health_handler' has no attribute 'Nope'"):
        ts_health_handler.Nope  # noqa: B018


@needs_torch
def test_public_names_resolve() -> None:
    assert ts_health_handler.__all__ == sorted(ts_health_handler.__all__)
    for name in ts_health_handler.__all__:
        assert getattr(ts_health_handler, name) is not None, name


def test_default_clock_and_sleep_use_the_time_module(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    fake_time = SimpleNamespace(time=lambda: 123.5, sleep=slept.append)
    monkeypatch.setattr(mixin_module, "time", fake_time)
    handler = HealthMixin()

    assert handler.health_clock() == 123.5
    handler.health_sleep(0.25)
    assert slept == [0.25]


# -- HealthHandler on the real BaseHandler -----------------------------------------------------


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
    record = json.loads((health_state_dir / "doubler" / "2.0" / RECORD_FILE).read_text())
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


# -- testing helpers ----------------------------------------------------------------------


def test_mock_context_defaults() -> None:
    import ts
    from ts.context import Context
    from ts.metrics.metric_cache_yaml_impl import MetricsCacheYamlImpl

    context = mock_context()

    assert isinstance(context, Context)
    assert context.model_name == "model"
    assert context.manifest == {
        "runtime": "python",
        "model": {"modelName": "model", "modelVersion": "1.0", "handler": "handler.py"},
    }
    assert context.model_yaml_config == {}
    assert context.system_properties == {
        "model_dir": str(Path.cwd()),
        "gpu_id": None,
        "batch_size": 1,
        "server_name": "MMS",
        "server_version": ts.__version__,
        "limit_max_image_pixels": True,
    }
    assert isinstance(context.metrics, MetricsCacheYamlImpl)
    assert context.metrics.model_name == "model"
    assert len(context.request_processor) == 1
    assert context.get_request_header(0, "describe") is None
    assert list(context.request_ids) == [0]


def test_mock_context_arguments(tmp_path: Path) -> None:
    manifest = {"model": {"modelName": "x", "modelVersion": "7"}}
    yaml = {"health": {"on_init_failure": "hold"}, "minWorkers": 2}

    context = mock_context(
        "clf",
        model_version="ignored-with-manifest",
        model_dir=tmp_path,
        manifest=manifest,
        model_yaml_config=yaml,
        batch_size=4,
        gpu_id=1,
        headers=[{"a": "1"}, {"b": "2"}],
    )

    assert context.model_name == "clf"
    assert context.manifest == manifest
    assert context.manifest is not manifest  # a copy
    assert context.model_yaml_config == yaml
    assert context.model_yaml_config is not yaml
    assert context.system_properties["model_dir"] == str(tmp_path)
    assert context.system_properties["batch_size"] == 4
    assert context.system_properties["gpu_id"] == 1
    assert [context.get_request_header(i, k) for i, k in [(0, "a"), (1, "b"), (1, "a")]] == [
        "1",
        "2",
        None,
    ]
    assert len(context.request_ids) == 2
    assert context.metrics.request_ids is context.request_ids


def test_mock_context_model_version_goes_into_the_default_manifest() -> None:
    context = mock_context("m", model_version="3.1")

    assert context.manifest["model"] == {
        "modelName": "m",
        "modelVersion": "3.1",
        "handler": "handler.py",
    }


def test_set_requests_replaces_the_batch() -> None:
    context = mock_context()

    set_requests(context, [{}, {}, {"describe": "True"}])

    assert len(context.request_processor) == 3
    assert sorted(context.request_ids) == [0, 1, 2]
    assert len(set(context.request_ids.values())) == 3
    assert context.get_request_header(2, "describe") == "True"


def test_set_requests_without_a_metrics_store() -> None:
    context = mock_context()
    context.metrics = None

    set_requests(context, [{"x": "1"}])

    assert context.get_request_header(0, "x") == "1"


def test_describe_and_infer_helpers_set_the_headers() -> None:
    seen: list[tuple[Any, Any]] = []

    class Recorder(HealthMixin):
        def handle(self, data: Any, context: Any) -> Any:
            seen.append((data, context.get_request_header(0, "describe")))
            return ["answer"] * len(data)

    handler = Recorder()
    context = mock_context("rec", model_yaml_config={"health": {"state_dir": "/nonexistent"}})

    document = describe(handler, context)
    assert document["model"]["name"] == "unknown"  # describe before initialize
    assert context.get_request_header(0, "describe") == "True"
    assert infer(handler, context, [{"body": 1}, {"body": 2}]) == ["answer", "answer"]
    assert seen == [([{"body": 1}, {"body": 2}], None)]
    assert len(context.request_processor) == 2


# -- the pytest fixtures ----------------------------------------------------------------------


def test_health_state_dir_fixture(health_state_dir: Path, tmp_path: Path) -> None:
    assert health_state_dir.is_dir()
    assert list(health_state_dir.iterdir()) == []
    assert health_state_dir.parent == tmp_path
    assert os.environ["TS_HEALTH_STATE_DIR"] == str(health_state_dir)
    assert ts_health_handler.resolve_state_dir() == health_state_dir


def test_ts_context_fixture_records_into_the_state_dir(
    ts_context: Any, health_state_dir: Path
) -> None:
    class Ready(HealthMixin):
        def initialize(self, context: Any) -> None:
            pass

    assert ts_context is mock_context
    handler = Ready()
    handler.initialize(ts_context("fixture_model", model_version="4"))

    assert (health_state_dir / "fixture_model" / "4" / RECORD_FILE).is_file()


def test_mock_context_reads_a_model_config_file(tmp_path: Path) -> None:
    config = tmp_path / "model-config.yml"
    config.write_text("minWorkers: 1\nhealth:\n  on_init_failure: hold\n  check_timeout_s: 0.5\n")

    context = mock_context("m", model_yaml_config=config)

    assert context.model_yaml_config == {
        "minWorkers": 1,
        "health": {"on_init_failure": "hold", "check_timeout_s": 0.5},
    }
    assert mock_context("m", model_yaml_config=str(config)).model_yaml_config["minWorkers"] == 1


def test_ts_context_is_a_factory_that_takes_a_model_config_file(
    ts_context: Any, health_state_dir: Path, tmp_path: Path
) -> None:
    config = tmp_path / "model-config.yml"
    config.write_text("health:\n  on_init_failure: hold\n")

    context = ts_context("from_file", model_yaml_config=config)
    handler = HealthMixinOnly()
    handler.initialize(context)

    assert describe(handler, context)["initialization"]["policy"] == "hold"
    assert (health_state_dir / "from_file").is_dir()


class HealthMixinOnly(HealthMixin):
    def initialize(self, context: Any) -> None:
        self.context = context

    def handle(self, data: Any, context: Any) -> Any:
        return data
