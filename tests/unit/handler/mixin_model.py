"""A torch-free model and the helpers shared by the ``test_mixin_*`` modules (the ``make``
fixture that builds one with its context is in this folder's conftest.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.records import record_file_name
from ts_health_handler import HealthMixin

T0_ISO = "2025-06-15T15:06:40.000Z"
T1_ISO = "2025-06-15T15:06:41.500Z"  # T0 + the 1.5 s every Model.initialize() takes


class Model(HealthMixin):
    """A torch-free model. ``fail`` makes initialize() raise; a request body of
    ``{"raise": exc}`` makes handle() raise ``exc``."""

    fail: BaseException | None = None
    init_seconds = 1.5

    def initialize(self, context: Any) -> str:
        self.init_calls = getattr(self, "init_calls", 0) + 1
        self.health_clock.advance(self.init_seconds)
        if self.fail is not None:
            raise self.fail
        return "initialized"

    def handle(self, data: Any, context: Any) -> Any:
        self.handle_calls = getattr(self, "handle_calls", 0) + 1
        for item in data:
            if "raise" in item:
                raise item["raise"]
        return [{"echo": item.get("body")} for item in data]


Make = Callable[..., tuple[Any, Any]]


def record_file(state_dir: Path, name: str = "resnet", version: str = "1.0") -> dict[str, Any]:
    return json.loads((state_dir / name / version / record_file_name()).read_text(encoding="utf-8"))
