"""A slow model with a job queue of 2 under a burst: shed load with 503, /ping stays 200."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from ts_health_handler.testing import HttpResponse, TorchServe, wait_for

pytestmark = pytest.mark.integration

#: Matches examples/slow_model/model-config.yml.
QUEUE = 2
DELAY_S = 2
BURST = 8


def test_burst_beyond_queue_gets_503_and_ping_stays_healthy(
    shared_server: TorchServe, registered: Callable[..., str]
) -> None:
    name = registered("slow_model")
    idle = shared_server.describe(name)[0]["jobQueueStatus"]
    # The model's own jobQueueSize (model-config.yml) overrides the server's job_queue_size.
    assert idle == {"remainingCapacity": QUEUE, "pendingRequests": 0}
    served_before = shared_server.status_document(name)["requests"]["total"]

    start = threading.Barrier(BURST)

    def one(_: int) -> HttpResponse:
        start.wait(timeout=30)
        return shared_server.infer(name, b"x", headers={"Content-Type": "text/plain"}, timeout=60)

    with ThreadPoolExecutor(max_workers=BURST) as pool:
        futures = [pool.submit(one, i) for i in range(BURST)]
        # While the burst is served (about (1 + QUEUE) * DELAY_S seconds), the queue is full.
        full = wait_for(
            lambda: shared_server.describe(name)[0]["jobQueueStatus"]["remainingCapacity"] == 0,
            timeout=(1 + QUEUE) * DELAY_S,
            interval=0.1,
            what="remainingCapacity 0 during the burst",
        )
        assert full
        during = shared_server.ping()
        answers = [future.result(timeout=120) for future in futures]

    assert during == (200, {"status": "Healthy"})
    codes = sorted(answer.status for answer in answers)
    assert set(codes) <= {200, 503}, [(a.status, a.text) for a in answers]
    rejected = [a for a in answers if a.status == 503]
    accepted = [a for a in answers if a.status == 200]
    assert rejected, f"no request was shed: {codes}"
    assert accepted, f"no request was served: {codes}"
    # One request in the worker plus a full queue; a little slack for a request taken early.
    assert len(accepted) <= 1 + QUEUE + 1, codes
    for answer in rejected:
        body = answer.json()
        assert body["code"] == 503
        assert body["type"] == "ServiceUnavailableException", body
    for answer in accepted:
        assert answer.json() == {"slow": True}

    assert shared_server.ping() == (200, {"status": "Healthy"})
    # Once drained, the queue is empty again and the status document counted what was served.
    wait_for(
        lambda: shared_server.describe(name)[0]["jobQueueStatus"]["remainingCapacity"] == QUEUE,
        timeout=30,
        what="the job queue to drain",
    )
    doc = shared_server.status_document(name)
    assert doc["status"] == "ready"
    assert doc["requests"]["total"] - served_before == len(accepted)
    assert doc["faults"] == {"inference_delay_s": DELAY_S}


def test_slow_model_single_request_takes_the_delay(
    shared_server: TorchServe, registered: Callable[..., str]
) -> None:
    name = registered("slow_model")
    started = time.monotonic()
    answer = shared_server.infer(name, b"x", headers={"Content-Type": "text/plain"})
    elapsed = time.monotonic() - started
    assert answer.status == 200, answer.text
    assert elapsed >= DELAY_S * 0.9, elapsed
