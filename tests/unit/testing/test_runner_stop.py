"""The runner stops what the server started, also the processes that left its group.

Real processes: a stand-in "frontend" leads its own process group (as ``serve()`` starts
TorchServe) and starts a "rank" in a session of its own, as torchrun does, with the server's
``TMPDIR`` inherited.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ts_health_handler._proc import read_stat
from ts_health_handler.testing._runner import _stop, _strays

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc (Linux)")

#: Starts a child in a new session (its pid on stdout), then sleeps.
FRONTEND = """
import subprocess, sys, time
child = subprocess.Popen(
    [sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True
)
print(child.pid, flush=True)
time.sleep(120)
"""


def alive(pid: int) -> bool:
    stat = read_stat(pid)
    return stat is not None and stat.state != "Z"


def start(temp_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
    environment = {**os.environ, "TMPDIR": str(temp_dir)}
    process = subprocess.Popen(
        [sys.executable, "-c", FRONTEND],
        env=environment,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert process.stdout is not None
    rank = int(process.stdout.readline())
    return process, rank


def test_a_process_that_left_the_group_is_stopped_with_the_server(tmp_path: Path) -> None:
    process, rank = start(tmp_path)
    try:
        stat = read_stat(rank)
        assert stat is not None
        assert stat.pgrp != process.pid  # not reached by killpg
        assert set(_strays(tmp_path)) == {process.pid, rank}
        _stop(process, tmp_path, timeout=5)
        deadline = time.monotonic() + 10
        while alive(rank) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(rank)
        assert process.poll() is not None
        assert _strays(tmp_path) == []
    finally:
        for pid in (process.pid, rank):
            if alive(pid):
                os.kill(pid, 9)
        process.wait(timeout=10)


def test_only_processes_with_this_servers_tmpdir_are_strays(tmp_path: Path) -> None:
    mine, other = tmp_path / "mine", tmp_path / "mine-not"
    mine.mkdir()
    other.mkdir()
    process, rank = start(other)
    try:
        assert _strays(mine) == []
        assert rank in _strays(other)
    finally:
        _stop(process, other, timeout=5)
        process.wait(timeout=10)
