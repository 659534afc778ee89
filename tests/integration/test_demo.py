"""The README's demo runs end to end: both models served, health shown, server stopped."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.py"


@pytest.mark.own_server
def test_demo_shows_what_ping_hides() -> None:
    run = subprocess.run(
        [sys.executable, str(DEMO)], capture_output=True, text=True, timeout=240, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert '"status": "Healthy"' in out
    assert '"status": "ready"' in out  # our status document of empty_model
    failing = next(line for line in out.splitlines() if line.startswith("failing_model"))
    assert " failing " in failing
    assert "model-config.yml has no handler.answer" in failing
    troubled = next(line for line in out.splitlines() if line.startswith("troubled_model"))
    assert " stuck " in troubled
    assert "one request has run for" in troubled
    assert out.rstrip().endswith("TorchServe stopped.")
