"""A handler that overrides ``handle()`` itself instead of pre/inference/postprocess.

``HealthMixin`` wraps the ``handle`` of every class that mixes it in, so
``GET /models/custom_handle_model?customized=true`` still gets the status document, and
requests are still counted, although this ``handle()`` never looks at describe requests.
"""

from __future__ import annotations

from typing import Any

from ts.torch_handler.base_handler import BaseHandler

from ts_health_handler import HealthMixin


class CustomHandleModelHandler(HealthMixin, BaseHandler):
    """Echoes the length of each request body."""

    def initialize(self, context: Any) -> None:
        self.context = context
        self.initialized = True

    def handle(self, data: list[Any], context: Any) -> list[Any]:
        answers = []
        for row in data:
            body = (row.get("body") or row.get("data")) if isinstance(row, dict) else row
            answers.append({"handled_by": "custom handle()", "length": len(body or b"")})
        return answers
