"""``ts-health serve``'s observer survives whatever one look raises: the error is kept in the
snapshot as one redacted line, and the next interval looks again."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.describes import describe
from tests.support.fake_torchserve import FakeTorchServe, running
from tests.support.serve_support import eventually, options, settings_for
from ts_health_handler.monitor._exit import ExitCode
from ts_health_handler.monitor._observe import PingResult
from ts_health_handler.serve import _observer
from ts_health_handler.serve._observer import DESCRIBE_THREADS, Observer, _Pool
from ts_health_handler.torchserve._client import TorchServeClient

TOKEN = "tok-91c4e07d5ab2"
KEY = 'k"ey\\from-the-file'


@pytest.fixture
def fake() -> Iterator[FakeTorchServe]:
    with running() as server:
        server.on("/ping", (200, {"status": "Healthy"}))
        server.on("/models?limit=100", (200, {"models": [{"modelName": "m"}]}))
        server.on("/models/m", (200, describe("READY")))
        server.on("/models/m/1.0?customized=true", (200, describe("READY")))
        yield server


def failing(times: int, real: Callable[..., Any], counts: list[int]) -> Callable[..., Any]:
    """``real``, raising an exception no one expects on its first ``times`` calls."""
    lock = threading.Lock()

    def call(*args: Any, **kwargs: Any) -> Any:
        with lock:
            counts.append(1)
            fail = len(counts) <= times
        if fail:
            raise RuntimeError(f"boom\nwith {TOKEN} in it")
        return real(*args, **kwargs)

    return call


def test_a_pool_thread_outlives_a_job_that_raises() -> None:
    pool = _Pool(1, "test-pool")
    pool.start()
    ran = threading.Event()
    try:
        assert pool.submit("bad", lambda: 1 / 0)
        assert pool.submit("good", ran.set)
        assert ran.wait(10), "the pool's one thread ended with the job that raised"
    finally:
        pool.stop()


def test_the_observer_looks_again_after_looks_that_raise(
    fake: FakeTorchServe, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pings: list[int] = []
    looks: list[int] = []
    listings: list[int] = []
    # Enough failures to end every thread of both pools, as one odd header did.
    monkeypatch.setattr(_observer, "ask_ping", failing(3, _observer.ask_ping, pings))
    monkeypatch.setattr(
        _observer, "observe_model", failing(DESCRIBE_THREADS + 1, _observer.observe_model, looks)
    )
    monkeypatch.setattr(TorchServeClient, "models", failing(1, TorchServeClient.models, listings))
    settings = settings_for(fake.url, state_dir=tmp_path)
    observer = Observer(settings, options(interval=0.05, stale_after=3.0))
    observer.start()
    try:
        seen = eventually(
            lambda: (
                (s := observer.snapshot).ping is not None
                and s.ping.healthy
                and s.names == ("m",)
                and "m" in s.models
                and s.models["m"].healths
                and s
            ),
            what="a healthy ping, the model list and the model after the failures",
        )
    finally:
        observer.stop()
    assert seen.errors["ping"] == 3
    assert seen.errors["models"] == 1
    assert seen.errors["model"] == DESCRIBE_THREADS + 1
    assert seen.models["m"].error is None


def test_an_unexpected_exception_is_kept_as_one_redacted_line(
    fake: FakeTorchServe, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_observer, "ask_ping", failing(10**9, _observer.ask_ping, []))
    monkeypatch.setattr(_observer, "observe_model", failing(10**9, _observer.observe_model, []))
    settings = settings_for(fake.url, state_dir=tmp_path)
    observer = Observer(settings, options(interval=0.05, stale_after=3.0), secrets={TOKEN})
    observer.start()
    try:
        seen = eventually(
            lambda: (s := observer.snapshot).ping is not None and "m" in s.models and s,
            what="a ping and a look, both failed",
        )
    finally:
        observer.stop()
    expected = "internal error: RuntimeError: boom with <redacted> in it"
    assert seen.ping == PingResult(error=expected, failure=ExitCode.INTERNAL)
    assert seen.models["m"].error == expected


def test_a_client_factory_that_raises_is_kept_and_tried_again(tmp_path: Path) -> None:
    calls: list[int] = []

    def factory(settings: Any) -> Any:
        calls.append(1)
        raise ValueError(f"no client today ({len(calls)})")

    observer = Observer(
        settings_for(state_dir=tmp_path), options(interval=0.05), client_factory=factory
    )
    observer.start()
    try:
        eventually(lambda: len(calls) >= 3, what="three rounds")
    finally:
        observer.stop()
    ping = observer.snapshot.ping
    assert ping is not None
    assert ping.failure is ExitCode.INTERNAL
    assert (ping.error or "").startswith("internal error: ValueError: no client today (")
    assert (observer.snapshot.names_error or "").startswith("internal error: ValueError")
