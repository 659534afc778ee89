"""Serving modes, against a real TorchServe 0.12: a torchrun-parallel model (two ranks on
gloo, CPU) and a function handler (``handler.py:handle`` under ``@with_health``).

Ours beside the plain twin on the shared server, answers compared byte for byte, then what
ts-health knows.
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


@pytest.fixture(scope="module")
def torchrun(models: Models) -> tuple[str, str]:
    return models.pair("torchrun", "mo_tp")


@pytest.fixture(scope="module")
def function(models: Models) -> tuple[str, str]:
    return models.pair("function", "mo_fn")


# -- torchrun: parallelType tp, nproc-per-node 2 ---------------------------------------------


def test_torchrun_answers_match_the_twin(
    shared_server: TorchServe, torchrun: tuple[str, str]
) -> None:
    ours, twin = torchrun
    replies = same_answers(shared_server, ours, twin, ["ab", "fail", "abc"], at_once=False)
    # Both ranks all-reduced the body's length: 2 + 2.
    assert replies[0].json() == {"echo": "ab", "ranks_sum": 4}, replies[0]
    assert replies[1].status == 503, replies[1]


def test_torchrun_record(
    shared_server: TorchServe, shared_state_dir: Path, torchrun: tuple[str, str]
) -> None:
    ready_record(shared_server, shared_state_dir, torchrun[0], "default")


def test_torchrun_describe(shared_server: TorchServe, torchrun: tuple[str, str]) -> None:
    ours, twin = torchrun
    status, body = customized(shared_server, ours)
    assert status == 200, body
    assert body[0]["customizedMetadata"]["status"] == "ready", body
    status, body = customized(shared_server, twin)
    assert status == 200, body


def test_torchrun_counts(
    shared_server: TorchServe, shared_state_dir: Path, torchrun: tuple[str, str]
) -> None:
    ours = torchrun[0]
    sent, failed = counted(
        shared_server,
        shared_state_dir,
        ours,
        lambda: [post(shared_server, ours, b) for b in ("x", "yy", "fail")],
    )
    assert (sent, failed) == (3, 1)


def test_torchrun_stuck(shared_server: TorchServe, shared_state_dir: Path, scratch: Models) -> None:
    name = scratch.one("torchrun", "mo_tp_stuck")
    goes_stuck(shared_server, shared_state_dir, name)


def test_torchrun_failing(
    shared_server: TorchServe, shared_state_dir: Path, scratch: Models
) -> None:
    name = scratch.one("torchrun", "mo_tp_failing")
    goes_failing(shared_server, shared_state_dir, name)


# -- function handler -----------------------------------------------------------------------


def test_function_answers_match_the_twin(
    shared_server: TorchServe, function: tuple[str, str]
) -> None:
    ours, twin = function
    replies = same_answers(shared_server, ours, twin, ["a", "sleep:0.2", "b"])
    assert replies[0].json() == {"echo": "a"}
    failed = same_answers(shared_server, ours, twin, ["fail"], at_once=False)
    assert failed[0].status == 503, failed


def test_function_record(
    shared_server: TorchServe, shared_state_dir: Path, function: tuple[str, str]
) -> None:
    ready_record(shared_server, shared_state_dir, function[0], "default")


def test_function_describe(shared_server: TorchServe, function: tuple[str, str]) -> None:
    ours = function[0]
    status, body = customized(shared_server, ours)
    assert status == 200, body
    assert body[0]["customizedMetadata"]["status"] == "ready", body


def test_function_counts(
    shared_server: TorchServe, shared_state_dir: Path, function: tuple[str, str]
) -> None:
    ours = function[0]
    sent, failed = counted(
        shared_server,
        shared_state_dir,
        ours,
        lambda: [*post_all(shared_server, ours, ["x", "y"]), post(shared_server, ours, "fail")],
    )
    assert (sent, failed) == (3, 1)


def test_function_stuck(shared_server: TorchServe, shared_state_dir: Path, scratch: Models) -> None:
    name = scratch.one("function", "mo_fn_stuck")
    goes_stuck(shared_server, shared_state_dir, name)


def test_function_failing(
    shared_server: TorchServe, shared_state_dir: Path, scratch: Models
) -> None:
    name = scratch.one("function", "mo_fn_failing")
    goes_failing(shared_server, shared_state_dir, name)


def test_function_death_while_serving(
    shared_server: TorchServe, shared_state_dir: Path, scratch: Models
) -> None:
    name = scratch.one("function", "mo_fn_dies", changes={"health": {"unstable_after_deaths": 1}})
    dies_while_serving(shared_server, shared_state_dir, name)
