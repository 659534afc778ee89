"""The testing helpers: ``mock_context`` (TorchServe's own Context, as a worker gets it),
``set_requests``, and ``describe`` and ``infer``, which set the headers of a request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ts_health_handler import HealthMixin
from ts_health_handler.testing import describe, infer, mock_context, set_requests


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


def test_mock_context_reads_a_model_config_file(tmp_path: Path) -> None:
    config = tmp_path / "model-config.yml"
    config.write_text("minWorkers: 1\nhealth:\n  on_init_failure: hold\n  check_timeout_s: 0.5\n")

    context = mock_context("m", model_yaml_config=config)

    assert context.model_yaml_config == {
        "minWorkers": 1,
        "health": {"on_init_failure": "hold", "check_timeout_s": 0.5},
    }
    assert mock_context("m", model_yaml_config=str(config)).model_yaml_config["minWorkers"] == 1


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
