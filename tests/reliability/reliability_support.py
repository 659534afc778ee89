"""Helpers shared by the reliability tests (imported by ``conftest.py`` and the tests)."""

from __future__ import annotations

import importlib.util
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from ts_health_handler._proc import read_stat
from ts_health_handler.record import StateStore
from ts_health_handler.testing import TorchServe

REPO = Path(__file__).resolve().parents[2]

#: Secret values put into the server's (and so every worker's) environment. None of them may
#: appear in a status document, a record or the probe's output.
SECRET_MARKER = "s3cr3t-marker-5f0c2a9e"
SECRET_ENV: Mapping[str, str] = {
    "TS_HEALTH_TEST_SECRET": SECRET_MARKER,
    "AWS_SECRET_ACCESS_KEY": f"aws-{SECRET_MARKER}",
    "HF_TOKEN": f"hf-{SECRET_MARKER}",
}
#: No system-metrics subprocess: less noise on a 2-core machine.
SERVER_CONFIG: Mapping[str, str] = {"disable_system_metrics": "true"}
#: Seconds any single probe run may take before the test fails (it is killed then).
PROBE_TIMEOUT_S = 60.0


def _load_generator() -> ModuleType:
    """``benchmarks/_load.py``, the load generator shared with the benchmarks."""
    name = "ts_health_bench_load"
    if name in sys.modules:
        return sys.modules[name]
    path = REPO / "benchmarks" / "_load.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


load_generator = _load_generator()


@dataclass(frozen=True)
class ProbeRun:
    code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_probe(
    args: list[str], *, env: Mapping[str, str] | None = None, timeout: float = PROBE_TIMEOUT_S
) -> ProbeRun:
    """Run ``ts-health ARGS`` as a fresh process (the installed script), bounded in time."""
    script = Path(sys.executable).parent / "ts-health"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "ts_health_handler"]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TS_HEALTH_")}
    environment.update(env or {})
    started = time.monotonic()
    done = subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
        check=False,
    )
    return ProbeRun(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


def record_path(state_dir: Path, name: str, version: str = "1.0") -> Path:
    """The record file of ``name`` ``version``: the newest (one server writes here)."""
    files = StateStore(state_dir, name, version).files()
    assert files, f"no record of {name} {version} under {state_dir}"
    return files[0]


def worker_pids(server: TorchServe, name: str) -> list[int]:
    """Pids of the model's workers from the management describe (``workers[].pid``)."""
    entry = server.describe(name)[0]
    return [int(w["pid"]) for w in entry.get("workers", []) if w.get("pid") not in (None, -1)]


def in_process_group(pid: int, pgid: int) -> bool:
    """Whether ``pid`` is a live process of process group ``pgid`` (our server's)."""
    stat = read_stat(pid)
    return stat is not None and stat.pgrp == pgid


def status_by_worker(
    server: TorchServe, name: str, pids: set[int], *, attempts: int = 60, timeout: float = 10.0
) -> dict[int, dict[str, Any]]:
    """Ask the customized describe (one worker answers each) until every pid in ``pids``
    has answered once; at most ``attempts`` describes. Returns ``{pid: status document}``."""
    seen: dict[int, dict[str, Any]] = {}
    for _ in range(attempts):
        document = server.status_document(name, timeout=timeout)
        seen[int(document["worker"]["pid"])] = document
        if pids <= set(seen):
            break
    return seen


# -- misbehaving servers ------------------------------------------------------------------


class BadServer:
    """A loopback TCP server that misbehaves on every connection, for at most ``lifetime_s``.

    Behaviours: ``garbage`` (reads the request, answers bytes that are not HTTP), ``close``
    (closes at once without reading), ``reset`` (reads, then resets the connection),
    ``silent`` (reads, never answers), ``not-json`` (a 200 whose body is not JSON),
    ``odd-length`` (a ``Content-Length`` of ``²``), ``deep-json`` (200,000 times ``[``),
    ``trickle-head`` / ``trickle-body`` (a status line or a head, then one byte every
    ``trickle_s`` seconds: a slow-loris answer that never completes).

    Used as a context manager; on exit every socket is closed and the threads end.
    """

    def __init__(self, behaviour: str, *, lifetime_s: float = 30.0, trickle_s: float = 0.2):
        self.behaviour = behaviour
        self.trickle_s = trickle_s
        self.stop = threading.Event()
        self.deadline = time.monotonic() + lifetime_s
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections = 0
        self.threads: list[threading.Thread] = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> BadServer:
        self.acceptor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.acceptor.join(timeout=5)
        for thread in self.threads:
            thread.join(timeout=5)
        self.listener.close()

    def _alive(self) -> bool:
        return not self.stop.is_set() and time.monotonic() < self.deadline

    def _accept(self) -> None:
        while self._alive():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._handle, args=(connection,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _read_request(self, connection: Any) -> None:
        connection.settimeout(2)
        data = b""
        while b"\r\n\r\n" not in data and len(data) < 65536:
            chunk = connection.recv(4096)
            if not chunk:
                return
            data += chunk

    def _handle(self, connection: Any) -> None:
        try:
            behaviour = self.behaviour
            if behaviour == "close":
                return
            self._read_request(connection)
            if behaviour == "garbage":
                connection.sendall(b"\x00\x13\x37 this is not HTTP at all\r\n\r\n")
            elif behaviour == "reset":
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif behaviour == "odd-length":  # "²" passes str.isdigit()
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\n{}")
            elif behaviour == "deep-json":  # deeper than Python's recursion limit
                connection.sendall(b"HTTP/1.1 200 OK\r\n\r\n" + b"[" * 200_000)
            elif behaviour == "not-json":
                body = b"<html>hello</html>"
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
                    + str(len(body)).encode()
                    + b"\r\n\r\n"
                    + body
                )
            elif behaviour == "silent":
                self.stop.wait(max(0.0, self.deadline - time.monotonic()))
            elif behaviour in ("trickle-head", "trickle-body"):
                if behaviour == "trickle-head":
                    connection.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                else:
                    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n[")
                while self._alive():
                    connection.sendall(b" ")
                    self.stop.wait(self.trickle_s)
            else:  # pragma: no cover - a typo in a test
                raise ValueError(behaviour)
        except OSError:
            pass
        finally:
            connection.close()
