"""Marks for the unit tests that run torch (TorchServe's BaseHandler imports it)."""

from __future__ import annotations

import importlib.util

import pytest

#: torch 2.13.0 is built for Python 3.11 only, so on other Pythons (the CI's 3.9 and 3.13 runs)
#: the tests that need it are skipped with this reason.
needs_torch = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None,
    reason="needs torch (BaseHandler imports it; torch==2.13.0 exists for Python 3.11 only)",
)

#: A module's ``pytestmark`` where BaseHandler runs: torch 2.13 deprecates TorchScript, which
#: TorchServe 0.12's BaseHandler loads, and warns when NumPy is missing; neither is ours.
TORCH_WARNINGS = [
    pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Failed to initialize NumPy:UserWarning"),
]
