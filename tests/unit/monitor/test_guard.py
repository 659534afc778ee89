"""The describe guard: no describe while every READY worker is busy, nor while an earlier one
waits unanswered."""

from __future__ import annotations

from pathlib import Path

from tests.support.records import NOW, beat
from ts_health_handler.monitor._guard import (
    CONTINUOUS_NOT_ASKED,
    PENDING_FILE,
    SEQUENCE_NOT_ASKED,
    forget_pending,
    hold_describe,
    remember_pending,
)


def test_no_describe_while_every_ready_worker_is_busy(tmp_path: Path) -> None:
    busy = beat(in_flight_since=NOW - 3)
    assert hold_describe([busy], 1, tmp_path, NOW, 2.0) is not None
    assert hold_describe([busy, beat(worker="9001", pid=42)], 2, tmp_path, NOW, 2.0) is None
    assert hold_describe([beat(in_flight_since=NOW - 1)], 1, tmp_path, NOW, 2.0) is None
    assert hold_describe([beat(at=NOW - 60)], 1, tmp_path, NOW, 2.0) is not None  # frozen
    assert hold_describe([], 1, tmp_path, NOW, 2.0) is None  # no evidence: ask


def test_no_second_describe_while_ours_is_unanswered(tmp_path: Path) -> None:
    remember_pending(tmp_path, NOW - 10)
    assert (tmp_path / PENDING_FILE).exists()
    held = hold_describe([beat(describe_at=NOW - 20)], 1, tmp_path, NOW, 2.0)
    assert held == (
        "not asked: an earlier describe, sent 10 s ago, still waits in the worker's queue"
    )
    assert hold_describe([beat(describe_at=NOW - 5)], 1, tmp_path, NOW, 2.0) is None
    forget_pending(tmp_path)
    assert not (tmp_path / PENDING_FILE).exists()
    remember_pending(tmp_path / "missing", NOW)  # never raises


def test_a_sequence_batching_model_is_never_asked(tmp_path: Path) -> None:
    held = hold_describe([beat()], 1, tmp_path, NOW, 2.0, stateful=True)
    assert held == SEQUENCE_NOT_ASKED
    assert "sequenceBatching" in held
    assert "no worker" not in held
    assert hold_describe([], 1, tmp_path, NOW, 2.0, stateful=True) == SEQUENCE_NOT_ASKED


def test_an_async_worker_busy_with_a_long_request_is_still_asked(tmp_path: Path) -> None:
    busy = beat(in_flight_since=NOW - 30, in_flight=2, mode="async")
    assert hold_describe([busy], 1, tmp_path, NOW, 2.0) is None
    assert hold_describe([busy._replace(mode="default")], 1, tmp_path, NOW, 2.0) is not None
    assert hold_describe([busy._replace(at=NOW - 60)], 1, tmp_path, NOW, 2.0) is not None


def test_a_continuous_batching_model_is_never_asked(tmp_path: Path) -> None:
    # TorchServe 0.12's Model.pollInferJob would send the describe to it again and again.
    held = hold_describe([beat()], 1, tmp_path, NOW, 2.0, continuous=True)
    assert held == CONTINUOUS_NOT_ASKED
    assert "continuousBatching" in held
