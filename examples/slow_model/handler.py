"""A slow model with a small job queue: a way to watch TorchServe shed load.

Every request waits ``health.faults.inference_delay_s`` seconds (2 s here) and the model's job
queue holds ``jobQueueSize`` (2) requests. With one worker, about three requests are in
flight at once; the rest get ``503 ServiceUnavailableException`` while ``/ping`` stays 200
and ``GET /models/slow_model`` shows ``jobQueueStatus.remainingCapacity: 0``.
"""

from __future__ import annotations

from typing import Any

from ts.torch_handler.base_handler import BaseHandler

from ts_health_handler import HealthMixin


class SlowModelHandler(HealthMixin, BaseHandler):
    """Answers ``{"slow": true}`` after the configured delay."""

    def initialize(self, context: Any) -> None:
        self.context = context
        self.initialized = True

    def preprocess(self, data: list[Any]) -> list[Any]:
        return data

    def inference(self, data: list[Any], *args: Any, **kwargs: Any) -> list[Any]:
        return [{"slow": True} for _ in data]

    def postprocess(self, data: list[Any]) -> list[Any]:
        return data
