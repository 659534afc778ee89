"""Serving modes, against a real TorchServe 0.12: asynchronous worker communication
(``asyncCommunication: true``, ``async def handle``). TorchServe's AsyncService
(ts/async_service.py) runs every request as a task on one event loop, so many requests are
in flight in one worker at once, and one that hangs leaves the others served.

Ours beside the plain twin on the shared server, answers compared byte for byte, then what
ts-health knows.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.modes import (
    Models,
    beats,
    counted,
    customized,
    goes_failing,
    goes_stuck,
    in_background,
    post,
    post_all,
    ready,
    ready_record,
    same_answers,
    worker_pid,
)
from tests.support.probe_cli import state_of
from ts_health_handler.testing import TorchServe, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pair(models: Models) -> tuple[str, str]:
    return models.pair("async", "ma_async")


def test_async_answers_match_the_twin(shared_server: TorchServe, pair: tuple[str, str]) -> None:
    # A failure is compared alone: in TorchServe 0.12 an error answer fails every request
    # then in flight on the worker (AsyncBatchAggregator.sendResponse, non-200 branch, sends
    # the error to all of jobs_in_backend), so which ones it takes along depends on timing.
    ours, twin = pair
    bodies = ["a", "sleep:0.5", "b", "sleep:0.2", "c"]
    replies = same_answers(shared_server, ours, twin, bodies)
    assert [r.status for r in replies] == [200] * 5, replies
    assert replies[0].json() == {"echo": "a"}
    failed = same_answers(shared_server, ours, twin, ["fail"], at_once=False)
    assert failed[0].status == 503, failed


def test_async_record(
    shared_server: TorchServe, shared_state_dir: Path, pair: tuple[str, str]
) -> None:
    ready_record(shared_server, shared_state_dir, pair[0], "async")


def test_async_describe(shared_server: TorchServe, pair: tuple[str, str]) -> None:
    ours, twin = pair
    status, body = customized(shared_server, ours)
    assert status == 200, body
    assert body[0]["customizedMetadata"]["status"] == "ready", body
    assert body[0]["customizedMetadata"]["worker"]["mode"] == "async", body
    # The twin's async handle() never looks for a describe: TorchServe hands it the
    # describe like an inference request, and it answers an echo of the empty body.
    status, body = customized(shared_server, twin)
    assert status == 200, body
    assert "schema_version" not in (body[0].get("customizedMetadata") or {}), body


def test_async_counts_every_request_in_flight_at_once(
    shared_server: TorchServe, shared_state_dir: Path, pair: tuple[str, str]
) -> None:
    ours = pair[0]
    sent, failed = counted(
        shared_server,
        shared_state_dir,
        ours,
        lambda: (
            [
                *post_all(shared_server, ours, ["sleep:0.5"] * 6 + ["x"]),
                post(shared_server, ours, "fail"),
            ]
        ),
    )
    assert (sent, failed) == (8, 1)


def test_async_requests_in_flight_at_once(
    shared_server: TorchServe, shared_state_dir: Path, pair: tuple[str, str]
) -> None:
    # Four requests that each sleep 4 s, sent at once: the heartbeat (and the document)
    # show all four running in the one worker at the same time.
    ours = pair[0]
    threads = [in_background(lambda: post(shared_server, ours, "sleep:4")) for _ in range(4)]
    wait_for(
        lambda: [b.get("in_flight") for b in beats(shared_state_dir, ours)] == [4],
        timeout=4,
        interval=0.1,
        what="4 requests in flight in the heartbeat",
    )
    document = shared_server.status_document(ours)
    assert document["requests"]["in_flight"] == 4, document["requests"]
    for thread in threads:
        thread.join(timeout=30)


def test_async_one_hung_request_among_served_ones_is_stuck(
    shared_server: TorchServe, shared_state_dir: Path, scratch: Models
) -> None:
    name = scratch.one("async", "ma_async_stuck")
    done = goes_stuck(shared_server, shared_state_dir, name)
    # The hung request holds no one else up: the worker keeps answering.
    replies = post_all(shared_server, name, ["x", "y", "sleep:0.2"])
    assert [r.status for r in replies] == [200, 200, 200], replies
    assert done.returncode == 1


def test_async_failing(shared_server: TorchServe, shared_state_dir: Path, scratch: Models) -> None:
    name = scratch.one("async", "ma_async_failing")
    goes_failing(shared_server, shared_state_dir, name)


def test_async_a_death_leaves_the_worker_unloading(
    shared_server: TorchServe, shared_state_dir: Path, scratch: Models
) -> None:
    # TorchServe 0.12 does not bring an async worker back after its process dies: the
    # worker stays UNLOADING (a new pid, never READY), the twin's as ours. ts-health must
    # not call it ready.
    for name, ours in (("ma_async_dies", True), ("ma_async_dies_twin", False)):
        scratch.one("async", name, ours=ours)
        pid = worker_pid(shared_server, name)
        reply = post(shared_server, name, "die", timeout=15)
        assert reply.status is None or reply.status >= 500, reply
        wait_for(
            lambda n=name, p=pid: (
                worker_pid(shared_server, n) != p
                and shared_server.worker_statuses(n) == ["UNLOADING"]
            ),
            timeout=30,
            what=f"{name}: a dead async worker",
        )
    done = ready(shared_server, shared_state_dir, "ma_async_dies")
    assert done.returncode != 0, done.stdout
    assert state_of(done) != "ready", done.stdout
