"""Run the installed ``ts-health`` against a real TorchServe, as a user's shell would.

Shared by the integration tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ts_health_handler.testing import TorchServe

SCRIPT = Path(sys.executable).parent / "ts-health"


def ts_health(
    server: TorchServe,
    *args: str,
    state_dir: Path,
    key_file: Path | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``ts-health`` against ``server``; connection options from the env."""
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "ts_health_handler"]
    env = dict(os.environ)
    for name in ("TS_HEALTH_TOKEN", "TS_HEALTH_KEY_FILE"):
        env.pop(name, None)
    env.update(
        TS_HEALTH_INFERENCE_URL=server.inference_url,
        TS_HEALTH_MANAGEMENT_URL=server.management_url,
        TS_HEALTH_STATE_DIR=str(state_dir),
    )
    if key_file is not None:
        env["TS_HEALTH_KEY_FILE"] = str(key_file)
    done = subprocess.run(
        [*command, *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    # Never a traceback of ts-health; --json output may carry the handler's recorded one.
    assert "Traceback" not in done.stderr, done
    assert "--json" in args or "Traceback" not in done.stdout, done
    return done


def state_of(done: subprocess.CompletedProcess[str]) -> str:
    return done.stdout.split(":", 1)[0]
