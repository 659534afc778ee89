"""The truth after READY, against a real TorchServe 0.12: a hung request, a slow but healthy
model, a poisoned worker under both policies, deaths while serving.

TorchServe describes every worker here as READY and ``/ping`` stays Healthy throughout; each
test asserts what ``ts-health`` says instead. ``examples/troubled_model`` misbehaves on request.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.support.probe_cli import state_of, ts_health
from tests.support.serve_support import ServeProcess, eventually
from ts_health_handler.record import StateStore, read_record
from ts_health_handler.testing import TorchServe, wait_for

pytestmark = pytest.mark.integration

#: Fast beats and a short stuck threshold, so that a test sees in seconds what a default
#: configuration sees in a minute and a half.
FAST: Mapping[str, Any] = {"heartbeat_interval_s": 0.5, "stuck_after_s": 3}


@pytest.fixture
def troubled(
    shared_server: TorchServe, shared_store: Path, build_mar: Callable[..., Path]
) -> Iterator[Callable[..., str]]:
    """``troubled(name, response_timeout=120, **health)``: registered and READY."""
    names: list[str] = []

    def register(name: str, response_timeout: int = 120, **health: Any) -> str:
        changes = {"responseTimeout": response_timeout, "health": {**FAST, **health}}
        mar = build_mar("troubled_model", shared_store, name=name, changes=changes)
        shared_server.register(mar.name, initial_workers=1, synchronous=True)
        shared_server.wait_until_ready(name, timeout=120)
        names.append(name)
        return name

    yield register
    for name in names:
        shared_server.unregister(name, check=False)


def send(server: TorchServe, name: str, body: str, timeout: float = 120) -> threading.Thread:
    """Send one request in the background (it may hang, fail or kill the worker)."""

    def run() -> None:
        try:
            server.infer(name, body, timeout=timeout)
        except Exception:  # a killed worker answers with a reset or an error; both are fine
            return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def model_json(server: TorchServe, state: Path, name: str) -> dict[str, Any]:
    done = ts_health(server, "status", name, "--json", state_dir=state)
    return json.loads(done.stdout)["models"][0]


def test_a_hung_request_is_stuck_then_recovers_after_response_timeout(
    troubled: Callable[..., str], shared_server: TorchServe, shared_state_dir: Path
) -> None:
    name = troubled("hung", response_timeout=15)
    assert state_of(ts_health(shared_server, "ready", name, state_dir=shared_state_dir)) == "ready"
    hung = send(shared_server, name, "hang", timeout=60)
    started = time.monotonic()
    wait_for(
        lambda: (
            state_of(ts_health(shared_server, "ready", name, state_dir=shared_state_dir)) == "stuck"
        ),
        timeout=30,
        what="stuck",
    )
    seen_after = time.monotonic() - started
    done = ts_health(shared_server, "ready", name, state_dir=shared_state_dir)
    assert done.returncode == 1, done
    assert "one request has run for" in done.stdout
    assert "TorchServe kills the worker at responseTimeout 15 s" in done.stdout
    # TorchServe still calls it READY, and /ping Healthy.
    assert shared_server.worker_statuses(name) == ["READY"]
    assert shared_server.ping()[0] == 200
    # Looking again and again leaves no describe of ours waiting behind the hung request.
    for _ in range(6):
        model = model_json(shared_server, shared_state_dir, name)
        assert model["state"] == "stuck", model
        assert model["queue"]["pending"] <= 1, model
    # TorchServe ends the worker at responseTimeout and starts another: ready again, and the
    # record says what happened.
    hung.join(timeout=60)
    shared_server.wait_until_ready(name, timeout=90)
    wait_for(
        lambda: (
            state_of(ts_health(shared_server, "ready", name, state_dir=shared_state_dir)) == "ready"
        ),
        timeout=30,
        what="ready again",
    )
    done = ts_health(shared_server, "status", name, state_dir=shared_state_dir)
    assert "killed by TorchServe at responseTimeout" in done.stdout, done.stdout
    assert seen_after < 3 + 0.5 + 10, seen_after


#: How long the next test keeps a worker hung while the probe and serve look every second.
HUNG_FOR_S = 100


def test_a_hung_worker_holds_at_most_one_describe_of_ours(
    troubled: Callable[..., str],
    shared_server: TorchServe,
    shared_state_dir: Path,
    serve_process: Callable[..., ServeProcess],
) -> None:
    name = troubled("held", response_timeout=HUNG_FOR_S + 60)
    app = serve_process(
        [
            "--inference-url",
            shared_server.inference_url,
            "--management-url",
            shared_server.management_url,
            "--interval",
            "1",
            "--model",
            name,
        ],
        {"TS_HEALTH_STATE_DIR": str(shared_state_dir)},
    )
    eventually(lambda: app.get(f"/v2/models/{name}/ready").status == 200, 30, "serve: ready")
    send(shared_server, name, "hang", timeout=HUNG_FOR_S + 120)
    reply = eventually(
        lambda: (r := app.get(f"/v2/models/{name}/ready")).status == 503 and r,
        3 + 1 + 10,
        "serve: not ready",
    )
    assert reply.json()["state"] == "stuck", reply.json()
    # The probe in a loop beside serve's 1-s interval, for minutes: TorchServe's queue for
    # the model never holds more than one describe of ours (nothing else is sent to it).
    pending = []
    deadline = time.monotonic() + HUNG_FOR_S
    while time.monotonic() < deadline:
        assert state_of(ts_health(shared_server, "ready", name, state_dir=shared_state_dir)) == (
            "stuck"
        )
        queue = shared_server.describe(name)[0]["jobQueueStatus"]
        pending.append(queue["pendingRequests"])
        time.sleep(1)
    assert max(pending) <= 1, pending
    assert len(pending) >= HUNG_FOR_S // 4, pending


def test_long_legitimate_requests_are_never_alarmed(
    troubled: Callable[..., str], shared_server: TorchServe, shared_state_dir: Path
) -> None:
    # The default threshold follows responseTimeout (3/4 of it): 8-s requests are fine.
    name = troubled("patient", response_timeout=60, stuck_after_s=None)
    for _ in range(2):
        slow = send(shared_server, name, "sleep:8", timeout=60)
        while slow.is_alive():
            done = ts_health(shared_server, "ready", name, state_dir=shared_state_dir)
            assert done.returncode == 0, done
            slow.join(timeout=1)


def test_a_poisoned_worker_is_failing_under_report(
    troubled: Callable[..., str], shared_server: TorchServe, shared_state_dir: Path
) -> None:
    name = troubled("poisoned")
    assert shared_server.infer(name, "poison").status >= 400
    wait_for(
        lambda: (
            state_of(ts_health(shared_server, "ready", name, state_dir=shared_state_dir))
            == "failing"
        ),
        timeout=20,
        what="failing",
    )
    done = ts_health(shared_server, "ready", name, state_dir=shared_state_dir)
    assert "fatal error, health.on_fatal_error: report" in done.stdout, done.stdout
    assert "device-side assert triggered" in done.stdout
    assert shared_server.worker_statuses(name) == ["READY"]


def test_a_poisoned_worker_restarts_under_restart(
    troubled: Callable[..., str],
    shared_server: TorchServe,
    shared_state_dir: Path,
) -> None:
    name = troubled("restarted", on_fatal_error="restart")
    pid = shared_server.describe(name)[0]["workers"][0]["pid"]
    answer = shared_server.infer(name, "poison")
    assert answer.status >= 400, answer  # the failing request is answered first
    wait_for(
        lambda: (
            shared_server.describe(name)[0]["workers"][0]["pid"] not in (pid, None)
            and shared_server.worker_statuses(name) == ["READY"]
        ),
        timeout=60,
        what="a fresh worker process",
    )
    assert shared_server.infer(name, "hello").status == 200  # a fresh context serves again
    model = model_json(shared_server, shared_state_dir, name)
    assert model["state"] == "ready", model
    assert "restarted after a fatal error: RuntimeError: CUDA error" in model["reason"], model
    deaths = model["initialization"]["deaths"]
    assert [d["cause"] for d in deaths] == ["fatal_restart"], deaths


def test_three_deaths_while_serving_make_it_unstable(
    troubled: Callable[..., str], shared_server: TorchServe, shared_state_dir: Path
) -> None:
    name = troubled("fragile")
    for count in (1, 2, 3):
        pid = shared_server.describe(name)[0]["workers"][0]["pid"]
        send(shared_server, name, "die", timeout=30).join(timeout=30)
        wait_for(
            lambda p=pid: (
                shared_server.describe(name)[0]["workers"][0]["pid"] not in (p, None)
                and shared_server.worker_statuses(name) == ["READY"]
            ),
            timeout=60,
            what=f"worker back after death {count}",
        )
    wait_for(
        lambda: len(records(shared_state_dir, name)[0].deaths) == 3,
        timeout=10,
        what="three recorded deaths",
    )
    done = ts_health(shared_server, "ready", name, state_dir=shared_state_dir)
    assert state_of(done) == "unstable", done.stdout
    assert "a worker died 3 times in the last 10 min while serving" in done.stdout
    # Each request killed its process at once: its beat was written before the handler ran.
    assert "(last: during a request, 0.0 s in when last seen)" in done.stdout, done.stdout
    model = model_json(shared_server, shared_state_dir, name)
    assert model["initialization"]["deaths_total"] == 3, model
    deaths = model["initialization"]["deaths"]
    assert [(d["cause"], d["request_s"] is not None) for d in deaths] == [("died", True)] * 3


def records(state: Path, name: str) -> list[Any]:
    found = [read_record(p) for p in StateStore(state, name, "1.0").files()]
    return [r for r in found if r is not None]
