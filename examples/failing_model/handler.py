"""A model whose ``initialize()`` fails on purpose, with a clear reason.

It needs ``handler.answer`` in its ``model-config.yml`` and that file leaves it out, so every
attempt raises :class:`InitializationError`. TorchServe restarts the worker after 1, 1, 2, 3,
5, ... seconds; each attempt lands in the persisted record (attempts, failures and the
message below), and ``/ping`` turns ``500 Unhealthy`` after ``maxRetryTimeoutInSec``.

Add ``handler: {answer: 42}`` to the yaml and the model starts. For a failure without touching
the code, ``health.faults.fail_initialize`` does the same to any handler.
"""

from __future__ import annotations

from typing import Any

from ts.torch_handler.base_handler import BaseHandler

from ts_health_handler import HealthMixin, InitializationError


class FailingModelHandler(HealthMixin, BaseHandler):
    """Fails to initialize unless ``handler.answer`` is configured."""

    def initialize(self, context: Any) -> None:
        self.context = context
        settings = (context.model_yaml_config or {}).get("handler") or {}
        if "answer" not in settings:
            raise InitializationError(
                "model-config.yml has no handler.answer: refusing to serve without it"
            )
        self.answer = settings["answer"]
        self.initialized = True

    def preprocess(self, data: list[Any]) -> list[Any]:
        return data

    def inference(self, data: list[Any], *args: Any, **kwargs: Any) -> list[Any]:
        return [{"answer": self.answer} for _ in data]

    def postprocess(self, data: list[Any]) -> list[Any]:
        return data
