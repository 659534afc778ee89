"""Models whose initialize() keeps failing, as TorchServe 0.12 and the init record see them."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ts_health_handler.testing import TorchServe, wait_for

pytestmark = pytest.mark.integration

REASON = "model-config.yml has no handler.answer"
#: Small enough for a quick test, large enough to see /ping healthy first.
MAX_RETRY_S = 6
#: Retries to watch while /ping must stay healthy (back-off 1, 1, 2, ... s).
RETRIES = 3


@pytest.mark.own_server
def test_ping_turns_unhealthy_after_max_retry_timeout(
    tmp_path: Path,
    build_mar: Callable[..., Path],
    read_record: Callable[..., Any],
    serve_own: Callable[..., Any],
) -> None:
    store, state = tmp_path / "store", tmp_path / "state"
    mar = build_mar("failing_model", store, changes={"maxRetryTimeoutInSec": MAX_RETRY_S})
    name = "failing_model"
    with serve_own(store, state_dir=state) as server:
        # Asynchronous: a synchronous registration of a failing model gets 500 at once and
        # TorchServe 0.12 then never retries its worker.
        registered_at = time.monotonic()
        server.register(mar.name, synchronous=False)
        assert server.ping() == (200, {"status": "Healthy"})

        seen: list[tuple[float, int, Any, list[str]]] = []

        def unhealthy() -> bool:
            code, body = server.ping()
            workers = server.worker_statuses(name)
            seen.append((time.monotonic() - registered_at, code, body, workers))
            return code == 500

        wait_for(unhealthy, timeout=MAX_RETRY_S + 60, interval=0.25, what="/ping 500")
        elapsed, _, body, _ = seen[-1]
        assert body == {"status": "Unhealthy"}
        # Healthy on every earlier ping, and not before the retry window had passed.
        assert all(c == 200 for _, c, _, _ in seen[:-1]), seen
        assert elapsed >= MAX_RETRY_S * 0.9, seen
        assert not any("READY" in workers for _, _, _, workers in seen), seen

        record = read_record(state, name)
        assert record is not None, "no init.json persisted"
        assert record["phase"] == "failed"
        assert record["attempts"] > 1, record
        assert record["failures"] == record["attempts"]
        assert record["attempts_to_ready"] is None
        assert REASON in record["last_error"]["message"], record["last_error"]
        assert record["last_error"]["type"].endswith("InitializationError")
        assert all(REASON in error["message"] for error in record["recent_errors"])


def test_ping_stays_healthy_while_retrying_without_max_retry_timeout(
    shared_server: TorchServe,
    shared_store: Path,
    shared_state_dir: Path,
    build_mar: Callable[..., Path],
    read_record: Callable[..., Any],
) -> None:
    name = "failing_default_window"
    # No maxRetryTimeoutInSec: TorchServe's default window is 300 s.
    changes = {"maxRetryTimeoutInSec": None}
    mar = build_mar("failing_model", shared_store, name=name, changes=changes)
    shared_server.register(mar.name, synchronous=False)
    try:
        pings: list[tuple[int, Any]] = []
        workers: list[list[str]] = []

        def retried() -> bool:
            pings.append(shared_server.ping())
            workers.append(shared_server.worker_statuses(name))
            record = read_record(shared_state_dir, name)
            return record is not None and record["attempts"] >= 1 + RETRIES

        wait_for(retried, timeout=90, interval=0.25, what=f"{RETRIES} retries of {name}")
        assert pings, "no ping sent"
        assert all(ping == (200, {"status": "Healthy"}) for ping in pings), pings
        assert not any("READY" in statuses for statuses in workers), workers
        described = shared_server.describe(name)[0]
        assert described["maxRetryTimeoutInSec"] == 300
        record = read_record(shared_state_dir, name)
        assert record["phase"] in ("failed", "initializing")
        assert record["failures"] >= RETRIES
        assert REASON in record["last_error"]["message"]
    finally:
        shared_server.unregister(name, check=False)


def test_hold_policy_keeps_worker_ready_and_reports_failed(
    shared_server: TorchServe, registered: Callable[..., str]
) -> None:
    name = registered(
        "failing_model", name="failing_hold", changes={"health": {"on_init_failure": "hold"}}
    )
    assert shared_server.worker_statuses(name) == ["READY"]
    assert shared_server.ping() == (200, {"status": "Healthy"})
    doc = shared_server.status_document(name)
    assert doc["status"] == "failed", doc
    assert doc["initialization"]["phase"] == "failed"
    assert REASON in doc["initialization"]["error"]["message"]
    answer = shared_server.infer(name, b"x", headers={"Content-Type": "text/plain"})
    assert answer.status == 503, answer.text
    assert REASON in answer.text


def test_worker_killed_by_startup_timeout_is_recorded_as_a_failure(
    shared_server: TorchServe,
    shared_store: Path,
    shared_state_dir: Path,
    build_mar: Callable[..., Path],
    read_record: Callable[..., Any],
) -> None:
    # initialize() takes 4 s but TorchServe allows 2: it kills the worker mid-initialize(),
    # so no attempt ever reports a result itself; the next attempt must count the dead one.
    name = "killed_at_startup"
    changes = {
        "startupTimeout": 2,
        "health": {"faults": {"initialize_delay_s": 4}},
    }
    mar = build_mar("empty_model", shared_store, name=name, changes=changes)
    shared_server.register(mar.name, synchronous=False)
    try:

        def interrupted() -> dict[str, Any] | None:
            record = read_record(shared_state_dir, name)
            return record if record is not None and record["failures"] >= 1 else None

        record = wait_for(interrupted, timeout=60, interval=0.25, what=f"a failure of {name}")
        assert record["last_error"]["type"] == "WorkerDied", record
        assert "during initialize()" in record["last_error"]["message"]
        assert record["attempts"] >= 2
        assert record["attempts_to_ready"] is None
        assert shared_server.worker_statuses(name) != ["READY"]
    finally:
        shared_server.unregister(name, check=False)
