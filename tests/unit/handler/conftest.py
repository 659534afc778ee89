"""The ``make`` fixture of the ``test_mixin_*`` modules: a :class:`~.mixin_model.Model` (or
another class) with the fake clock and sleep installed, and its TorchServe context."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.handler.mixin_model import Make, Model


@pytest.fixture
def make(ts_context: Any, fake_time: Any) -> Make:
    """Build a handler (fake clock and sleep installed) and its context; don't initialize."""

    def build(
        cls: type = Model,
        health: Any = None,
        *,
        fail: BaseException | None = None,
        name: str = "resnet",
        **context_kwargs: Any,
    ) -> tuple[Any, Any]:
        handler = fake_time(cls())
        if fail is not None:
            handler.fail = fail
        yaml = {} if health is None else {"health": health}
        return handler, ts_context(name, model_yaml_config=yaml, **context_kwargs)

    return build
