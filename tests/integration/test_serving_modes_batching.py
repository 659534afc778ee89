"""Serving modes, against a real TorchServe 0.12: default batching and micro-batching.

Each mode is served twice on the shared server: ours (``modes/<mode>/handler.py``, the
twin's class with ``HealthMixin`` first among the bases) beside the plain twin
(``plain_handler.py``); their answers must match byte for byte. Then what ts-health knows:
the record, the customized describe, request counts, a hung request, failures in a row, a
death while serving. The handlers' bodies are in ``modes/behaviour.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.modes import (
    Models,
    counted,
    customized,
    dies_while_serving,
    goes_failing,
    goes_stuck,
    post,
    post_all,
    ready_record,
    same_answers,
)
from ts_health_handler.testing import TorchServe

pytestmark = pytest.mark.integration

#: Echoes and a failure, sent at once: TorchServe batches them (batchSize 2 or 4).
BODIES = ["a", "b", "fail", "c", "sleep:0.2", "d"]


@pytest.fixture(scope="module")
def batching(models: Models) -> tuple[str, str]:
    return models.pair("batching", "mb_batching")


@pytest.fixture(scope="module")
def micro(models: Models) -> tuple[str, str]:
    return models.pair("micro_batching", "mb_micro")


# -- default batching (batchSize 2, maxBatchDelay 500 ms) ------------------------------------


def test_batching_answers_match_the_twin(
    shared_server: TorchServe, batching: tuple[str, str]
) -> None:
    # One "fail" in a batch fails the whole batch (ts/service.py answers every request of
    # it with 503 "Prediction failed"): which ones share its batch depends on timing, so
    # the failure is compared alone and the echoes at once.
    ours, twin = batching
    replies = same_answers(shared_server, ours, twin, [b for b in BODIES if b != "fail"])
    assert all(r.status == 200 for r in replies), replies
    assert replies[0].json() == {"echo": "a"}
    failed = same_answers(shared_server, ours, twin, ["fail"], at_once=False)
    assert failed[0].status == 503, failed


def test_batching_record(
    shared_server: TorchServe, shared_state_dir: Path, batching: tuple[str, str]
) -> None:
    ready_record(shared_server, shared_state_dir, batching[0], "default")


def test_batching_describe(shared_server: TorchServe, batching: tuple[str, str]) -> None:
    ours, twin = batching
    status, body = customized(shared_server, ours)
    assert status == 200, body
    assert body[0]["customizedMetadata"]["status"] == "ready", body
    assert body[0]["customizedMetadata"]["model"]["name"] == ours, body
    status, body = customized(shared_server, twin)
    assert status == 200, body  # the route works for a plain handler too: BaseHandler's None
    assert "schema_version" not in (body[0].get("customizedMetadata") or {}), body


def test_batching_counts_every_request_of_a_batch(
    shared_server: TorchServe, shared_state_dir: Path, batching: tuple[str, str]
) -> None:
    ours = batching[0]
    sent, failed = counted(
        shared_server,
        shared_state_dir,
        ours,
        lambda: (
            [
                *post_all(shared_server, ours, ["x", "y", "z", "w"]),
                post(shared_server, ours, "fail"),
            ]
        ),
    )
    assert (sent, failed) == (5, 1)


def test_batching_stuck(shared_server: TorchServe, shared_state_dir: Path, scratch: Models) -> None:
    name = scratch.one("batching", "mb_batching_stuck")
    goes_stuck(shared_server, shared_state_dir, name)


def test_batching_failing(
    shared_server: TorchServe, shared_state_dir: Path, scratch: Models
) -> None:
    name = scratch.one("batching", "mb_batching_failing")
    goes_failing(shared_server, shared_state_dir, name)


def test_batching_death_while_serving(
    shared_server: TorchServe, shared_state_dir: Path, scratch: Models
) -> None:
    name = scratch.one(
        "batching", "mb_batching_dies", changes={"health": {"unstable_after_deaths": 1}}
    )
    dies_while_serving(shared_server, shared_state_dir, name)


# -- micro-batching (batchSize 4 split into micro-batches of 2) -----------------------------


def test_micro_batching_answers_match_the_twin(
    shared_server: TorchServe, micro: tuple[str, str]
) -> None:
    # No "fail" here: see test_micro_batching_a_failure_hangs_the_request.
    ours, twin = micro
    replies = same_answers(shared_server, ours, twin, [b for b in BODIES if b != "fail"])
    assert [r.json() for r in replies][:2] == [{"echo": "a"}, {"echo": "b"}]


def test_micro_batching_record(
    shared_server: TorchServe, shared_state_dir: Path, micro: tuple[str, str]
) -> None:
    ready_record(shared_server, shared_state_dir, micro[0], "default")


def test_micro_batching_describe(shared_server: TorchServe, micro: tuple[str, str]) -> None:
    # MicroBatching.__call__ answers a describe itself with handler.describe_handle()
    # (ts/handler_utils/micro_batching.py): ours for HealthMixin, BaseHandler's for the twin.
    ours, twin = micro
    status, body = customized(shared_server, ours)
    assert status == 200, body
    assert body[0]["customizedMetadata"]["status"] == "ready", body
    status, body = customized(shared_server, twin)
    assert status == 200, body
    assert "schema_version" not in (body[0].get("customizedMetadata") or {}), body


def test_micro_batching_counts_every_request(
    shared_server: TorchServe, shared_state_dir: Path, micro: tuple[str, str]
) -> None:
    ours = micro[0]
    sent, failed = counted(
        shared_server,
        shared_state_dir,
        ours,
        lambda: post_all(shared_server, ours, ["x", "y", "z", "w", "v"]),
    )
    assert (sent, failed) == (5, 0)


def test_micro_batching_stuck(
    shared_server: TorchServe, shared_state_dir: Path, scratch: Models
) -> None:
    name = scratch.one("micro_batching", "mb_micro_stuck")
    goes_stuck(shared_server, shared_state_dir, name)


def test_micro_batching_a_failure_hangs_the_request(
    shared_server: TorchServe, shared_state_dir: Path, scratch: Models
) -> None:
    # TorchServe's micro-batching cannot fail a request: execute_call() runs preprocess,
    # inference and postprocess in threads with no try (ts/handler_utils/micro_batching.py),
    # so an exception ends that thread and MicroBatching.handle() waits for its answer
    # forever, until responseTimeout kills the worker. A raising model is therefore stuck,
    # never "failing" (no request ever comes back failed), for the twin and for ours alike.
    name = scratch.one("micro_batching", "mb_micro_fails")
    done = goes_stuck(shared_server, shared_state_dir, name, hang="fail")
    assert "ValueError" not in done.stdout, done.stdout


def test_micro_batching_death_while_serving(
    shared_server: TorchServe, shared_state_dir: Path, scratch: Models
) -> None:
    name = scratch.one(
        "micro_batching", "mb_micro_dies", changes={"health": {"unstable_after_deaths": 1}}
    )
    dies_while_serving(shared_server, shared_state_dir, name)
