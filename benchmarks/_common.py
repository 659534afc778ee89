"""Shared by the server benchmarks: archiving the two empty models, machine facts, timing.

Standard library plus the runner in ``ts_health_handler.testing``; the benchmarks never
touch anything but loopback.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final

from ts_health_handler.testing import archive_model, model_config

REPO: Final = Path(__file__).resolve().parents[1]
BENCH: Final = Path(__file__).resolve().parent
#: Our example: HealthMixin + BaseHandler.
HEALTH_MODEL: Final = REPO / "examples" / "empty_model"
#: The same model without HealthMixin (the baseline).
PLAIN_MODEL: Final = BENCH / "plain_empty_model"
#: Every benchmark server: no system-metrics subprocess (it would add noise every minute).
SERVER_CONFIG: Final = {"disable_system_metrics": "true"}


def archive(
    source: Path,
    name: str,
    store: Path,
    changes: Mapping[str, Any] | None = None,
) -> Path:
    """Archive ``source/handler.py`` as ``name`` with ``changes`` merged into its config."""
    config = model_config(source / "model-config.yml", changes)
    return archive_model(source / "handler.py", name, store, config=config)


def _version(command: Sequence[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({type(exc).__name__})"
    text = (done.stdout + done.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def _distribution(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, str]:
    """The facts RESULTS.md records with every figure."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    java = shutil.which("java")
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "memory": memory,
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "java": _version([java, "-version"]) if java else "not found",
        "torchserve": _distribution("torchserve"),
        "torch": _distribution("torch"),
        "ts_health_handler": _distribution("ts-health-handler"),
    }


def print_machine() -> None:
    facts = machine()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in facts.items()))
    print_load("load average at start")


def print_load(label: str) -> None:
    one, five, fifteen = os.getloadavg()
    print(f"{label}: {one:.2f} {five:.2f} {fifteen:.2f}")


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def run_timed(
    command: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 60.0
) -> tuple[float, int, str]:
    """Run ``command``; ``(seconds, exit code, stdout)``."""
    started = time.perf_counter()
    done = subprocess.run(
        list(command),
        env=dict(env) if env is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return time.perf_counter() - started, done.returncode, done.stdout + done.stderr


def probe_command() -> list[str]:
    """The installed ``ts-health`` script next to this interpreter, else ``python -m``."""
    script = Path(sys.executable).parent / "ts-health"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "ts_health_handler"]


def probe_env(cache_dir: Path) -> dict[str, str]:
    """The environment for probe runs: byte-code cached (in ``cache_dir``, not in the
    checkout) as in an installed wheel, even when ``PYTHONDONTWRITEBYTECODE`` is set."""
    env = dict(os.environ)
    if env.pop("PYTHONDONTWRITEBYTECODE", None):
        env["PYTHONPYCACHEPREFIX"] = str(cache_dir)
    return env


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of process ``pid`` so far (from ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve_process(
    inference: str, management: str, state: Path, *options: str
) -> Iterator[tuple[int, str]]:
    """``ts-health serve`` on a free loopback port, with ``options`` (``--interval 1``, ...);
    yields its pid and ``host:port``, and stops it (SIGTERM, then SIGKILL) on exit."""
    port = free_port()
    command = [*probe_command(), "serve", "--listen", f"127.0.0.1:{port}"]
    command += ["--inference-url", inference, "--management-url", management]
    command += ["--state-dir", str(state), *options]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        if "listening on" not in line:
            raise SystemExit(f"ts-health serve did not start: {line}")
        yield process.pid, f"127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
