"""The smallest model with honest health: no weights, one trivial answer per request.

``HealthMixin`` comes first among the bases; it records every ``initialize()`` and answers
``GET /models/empty_model?customized=true`` with the status document. ``initialize()`` is
overridden, so ``BaseHandler``'s weight loading (which needs a serialized file) never runs.

TorchServe loads the one class *defined* in this module; imported classes do not count.
"""

from __future__ import annotations

from typing import Any

from ts.torch_handler.base_handler import BaseHandler

from ts_health_handler import HealthMixin


class EmptyModelHandler(HealthMixin, BaseHandler):
    """Answers ``{"model": ..., "ok": true, "bytes": N}`` for every request."""

    def initialize(self, context: Any) -> None:
        self.context = context
        self.manifest = context.manifest
        self.model_name = context.model_name
        self.initialized = True

    def preprocess(self, data: list[dict[str, Any]]) -> list[bytes | bytearray]:
        bodies: list[bytes | bytearray] = []
        for row in data:
            body = row.get("body") if isinstance(row, dict) else row
            if body is None and isinstance(row, dict):
                body = row.get("data")
            if isinstance(body, str):
                body = body.encode("utf-8")
            bodies.append(body if isinstance(body, (bytes, bytearray)) else b"")
        return bodies

    def inference(
        self, data: list[bytes | bytearray], *args: Any, **kwargs: Any
    ) -> list[dict[str, Any]]:
        return [{"model": self.model_name, "ok": True, "bytes": len(body)} for body in data]

    def postprocess(self, data: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return data
