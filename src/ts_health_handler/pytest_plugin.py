"""pytest fixtures for handler authors, registered through the ``pytest11`` entry point.

- ``health_state_dir``: a fresh state directory, also set as ``$TS_HEALTH_STATE_DIR``.
- ``ts_context``: a factory with the signature of :func:`ts_health_handler.testing.mock_context`
  whose records go to ``health_state_dir`` unless ``model_yaml_config`` names another.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ._state import ENV_STATE_DIR

__all__ = ["health_state_dir", "ts_context"]


@pytest.fixture
def health_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A per-test state directory, exported as ``TS_HEALTH_STATE_DIR``."""
    state_dir = tmp_path / "ts-health-state"
    state_dir.mkdir()
    monkeypatch.setenv(ENV_STATE_DIR, str(state_dir))
    return state_dir


@pytest.fixture
def ts_context(health_state_dir: Path) -> Callable[..., Any]:
    """Build contexts for unit tests: ``ts_context("my_model", model_yaml_config=...)``."""
    from .testing import mock_context

    return mock_context
