"""The ``ts-health`` command line as a whole: --help and --version, an internal error as one line,
and the real process (console script, python -m) that imports neither torch nor ts."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_torchserve import FakeTorchServe
from tests.unit.probe.helpers import BIN, Result, closed_port
from ts_health_handler import cli
from ts_health_handler.cli import run
from ts_health_handler.probe import ExitCode


def test_help_lists_exit_codes_and_environment(ts_health: Callable[..., Result]) -> None:
    result = ts_health("--help", connect=False)
    assert result.code == ExitCode.OK
    for text in (
        "exit codes:",
        "3  unreachable",
        "TS_HEALTH_KEY_FILE",
        "ping",
        "ready",
        "status",
        "wait",
    ):
        assert text in result.out
    assert ts_health("wait", "--help", connect=False).code == ExitCode.OK


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from ts_health_handler import __version__

    assert run(["--version"], environ={}) == ExitCode.OK
    assert capsys.readouterr().out == f"ts-health {__version__} (ts-health-handler)\n"


def test_internal_errors_are_one_line(
    ts_health: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> int:
        raise KeyError("oops")

    monkeypatch.setitem(cli.COMMANDS, "ping", broken)
    result = ts_health("ping")
    assert result.code == ExitCode.INTERNAL
    assert result.lines == ["ts-health: internal error: KeyError: 'oops' (please report it)"]


# -- as a real process -----------------------------------------------------------------------


def test_probe_imports_neither_torch_nor_ts() -> None:
    code = (
        "import sys, ts_health_handler.probe, ts_health_handler.__main__; "
        "assert 'torch' not in sys.modules and 'ts' not in sys.modules, "
        "sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'ts'))"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_console_script(fake: FakeTorchServe, state_dir: Path) -> None:
    script = BIN / "ts-health"
    if not script.exists():
        pytest.skip("ts-health console script not installed next to the interpreter")
    env = dict(os.environ, TS_HEALTH_MANAGEMENT_URL=fake.url, TS_HEALTH_STATE_DIR=str(state_dir))
    done = subprocess.run(
        [str(script), "ready", "m"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == ExitCode.OK, done.stderr
    assert done.stdout.startswith("ready: model m 1.0:")


def test_python_dash_m(fake: FakeTorchServe) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ts_health_handler", "--inference-url", fake.url, "ping"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == ExitCode.OK, done.stderr
    url = f"http://127.0.0.1:{closed_port()}"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ts_health_handler",
            "status",
            "--management-url",
            url,
            "--inference-url",
            url,
            "--request-timeout",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == ExitCode.UNREACHABLE
    assert "Traceback" not in done.stderr + done.stdout
    assert done.stdout.strip().startswith("unreachable: cannot connect to the management API")
