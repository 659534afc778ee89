"""The promise that ``import ts_health_handler`` stays light: neither torch nor ts is imported, and
the public names (HealthHandler with BaseHandler, hence torch) load on first access."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import ts_health_handler
from tests.support.torch_marks import TORCH_WARNINGS, needs_torch
from ts_health_handler import HealthMixin

pytestmark = TORCH_WARNINGS


def test_import_loads_neither_torch_nor_ts() -> None:
    code = (
        "import json, sys\n"
        "import ts_health_handler, ts_health_handler.testing\n"
        "names = [n for n in ts_health_handler.__all__ if n != 'HealthHandler']\n"
        "assert all(getattr(ts_health_handler, n) is not None for n in names)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'ts'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


@needs_torch
def test_health_handler_is_loaded_on_first_access() -> None:
    from ts.torch_handler.base_handler import BaseHandler

    from ts_health_handler.handler._handler import HealthHandler

    assert ts_health_handler.HealthHandler is HealthHandler
    mro = HealthHandler.__mro__
    assert mro.index(HealthMixin) < mro.index(BaseHandler)
    assert "HealthHandler" in ts_health_handler.__all__


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="module 'ts_health_handler' has no attribute 'Nope'"):
        ts_health_handler.Nope  # noqa: B018


@needs_torch
def test_public_names_resolve() -> None:
    assert ts_health_handler.__all__ == sorted(ts_health_handler.__all__)
    for name in ts_health_handler.__all__:
        assert getattr(ts_health_handler, name) is not None, name
