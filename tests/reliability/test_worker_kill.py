"""Fault: ``kill -9`` one worker process during load.

TorchServe restarts the worker; the persisted record counts the new attempt and the new
worker's status document shows it; every request sent got an answer (200, or an explicit
HTTP error with TorchServe's JSON error body), none hung or vanished.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.reliability.reliability_support import (
    in_process_group,
    record_path,
    status_by_worker,
    worker_pids,
)
from ts_health_handler.record import parse_iso
from ts_health_handler.testing import TorchServe, wait_for

pytestmark = pytest.mark.integration

WORKERS = 2
WARM = 600
REQUESTS = 3000
CONCURRENCY = 16
#: What TorchServe 0.12 answers a request whose worker died under it: 507
#: ``{"code": 507, "type": "InternalServerException", "message": "Worker died."}`` (seen);
#: 500 and 503 are TorchServe's other explicit errors.
EXPLICIT_ERRORS = {500, 503, 507}


def test_kill_9_worker_during_load(
    rel_server: TorchServe,
    rel_model: Callable[..., str],
    rel_state_dir: Path,
    load: ModuleType,
) -> None:
    name = rel_model("empty_model", "kill_model", {"minWorkers": WORKERS, "maxWorkers": WORKERS})
    before = worker_pids(rel_server, name)
    assert len(before) == WORKERS
    record = json.loads(record_path(rel_state_dir, name).read_text(encoding="utf-8"))
    assert record["attempts"] == WORKERS
    assert record["failures"] == 0
    victim = before[0]
    # Only a process of the server this test started, found by its pid: never by name.
    assert in_process_group(victim, rel_server.pid), f"{victim} is not our server's worker"

    assert rel_server.token is not None
    url = f"{rel_server.inference_url}/predictions/{name}"
    headers = {
        "Content-Type": "text/plain",
        "Authorization": f"Bearer {rel_server.token.inference}",
    }
    # Phase 1, no fault: what each worker has counted before the kill.
    warm = load.run_load(url, requests=WARM, concurrency=CONCURRENCY, headers=headers)
    assert dict(warm.statuses) == {200: WARM}, warm.summary()
    counted_before = {
        pid: doc["requests"]["total"]
        for pid, doc in status_by_worker(rel_server, name, set(before)).items()
    }
    assert set(counted_before) == set(before)
    assert sum(counted_before.values()) == WARM
    outcome: dict[str, Any] = {}

    def send() -> None:
        outcome["result"] = load.run_load(
            url,
            requests=REQUESTS,
            concurrency=CONCURRENCY,
            body=b"kill",
            headers=headers,
            timeout=60,
            deadline_s=240,
            keep_bodies=True,
        )

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    time.sleep(0.7)  # load is flowing through both workers
    assert sender.is_alive(), "the load finished before the kill; send more requests"
    killed_at = time.time()
    os.kill(victim, signal.SIGKILL)
    killed_during_load = sender.is_alive()
    sender.join(timeout=300)
    assert not sender.is_alive(), "the load generator hung"
    assert killed_during_load
    result = outcome["result"]
    print(result.summary(), result.samples)

    # Every request sent got exactly one answer: an HTTP status; none timed out or was cut.
    assert result.sent == REQUESTS, result.summary()
    assert result.accounted(), result.summary()
    assert dict(result.errors) == {}, result.summary()
    assert set(result.statuses) <= {200} | EXPLICIT_ERRORS, result.summary()
    for status, body in result.samples:  # non-200 answers are TorchServe's JSON errors
        error = json.loads(body)
        assert error["code"] == int(status), body
        assert error["message"], body
    # Only what was inside the killed worker can fail: a handful, never a queue's worth.
    assert REQUESTS - result.ok <= CONCURRENCY, result.summary()

    # TorchServe restarts the worker: a new pid, READY again.
    def replaced() -> list[int] | None:
        pids = worker_pids(rel_server, name)
        statuses = rel_server.worker_statuses(name)
        fresh = victim not in pids and len(pids) == WORKERS
        return pids if fresh and statuses.count("READY") == WORKERS else None

    after = wait_for(replaced, timeout=90, interval=0.5, what="the killed worker's replacement")
    new = set(after) - set(before)
    assert len(new) == 1, (before, after)
    survivor = (set(before) - {victim}).pop()
    assert survivor in after

    # The record counts the restart as an attempt, not as a failed initialization.
    record = json.loads(record_path(rel_state_dir, name).read_text(encoding="utf-8"))
    assert record["attempts"] == WORKERS + 1, record
    assert record["failures"] == 0, record
    assert record["phase"] == "ready"
    documents = status_by_worker(rel_server, name, set(after))
    assert set(documents) == set(after)
    fresh = documents[new.pop()]
    assert fresh["status"] == "ready"
    assert fresh["initialization"]["attempt"] == 2  # its worker thread's second process
    assert fresh["initialization"]["history"]["attempts"] == WORKERS + 1
    assert fresh["initialization"]["history"]["failures"] == 0
    assert parse_iso(fresh["worker"]["started_at"]) >= killed_at - 1
    old = documents[survivor]
    assert old["initialization"]["attempt"] == 1
    # Counters: the survivor and the replacement counted what they served; the killed worker
    # served its count from phase 1 and then some more until it died. Nothing is counted twice
    # and nothing answered 200 is missing from the sum.
    survivor_total = old["requests"]["total"]
    fresh_total = fresh["requests"]["total"]
    assert survivor_total >= counted_before[survivor]
    served_known = survivor_total + fresh_total + counted_before[victim]
    answered_ok = WARM + result.ok
    print(
        f"survivor {survivor_total}, replacement {fresh_total}, victim before the kill "
        f"{counted_before[victim]}; answered 200: {answered_ok}"
    )
    assert served_known <= answered_ok
    # What is left is what the victim served between phase 1 and its death: at most what
    # was answered during phase 2.
    assert answered_ok - served_known <= result.ok
    # After the restart, both workers serve again.
    answer = rel_server.infer(name, b"x", headers={"Content-Type": "text/plain"}, timeout=30)
    assert answer.status == 200, answer.text
