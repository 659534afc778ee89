"""``ts-health`` (the console script, as a Kubernetes exec probe runs it) against TorchServe 0.12.

Covers every state word the probe gives a model on a real server: ready, initializing, failing
(with the reason from the persisted record), unhealthy (past ``maxRetryTimeoutInSec``),
saturated, degraded; ``wait`` in both directions; and token authorization.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.support.probe_cli import state_of, ts_health
from ts_health_handler.testing import TorchServe, wait_for

pytestmark = pytest.mark.integration

#: What examples/failing_model's initialize() raises.
REASON = "model-config.yml has no handler.answer"


@pytest.fixture
def probe(shared_server: TorchServe, shared_state_dir: Path) -> Callable[..., Any]:
    def call(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return ts_health(shared_server, *args, state_dir=shared_state_dir, **kwargs)

    return call


@pytest.fixture
def unregister_after(shared_server: TorchServe) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        shared_server.unregister(name, check=False)


def test_ready(probe: Callable[..., Any], registered: Callable[..., str]) -> None:
    name = registered("empty_model")
    done = probe("ready", name)
    assert done.returncode == 0, done
    assert done.stdout.startswith(f"ready: model {name} 1.0: 1/1 workers READY, 0 pending")
    assert "health status unknown" not in done.stdout

    data = json.loads(probe("status", name, "--json").stdout)
    model = data["models"][0]
    assert model["state"] == "ready"
    assert model["status"]["status"] == "ready"
    assert model["initialization"]["phase"] == "ready"
    assert data["server"]["ping"] == {"healthy": True, "status": "Healthy"}
    assert probe("ping").returncode == 0


def test_degraded(probe: Callable[..., Any], registered: Callable[..., str]) -> None:
    name = registered("degraded_model")
    done = probe("ready", name)
    assert done.returncode == 1, done
    assert done.stdout.startswith(f"degraded: model {name} 1.0: health check failed")
    assert probe("ready", name, "--allow-degraded").returncode == 0


def test_saturated(
    shared_server: TorchServe, probe: Callable[..., Any], registered: Callable[..., str]
) -> None:
    name = registered("slow_model")  # 2 s per request, job queue of 2
    burst = 6
    start = threading.Barrier(burst)

    def more() -> int:
        return shared_server.infer(
            name, b"x", headers={"Content-Type": "text/plain"}, timeout=60
        ).status

    def one(_: int) -> int:
        start.wait(timeout=30)
        return more()

    seen: list[subprocess.CompletedProcess[str]] = []
    with ThreadPoolExecutor(max_workers=burst + 32) as pool:
        futures = [pool.submit(one, i) for i in range(burst)]

        def saturated() -> bool:
            seen.append(probe("ready", name, "--describe-timeout", "0.5"))
            if state_of(seen[-1]) == "saturated":
                return True
            # The queue is full only while the worker is busy and 2 requests wait. A burst
            # that fills it before the worker takes its first request leaves a slot free for
            # the whole 2 s: one more request fills it.
            futures.append(pool.submit(more))
            return False

        wait_for(saturated, timeout=20, interval=0.05, what=f"ts-health to see {name} saturated")
        for future in list(futures):
            future.result(timeout=120)
    done = seen[-1]
    assert done.returncode == 1, done
    assert "job queue full: 2 pending, 0 free" in done.stdout, done.stdout
    wait_for(lambda: probe("ready", name).returncode == 0, timeout=30, what="the queue to drain")


def test_initializing_then_wait_until_ready(
    shared_server: TorchServe,
    shared_store: Path,
    probe: Callable[..., Any],
    build_mar: Callable[..., Path],
    unregister_after: list[str],
) -> None:
    name = "probe_slow_init"
    changes = {"health": {"faults": {"initialize_delay_s": 8}}}
    mar = build_mar("empty_model", shared_store, name=name, changes=changes)
    shared_server.register(mar.name, synchronous=False)
    unregister_after.append(name)

    done = probe("ready", name)
    assert done.returncode == 1, done
    assert state_of(done) == "initializing", done.stdout
    assert "no READY worker yet (0/1 workers READY" in done.stdout

    started = time.monotonic()
    done = probe("wait", name, "--timeout", "90", "--interval", "0.5")
    assert done.returncode == 0, done
    assert done.stdout.startswith(f"ready: model {name} 1.0:")
    assert time.monotonic() - started < 60


def test_failing_shows_the_reason_and_wait_gives_up(
    shared_server: TorchServe,
    shared_store: Path,
    probe: Callable[..., Any],
    build_mar: Callable[..., Path],
    unregister_after: list[str],
) -> None:
    name = "probe_failing"
    # TorchServe's default retry window (300 s): failing, not unhealthy, for this whole test.
    mar = build_mar(
        "failing_model", shared_store, name=name, changes={"maxRetryTimeoutInSec": None}
    )
    # Asynchronous: synchronously registered, a failing model is never retried by 0.12.
    shared_server.register(mar.name, synchronous=False)
    unregister_after.append(name)

    outputs: list[subprocess.CompletedProcess[str]] = []

    def failing() -> bool:
        outputs.append(probe("ready", name))
        return state_of(outputs[-1]) == "failing"

    wait_for(failing, timeout=60, interval=0.25, what=f"ts-health to see {name} failing")
    done = outputs[-1]
    assert done.returncode == 1, done
    assert done.stdout.startswith(f"failing: model {name} 1.0: initialization failed ")
    assert f"InitializationError: {REASON}" in done.stdout, done.stdout
    assert done.stdout.count("\n") == 1

    data = json.loads(probe("status", name, "--json").stdout)
    model = data["models"][0]
    assert model["state"] == "failing"
    assert model["initialization"]["failures"] >= 1
    assert REASON in model["initialization"]["last_error"]["message"]
    assert model["status"] is None  # no worker to ask

    started = time.monotonic()
    done = probe("wait", name, "--timeout", "3")
    assert done.returncode == 1, done
    assert done.stdout.startswith(f"timed out after 3 s waiting for model {name}: failing: ")
    assert REASON in done.stdout
    assert time.monotonic() - started < 15

    done = probe("wait", name, "--timeout", "60", "--fail-fast")
    assert done.returncode == 1, done
    assert state_of(done) == "failing"


def test_unknown_model(probe: Callable[..., Any], shared_server: TorchServe) -> None:
    done = probe("ready", "no_such_model")
    assert done.returncode == 2, done
    assert done.stderr.strip() == (
        f"ts-health: error: model 'no_such_model' is not registered with the management API "
        f"at {shared_server.management_url} (404 ModelNotFoundException: Model not found: "
        "no_such_model)"
    )


@pytest.mark.own_server
def test_unhealthy_with_token_auth(
    tmp_path: Path, build_mar: Callable[..., Path], serve_own: Callable[..., Any]
) -> None:
    store, state = tmp_path / "store", tmp_path / "state"
    window = 6
    mar = build_mar("failing_model", store, changes={"maxRetryTimeoutInSec": window})
    name = "failing_model"
    with serve_own(store, state_dir=state, token_auth=True) as server:
        key_file = server.workdir / "key_file.json"

        def run(*args: str, key: Path | None = key_file) -> subprocess.CompletedProcess[str]:
            return ts_health(server, *args, state_dir=state, key_file=key)

        # Token authorization: /ping wants the inference key, describe the management key.
        refused = run("ping", key=None)
        assert refused.returncode == 2, refused
        assert "wants a token for GET /ping (400 InvalidKeyException" in refused.stderr
        assert run("ping").returncode == 0
        keys = json.loads(key_file.read_text(encoding="utf-8"))
        for section in ("management", "inference"):
            assert keys[section]["key"] not in refused.stdout + refused.stderr

        server.register(mar.name, synchronous=False)
        started = time.monotonic()
        done = run("wait", name, "--timeout", str(window + 60), "--interval", "0.5")
        # wait stops at unhealthy: the first failure is older than maxRetryTimeoutInSec.
        assert done.returncode == 1, done
        assert done.stdout.startswith(f"unhealthy: model {name} 1.0: initialization failed ")
        assert f"past maxRetryTimeoutInSec={window}" in done.stdout
        assert REASON in done.stdout
        assert window * 0.9 <= time.monotonic() - started < window + 60

        # TorchServe agrees soon after: /ping 500, and status says why.
        wait_for(lambda: run("ping").returncode == 1, timeout=30, what="/ping 500")
        done = run("status", "--json")
        assert done.returncode == 1, done
        data = json.loads(done.stdout)
        assert data["server"]["ping"] == {"healthy": False, "status": "Unhealthy"}
        (model,) = data["models"]
        assert model["state"] == "unhealthy"
        assert REASON in model["reason"]
        table = run("status")
        assert table.returncode == 1
        assert "/ping Unhealthy" in table.stdout.splitlines()[0]
        assert " unhealthy " in table.stdout
