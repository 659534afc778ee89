"""Load: 4 workers, 2,000 requests at concurrency 32; every request answered 200, and the
request counters of the four status documents add up to what was sent and answered."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import ModuleType

import pytest

from tests.reliability.reliability_support import status_by_worker, worker_pids
from ts_health_handler.testing import TorchServe

pytestmark = pytest.mark.integration

WORKERS = 4
REQUESTS = 2000
CONCURRENCY = 32


def test_load_counters_add_up_over_four_workers(
    rel_server: TorchServe, rel_model: Callable[..., str], load: ModuleType
) -> None:
    name = rel_model(
        "empty_model",
        "load_model",
        {"minWorkers": WORKERS, "maxWorkers": WORKERS, "jobQueueSize": 4 * CONCURRENCY},
    )
    pids = set(worker_pids(rel_server, name))
    assert len(pids) == WORKERS

    assert rel_server.token is not None
    headers = {
        "Content-Type": "text/plain",
        "Authorization": f"Bearer {rel_server.token.inference}",
    }
    result = load.run_load(
        f"{rel_server.inference_url}/predictions/{name}",
        requests=REQUESTS,
        concurrency=CONCURRENCY,
        body=b"four",
        headers=headers,
        timeout=30,
        deadline_s=180,
        keep_bodies=True,
    )

    print(result.summary())
    assert result.sent == REQUESTS, result.summary()
    assert result.accounted(), result.summary()
    assert dict(result.errors) == {}, result.summary()
    assert dict(result.statuses) == {200: REQUESTS}, (result.summary(), result.samples)
    one = load.request_once(
        f"{rel_server.inference_url}/predictions/{name}",
        method="POST",
        body=b"four",
        headers=headers,
    )
    assert one.status == 200
    assert json.loads(one.body) == {"model": name, "ok": True, "bytes": 4}
    sent = REQUESTS + 1

    # TorchServe hands each customized describe to one worker (any idle one); each worker's
    # document holds its own cumulative counters. Ask until all four have answered.
    documents = status_by_worker(rel_server, name, pids, attempts=80)
    assert set(documents) == pids, f"only workers {sorted(documents)} of {sorted(pids)} answered"
    assert set(worker_pids(rel_server, name)) == pids, "a worker was replaced during the test"
    totals = {pid: doc["requests"]["total"] for pid, doc in documents.items()}
    failed = {pid: doc["requests"]["failed"] for pid, doc in documents.items()}
    print(f"requests per worker: {totals}")
    assert sum(totals.values()) == sent, totals
    assert sum(failed.values()) == 0, failed
    # Every worker took part (TorchServe spreads a queue over idle workers).
    assert all(total > 0 for total in totals.values()), totals
    for document in documents.values():
        assert document["status"] == "ready"
        assert document["requests"]["last_request_at"]
        # Describe requests are not counted: asking again changes nothing.
    again = status_by_worker(rel_server, name, pids, attempts=80)
    assert sum(doc["requests"]["total"] for doc in again.values()) == sent
