"""A model that initializes fine but whose own ``health_check()`` fails: status ``degraded``.

``health_check()`` runs on every ``GET /models/degraded_model?customized=true`` (within
``health.check_timeout_s``). Returning ``False`` (or a dict with ``"healthy": false``, or
raising) turns the status document's ``status`` into ``degraded`` while inference keeps
answering: TorchServe's ``/ping`` knows nothing of it.
"""

from __future__ import annotations

from typing import Any

from ts.torch_handler.base_handler import BaseHandler

from ts_health_handler import HealthMixin


class DegradedModelHandler(HealthMixin, BaseHandler):
    """Serves, but reports that a dependency it needs is down."""

    def initialize(self, context: Any) -> None:
        self.context = context
        self.initialized = True

    def health_check(self) -> bool:
        # A real check would probe what the model depends on (a feature store, a GPU, ...).
        return False

    def preprocess(self, data: list[Any]) -> list[Any]:
        return data

    def inference(self, data: list[Any], *args: Any, **kwargs: Any) -> list[Any]:
        return [{"degraded": True} for _ in data]

    def postprocess(self, data: list[Any]) -> list[Any]:
        return data
