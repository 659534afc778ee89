"""Helpers for testing handlers without a server (and, with one, see :func:`serve`).

``mock_context()`` builds TorchServe's own ``ts.context.Context`` with a real metrics store,
so a handler sees what the worker would give it. Unlike TorchServe's shipped ``MockContext``
it can mark requests as describe requests::

    from ts_health_handler.testing import describe, infer, mock_context

    def test_ready(tmp_path):
        handler = MyHandler()
        health = {"health": {"state_dir": str(tmp_path)}}
        context = mock_context("my_model", model_yaml_config=health)
        handler.initialize(context)
        assert describe(handler, context)["status"] == "ready"
        assert infer(handler, context, [{"body": b"1"}]) == [...]

Requires the ``torchserve`` package (it is what your handler runs in anyway).
"""

from __future__ import annotations

import inspect
import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._archive import archive_model, model_config
from ._runner import serve
from ._torchserve import HttpResponse, ServerError, Tokens, TorchServe, WaitTimeout, wait_for

__all__ = [
    "HttpResponse",
    "ServerError",
    "Tokens",
    "TorchServe",
    "WaitTimeout",
    "archive_model",
    "describe",
    "infer",
    "mock_context",
    "model_config",
    "serve",
    "set_requests",
    "wait_for",
]


def mock_context(
    model_name: str = "model",
    *,
    model_version: str = "1.0",
    model_dir: str | os.PathLike[str] | None = None,
    manifest: Mapping[str, Any] | None = None,
    model_yaml_config: Mapping[str, Any] | str | os.PathLike[str] | None = None,
    batch_size: int = 1,
    gpu_id: int | None = None,
    headers: Sequence[Mapping[str, str]] = ({},),
) -> Any:
    """A real ``ts.context.Context`` as the worker builds it for ``initialize()``.

    Args:
        model_name: the registered model name.
        model_version: written into the default manifest.
        model_dir: the unpacked ``.mar`` directory; defaults to the current directory.
        manifest: ``MAR-INF/MANIFEST.json`` content; a minimal one by default.
        model_yaml_config: the model's ``model-config.yml``: a path to the file (read with
            PyYAML, as TorchServe does) or its parsed content; ``{}`` when omitted.
        batch_size: the ``batch_size`` system property.
        gpu_id: the ``gpu_id`` system property (``None`` for CPU).
        headers: request headers, one mapping per request of the next batch.

    Returns:
        A ``ts.context.Context`` whose ``metrics`` is a real ``MetricsCacheYamlImpl``.
    """
    import ts
    from ts.context import Context

    if model_yaml_config is not None and not isinstance(model_yaml_config, Mapping):
        model_yaml_config = model_config(model_yaml_config)
    if manifest is None:
        manifest = _default_manifest(model_name, model_version)
    metrics = _metrics_store(model_name)
    context = Context(
        model_name,
        str(model_dir if model_dir is not None else Path.cwd()),
        dict(manifest),
        batch_size,
        gpu_id,
        ts.__version__,
        True,
        metrics,
        dict(model_yaml_config) if model_yaml_config is not None else {},
    )
    set_requests(context, headers)
    return context


def _default_manifest(model_name: str, model_version: str) -> dict[str, Any]:
    """The minimal ``MAR-INF/MANIFEST.json`` used when none is given."""
    return {
        "runtime": "python",
        "model": {
            "modelName": model_name,
            "modelVersion": model_version,
            "handler": "handler.py",
        },
    }


def _metrics_store(model_name: str) -> Any:
    """TorchServe's ``MetricsCacheYamlImpl`` with its default ``metrics.yaml``, as the
    worker sets it up for ``model_name``."""
    import ts
    from ts.metrics.metric_cache_yaml_impl import MetricsCacheYamlImpl

    metrics_yaml = Path(ts.__file__).parent / "configs" / "metrics.yaml"
    metrics = MetricsCacheYamlImpl(config_file_path=str(metrics_yaml))
    metrics.initialize_cache()
    metrics.model_name = model_name
    metrics.set_request_ids(str(uuid.uuid4()))
    return metrics


def set_requests(
    context: Any,
    headers: Sequence[Mapping[str, str]],
    request_ids: Sequence[str] | None = None,
) -> None:
    """Make the next batch ``len(headers)`` requests with these request headers.

    ``request_ids`` keeps TorchServe's ids across batches, as continuous batching sends the
    same request in every step; by default each batch gets new ones.
    """
    from ts.context import RequestProcessor

    if request_ids is not None and len(request_ids) != len(headers):
        raise ValueError(
            f"request_ids has {len(request_ids)} ids for {len(headers)} requests; expected one each"
        )
    ids = request_ids or [str(uuid.uuid4()) for _ in headers]
    context.request_processor = [RequestProcessor(dict(h)) for h in headers]
    context.request_ids = dict(enumerate(ids))
    if context.metrics is not None:
        context.metrics.request_ids = context.request_ids


def describe(handler: Any, context: Any) -> Any:
    """Send a describe request (``?customized=true``) through ``handler.handle``.

    An ``async def handle`` is awaited (with :func:`asyncio.run`: call it outside a running
    event loop; inside one, ``await handler.handle(...)`` yourself).
    """
    set_requests(context, [{"describe": "True"}])
    return _awaited(handler.handle([{}], context))[0]


def infer(
    handler: Any,
    context: Any,
    data: Sequence[Mapping[str, Any]],
    request_ids: Sequence[str] | None = None,
) -> Any:
    """Send one batch of inference requests (``data``, one item each) through ``handle``;
    an ``async def handle`` is awaited as in :func:`describe`."""
    set_requests(context, [{} for _ in data], request_ids)
    return _awaited(handler.handle(list(data), context))


def _awaited(result: Any) -> Any:
    if inspect.isawaitable(result):
        import asyncio

        async def wait() -> Any:
            return await result

        return asyncio.run(wait())
    return result
