"""The empty model without ts-health-handler: the baseline of the benchmarks.

Line for line ``examples/empty_model/handler.py`` minus ``HealthMixin``: same
``initialize()``, same answer, plain TorchServe ``BaseHandler``.
"""

from __future__ import annotations

from typing import Any

from ts.torch_handler.base_handler import BaseHandler


class PlainEmptyModelHandler(BaseHandler):  # type: ignore[misc]
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
