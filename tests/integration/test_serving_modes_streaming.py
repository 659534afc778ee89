"""Serving modes, against a real TorchServe 0.12: streamed answers
(``send_intermediate_predict_response``) and continuous batching (one request spanning
several handle() calls, its answer streamed a chunk per call).

As in test_serving_modes_batching.py: ours beside the plain twin on the shared server, every
chunk compared byte for byte, then what ts-health knows.
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
    model_json,
    post,
    post_all,
    ready,
    ready_by_beat,
    ready_record,
    same_answers,
)
from tests.support.probe_cli import state_of
from ts_health_handler.testing import TorchServe

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def streaming(models: Models) -> tuple[str, str]:
    return models.pair("streaming", "ms_stream")


@pytest.fixture(scope="module")
def continuous(models: Models) -> tuple[str, str]:
    return models.pair("continuous", "ms_cont")


# -- streaming: send_intermediate_predict_response -------------------------------------------


def test_streaming_chunks_match_the_twin(
    shared_server: TorchServe, streaming: tuple[str, str]
) -> None:
    ours, twin = streaming
    replies = same_answers(
        shared_server, ours, twin, ["stream:3", "plain", "stream:1", "fail", "partial:fail"]
    )
    three = replies[0]
    assert three.status == 200, three
    assert three.chunked, three
    assert three.chunks == (
        b"stream:3 chunk 0\n",
        b"stream:3 chunk 1\n",
        b"stream:3 chunk 2 (last)\n",
    ), three
    assert replies[1].json() == {"echo": "plain"}
    assert replies[3].status == 503, replies[3]
    # Failing after a chunk: 200 and that chunk, then TorchServe breaks the answer off.
    broken = replies[4]
    assert (broken.status, broken.chunks) == (200, (b"partial:fail chunk 0\n",)), broken
    assert broken.error, broken


def test_streaming_record(
    shared_server: TorchServe, shared_state_dir: Path, streaming: tuple[str, str]
) -> None:
    ready_record(shared_server, shared_state_dir, streaming[0], "default")


def test_streaming_describe(shared_server: TorchServe, streaming: tuple[str, str]) -> None:
    ours, twin = streaming
    status, body = customized(shared_server, ours)
    assert status == 200, body
    assert body[0]["customizedMetadata"]["status"] == "ready", body
    status, body = customized(shared_server, twin)
    assert status == 200, body
    assert "schema_version" not in (body[0].get("customizedMetadata") or {}), body


def test_streaming_counts_a_streamed_request_once(
    shared_server: TorchServe, shared_state_dir: Path, streaming: tuple[str, str]
) -> None:
    ours = streaming[0]
    sent, failed = counted(
        shared_server,
        shared_state_dir,
        ours,
        lambda: [
            post(shared_server, ours, b)
            for b in ("stream:4", "stream:2", "x", "fail", "partial:fail")
        ],
    )
    assert (sent, failed) == (5, 2)


def test_streaming_stuck_mid_stream(
    shared_server: TorchServe, shared_state_dir: Path, scratch: Models
) -> None:
    # The first chunk has gone out; then the request hangs.
    name = scratch.one("streaming", "ms_stream_stuck")
    goes_stuck(shared_server, shared_state_dir, name, hang="partial:hang")


def test_streaming_failing_mid_stream(
    shared_server: TorchServe, shared_state_dir: Path, scratch: Models
) -> None:
    # A request that fails after its first chunk: the client got 200 and that chunk, then
    # the error; the request failed all the same.
    name = scratch.one("streaming", "ms_stream_failing")
    goes_failing(shared_server, shared_state_dir, name, body="partial:fail")


def test_streaming_death_while_serving(
    shared_server: TorchServe, shared_state_dir: Path, scratch: Models
) -> None:
    name = scratch.one(
        "streaming", "ms_stream_dies", changes={"health": {"unstable_after_deaths": 1}}
    )
    dies_while_serving(shared_server, shared_state_dir, name, body="partial:die")


# -- continuous batching: one request, several handle() calls -------------------------------
#
# TorchServe 0.12 cannot serve a customized describe to a continuous-batching model: its
# Model.pollInferJob(jobsRepo, batchSize, jobsQueue) (frontend/.../wlm/Model.java), which
# ContinuousBatching polls through, puts a DESCRIBE job into the batch and then, the batch
# being non-empty, puts it back at the head of the queue. The describe is answered once and
# sent to the worker again and again, forever: no inference request is ever served again.
# So these tests read counts and the record from the files, never by describe, and the
# probe must not describe such a model either (test_continuous_the_probe_never_wedges...).


def test_continuous_chunks_match_the_twin(
    shared_server: TorchServe, continuous: tuple[str, str]
) -> None:
    ours, twin = continuous
    replies = same_answers(shared_server, ours, twin, ["steps:3", "steps:2", "once"])
    assert replies[0].chunks == (
        b"steps:3 step 0\n",
        b"steps:3 step 1\n",
        b"steps:3 step 2\n",
    ), replies[0]
    assert replies[2].json() == {"echo": "once"}
    failed = same_answers(shared_server, ours, twin, ["fail"], at_once=False)
    assert failed[0].status == 503, failed


def test_continuous_counts_a_request_once_not_per_step(
    shared_server: TorchServe, shared_state_dir: Path, continuous: tuple[str, str]
) -> None:
    ours = continuous[0]
    sent, failed = counted(
        shared_server,
        shared_state_dir,
        ours,
        lambda: (
            [
                *post_all(shared_server, ours, ["steps:4", "steps:3", "x"]),
                post(shared_server, ours, "fail"),
            ]
        ),
        describe=False,
    )
    assert (sent, failed) == (4, 1)


def test_continuous_record(
    shared_server: TorchServe, shared_state_dir: Path, continuous: tuple[str, str]
) -> None:
    ready_by_beat(shared_server, shared_state_dir, continuous[0], "continuous")


def test_continuous_a_customized_describe_wedges_torchserve(
    shared_server: TorchServe, scratch: Models
) -> None:
    # TorchServe's bug (above), shown on the plain twin: the describe is answered, then the
    # worker only ever answers it again; the next inference request waits in the queue.
    twin = scratch.one("continuous", "ms_cont_wedged_twin", ours=False)
    assert post(shared_server, twin, "before").status == 200
    status, body = customized(shared_server, twin)
    assert status == 200, body
    late = post(shared_server, twin, "after", timeout=5)
    assert late.status is None, late  # never answered: the timeout bounds the wait
    queue = shared_server.describe(twin)[0]["jobQueueStatus"]
    assert queue["pendingRequests"] >= 1, queue


def test_continuous_the_probe_never_wedges_the_worker(
    shared_server: TorchServe, shared_state_dir: Path, scratch: Models
) -> None:
    name = scratch.one("continuous", "ms_cont_probed")
    for _ in range(3):
        assert state_of(ready(shared_server, shared_state_dir, name)) == "ready"
    model_json(shared_server, shared_state_dir, name)
    assert post(shared_server, name, "still served", timeout=20).status == 200


def test_continuous_stuck(
    shared_server: TorchServe, shared_state_dir: Path, scratch: Models
) -> None:
    name = scratch.one("continuous", "ms_cont_stuck")
    goes_stuck(shared_server, shared_state_dir, name)


def test_continuous_failing(
    shared_server: TorchServe, shared_state_dir: Path, scratch: Models
) -> None:
    name = scratch.one("continuous", "ms_cont_failing")
    goes_failing(shared_server, shared_state_dir, name)


def test_continuous_death_while_serving(
    shared_server: TorchServe, shared_state_dir: Path, scratch: Models
) -> None:
    name = scratch.one(
        "continuous", "ms_cont_dies", changes={"health": {"unstable_after_deaths": 1}}
    )
    dies_while_serving(shared_server, shared_state_dir, name)
