"""pytest fixtures for handler authors, registered through the ``pytest11`` entry point.

- ``health_state_dir``: a fresh state directory, also set as ``$TS_HEALTH_STATE_DIR``.
- ``ts_context``: a factory with the signature of :func:`ts_health_handler.testing.mock_context`
  whose records go to ``health_state_dir`` unless ``model_yaml_config`` names another.
- ``torchserve``: starts real TorchServe servers (:func:`ts_health_handler.testing.serve`)
  and stops every one of them when the test ends, passed or failed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ..record import ENV_STATE_DIR

__all__ = ["health_state_dir", "torchserve", "ts_context"]


@pytest.fixture
def health_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A per-test state directory, exported as ``TS_HEALTH_STATE_DIR``."""
    state_dir = tmp_path / "ts-health-state"
    state_dir.mkdir()
    monkeypatch.setenv(ENV_STATE_DIR, str(state_dir))
    return state_dir


@pytest.fixture
def ts_context(health_state_dir: Path) -> Callable[..., Any]:
    """A factory of contexts for unit tests, with :func:`~ts_health_handler.testing.mock_context`'s
    signature: ``ts_context("my_model", model_yaml_config="model-config.yml")``."""
    from . import mock_context

    return mock_context


@pytest.fixture
def torchserve(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Start a real TorchServe: ``server = torchserve(model_store, **serve_kwargs)``.

    Takes the keyword arguments of :func:`ts_health_handler.testing.serve`; each server gets
    its own working directory under ``tmp_path`` and is stopped at the end of the test.
    """
    from . import serve

    with contextlib.ExitStack() as servers:
        started = 0

        def start(model_store: Path | str, **kwargs: Any) -> Any:
            nonlocal started
            started += 1
            kwargs.setdefault("workdir", tmp_path / f"torchserve-{started}")
            return servers.enter_context(serve(model_store, **kwargs))

        yield start
