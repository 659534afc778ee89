"""What the tests of ``ts-health``'s commands share: a customized describe (the plain one is
``tests.support.describes.describe``), a run's result, the fixtures that run it in-process
against a fake TorchServe (activated by the conftest.py of tests/unit/probe and
tests/unit/cli), and failed initializations in a state directory."""

from __future__ import annotations

import io
import json
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.describes import describe
from tests.support.fake_torchserve import FakeTorchServe, running
from tests.support.key_files import SECRET
from tests.support.status_docs import status_doc
from ts_health_handler.cli import run
from ts_health_handler.monitor._output import Io
from ts_health_handler.record import ErrorInfo, InitRecord, StateStore, utc_iso

NOW = 1_750_000_000.0


def customized(metadata: Any, name: str = "m") -> list[dict[str, Any]]:
    entry = describe("READY", name=name)[0]
    entry["customizedMetadata"] = metadata
    return [entry]


def document(status: str = "ready", **extra: Any) -> dict[str, Any]:
    return status_doc(status, **extra)


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return [line for line in self.out.splitlines() + self.err.splitlines() if line]

    def json(self) -> Any:
        return json.loads(self.out)


def record_failures(
    state_dir: Path, failures: int, *, first_at: float = NOW - 10, retrying: bool = False
) -> None:
    store = StateStore(state_dir, "m", "1.0")
    for attempt in range(1, failures + 1):
        at = first_at + attempt - 1

        def fail(previous: InitRecord | None, at: float = at, attempt: int = attempt) -> InitRecord:
            started = InitRecord.started(
                previous, model_name="m", model_version="1.0", now=at, worker_pid=100, server="1"
            )
            error = ErrorInfo("builtins.ValueError", "weights missing", utc_iso(at), attempt)
            return started.failed(error, now=at + 0.5, duration_s=0.5, worker_pid=100)

        store.update(fail)
    if retrying:
        store.update(
            lambda previous: InitRecord.started(
                previous, model_name="m", model_version="1.0", now=NOW, worker_pid=101, server="1"
            )
        )


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


BIN = Path(sys.executable).parent


@pytest.fixture
def fake() -> Iterator[FakeTorchServe]:
    with running() as server:
        server.on("/ping", (200, {"status": "Healthy"}))
        server.on("/models?limit=100", (200, {"models": [{"modelName": "m", "modelUrl": "m.mar"}]}))
        server.on("/models/m", (200, describe("READY")))
        server.on("/models/m/1.0?customized=true", (200, customized(document())))
        yield server


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    return path


@pytest.fixture
def ts_health(
    fake: FakeTorchServe, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Result]:
    """Run ``ts-health`` in-process against ``fake``; connection options go last."""

    def call(
        *argv: str,
        env: dict[str, str] | None = None,
        connect: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall: Callable[[], float] = time.time,
    ) -> Result:
        args = list(argv)
        if connect:
            args += ["--inference-url", fake.url, "--management-url", fake.url]
            args += ["--state-dir", str(state_dir)]
        stdout, stderr = io.StringIO(), io.StringIO()
        code = run(
            args,
            environ=env or {},
            io=Io(stdout, stderr, clock=clock, wall=wall, sleep=sleep),
        )
        # argparse writes --help and usage errors to sys.stdout / sys.stderr itself.
        captured = capsys.readouterr()
        result = Result(code, stdout.getvalue() + captured.out, stderr.getvalue() + captured.err)
        assert "Traceback" not in result.out + result.err
        assert SECRET not in result.out + result.err
        return result

    return call
