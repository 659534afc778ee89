"""Serving modes, against a real TorchServe 0.12: sequence batching (stateful sessions,
``sequenceBatching: true``) and sequence + continuous batching.

A session starts with a request without ``ts_request_sequence_id``: TorchServe gives it an
id (and ``ts_request_sequence_start``), the handler answers it as a header, and the client
sends it with the session's next requests (InferenceRequestHandler.java). Ours beside the
plain twin on the shared server; the ids differ, everything else must match byte for byte.

TorchServe 0.12 cannot route a customized describe to a sequence-batching model: it
answers 503 "has no worker to serve describe request", with or without HealthMixin. So the
record and the counts are read from the files, and the probe must say so in its own words.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.support.modes import (
    Models,
    Reply,
    counted,
    customized,
    goes_failing,
    goes_stuck,
    model_json,
    post,
    ready,
    ready_by_beat,
    wait_state,
    worker_pid,
)
from ts_health_handler.testing import ServerError, TorchServe, WaitTimeout, wait_for

pytestmark = pytest.mark.integration

SEQUENCE_ID = "ts_request_sequence_id"
#: Answer headers that carry the session's id (TorchServe's own, different per session).
ID_HEADERS = (SEQUENCE_ID, "ts_request_sequence_end")


@pytest.fixture(scope="module")
def sequence(models: Models) -> tuple[str, str]:
    return models.pair("sequence", "mq_seq")


@pytest.fixture(scope="module")
def seqcont(models: Models) -> tuple[str, str]:
    return models.pair("sequence_continuous", "mq_seqcont")


def session(server: TorchServe, name: str, bodies: Sequence[str]) -> list[Reply]:
    """One session: the first body opens it, the others carry its id."""
    first = post(server, name, bodies[0])
    assert first.status == 200, first
    sequence = first.headers[SEQUENCE_ID]
    assert sequence.startswith("ts-seq-"), first.headers
    rest = [post(server, name, body, headers={SEQUENCE_ID: sequence}) for body in bodies[1:]]
    return [first, *rest]


def same_sessions(server: TorchServe, ours: str, twin: str, bodies: Sequence[str]) -> list[Reply]:
    mine, theirs = session(server, ours, bodies), session(server, twin, bodies)
    for body, a, b in zip(bodies, mine, theirs):
        assert a.comparable(ignore_headers=ID_HEADERS) == b.comparable(ignore_headers=ID_HEADERS), (
            body,
            a,
            b,
        )
        for header in ID_HEADERS:
            assert (header in a.headers) == (header in b.headers), (body, a, b)
    return mine


def describe_is_not_served(server: TorchServe, twin: str) -> None:
    """TorchServe 0.12 serves no customized describe to a sequence-batching model, with or
    without the mixin: SequenceBatching polls sessions' jobs only, so the describe of the twin
    waits unanswered (or, with no session job queue yet, is refused with 503 "has no worker to
    serve describe request"). Only the twin is asked: ours must not get a describe queued."""
    try:
        status, body = customized(server, twin, timeout=5)
    except ServerError as exc:
        unanswered = str(exc)
    else:
        assert status == 503, body
        assert "has no worker to serve describe request" in str(body), body
        return
    assert "did not answer" in unanswered, unanswered


def probe_names_sequence_batching(server: TorchServe, state: Path, name: str) -> None:
    model = model_json(server, state, name)
    assert model["state"] == "ready", model
    assert "not asked" in model["reason"], model["reason"]  # the monitor never asks
    assert "sequence batching" in model["reason"], model["reason"]
    assert "no worker" not in model["reason"], model["reason"]


# -- sequence batching -------------------------------------------------------------------


def test_sequence_sessions_match_the_twin(
    shared_server: TorchServe, sequence: tuple[str, str]
) -> None:
    ours, twin = sequence
    replies = same_sessions(shared_server, ours, twin, ["1", "2", "fail", "3"])
    assert [r.status for r in replies] == [200, 200, 503, 200], replies
    assert [replies[i].json() for i in (0, 1, 3)] == [{"sum": 1}, {"sum": 3}, {"sum": 6}]


def test_sequence_record(
    shared_server: TorchServe, shared_state_dir: Path, sequence: tuple[str, str]
) -> None:
    ready_by_beat(shared_server, shared_state_dir, sequence[0], "sequence")


def test_sequence_describe_is_not_served_by_torchserve(
    shared_server: TorchServe, shared_state_dir: Path, sequence: tuple[str, str]
) -> None:
    describe_is_not_served(shared_server, sequence[1])
    probe_names_sequence_batching(shared_server, shared_state_dir, sequence[0])


def test_sequence_counts_every_request_of_a_session(
    shared_server: TorchServe, shared_state_dir: Path, sequence: tuple[str, str]
) -> None:
    ours = sequence[0]
    sent, failed = counted(
        shared_server,
        shared_state_dir,
        ours,
        lambda: (
            session(shared_server, ours, ["5", "fail", "6"]) + session(shared_server, ours, ["7"])
        ),
        describe=False,
    )
    assert (sent, failed) == (4, 1)


def test_sequence_stuck(shared_server: TorchServe, shared_state_dir: Path, scratch: Models) -> None:
    name = scratch.one("sequence", "mq_seq_stuck")
    goes_stuck(shared_server, shared_state_dir, name)


def test_sequence_failing(
    shared_server: TorchServe, shared_state_dir: Path, scratch: Models
) -> None:
    name = scratch.one("sequence", "mq_seq_failing")
    goes_failing(shared_server, shared_state_dir, name)


def dies_alike(server: TorchServe, state: Path, scratch: Models, mode: str, name: str) -> None:
    """A request that kills the worker, to ours and to the twin: TorchServe brings both
    back or neither; if it brings ours back, the death is recorded as one while serving,
    and while it does not, ts-health does not call the model ready."""
    changes = {"health": {"unstable_after_deaths": 1}}
    ours = scratch.one(mode, name, changes=changes)
    twin = scratch.one(mode, f"{name}_twin", ours=False, changes=changes)
    pids = {n: worker_pid(server, n) for n in (ours, twin)}
    for n in (ours, twin):
        post(server, n, "die", timeout=60)

    def back(n: str) -> bool:
        return worker_pid(server, n) not in (pids[n], None) and server.worker_statuses(n) == [
            "READY"
        ]

    try:
        wait_for(lambda: back(ours) and back(twin), timeout=60, what="new worker processes")
    except WaitTimeout:
        assert not back(ours), "ours came back, the twin did not"
        assert not back(twin), "the twin came back, ours did not"
        done = ready(server, state, ours)
        assert done.returncode != 0, done.stdout
        return
    done = wait_state(server, state, ours, "unstable", timeout=20)
    assert "while serving" in done.stdout, done.stdout


def test_sequence_death_while_serving(
    shared_server: TorchServe, shared_state_dir: Path, scratch: Models
) -> None:
    dies_alike(shared_server, shared_state_dir, scratch, "sequence", "mq_seq_dies")


# -- sequence + continuous batching --------------------------------------------------------


def test_sequence_continuous_sessions_match_the_twin(
    shared_server: TorchServe, seqcont: tuple[str, str]
) -> None:
    ours, twin = seqcont
    replies = same_sessions(shared_server, ours, twin, ["1", "2", "steps:3", "fail", "end"])
    assert [r.status for r in replies] == [200, 200, 200, 503, 200], replies
    assert replies[1].json() == {"sum": 3}
    assert replies[2].chunks == (b"sum 3 step 0\n", b"sum 3 step 1\n", b"sum 3 step 2\n")
    assert replies[4].json() == {"ended": True}


def test_sequence_continuous_record(
    shared_server: TorchServe, shared_state_dir: Path, seqcont: tuple[str, str]
) -> None:
    ready_by_beat(shared_server, shared_state_dir, seqcont[0], "sequence_continuous")


def test_sequence_continuous_counts_a_request_once(
    shared_server: TorchServe, shared_state_dir: Path, seqcont: tuple[str, str]
) -> None:
    ours = seqcont[0]
    sent, failed = counted(
        shared_server,
        shared_state_dir,
        ours,
        lambda: session(shared_server, ours, ["4", "steps:4", "fail", "end"]),
        describe=False,
    )
    assert (sent, failed) == (4, 1)


def test_sequence_continuous_describe_is_not_served_by_torchserve(
    shared_server: TorchServe, shared_state_dir: Path, scratch: Models
) -> None:
    ours = scratch.one("sequence_continuous", "mq_seqcont_described")
    twin = scratch.one("sequence_continuous", "mq_seqcont_described_twin", ours=False)
    describe_is_not_served(shared_server, twin)
    probe_names_sequence_batching(shared_server, shared_state_dir, ours)


def test_sequence_continuous_stuck(
    shared_server: TorchServe, shared_state_dir: Path, scratch: Models
) -> None:
    name = scratch.one("sequence_continuous", "mq_seqcont_stuck")
    goes_stuck(shared_server, shared_state_dir, name)


def test_sequence_continuous_failing(
    shared_server: TorchServe, shared_state_dir: Path, scratch: Models
) -> None:
    name = scratch.one("sequence_continuous", "mq_seqcont_failing")
    goes_failing(shared_server, shared_state_dir, name)


def test_sequence_continuous_death_while_serving(
    shared_server: TorchServe, shared_state_dir: Path, scratch: Models
) -> None:
    dies_alike(shared_server, shared_state_dir, scratch, "sequence_continuous", "mq_seqcont_dies")
