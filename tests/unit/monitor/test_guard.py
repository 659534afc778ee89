"""The describe guard: no describe while every READY worker is busy (a heartbeat exactly at its
limit, a request exactly as old as the describe timeout, READY workers without a beat), nor
while an earlier one waits unanswered (one answered at the very moment ours was sent is not);
a pending file that cannot be written or read never raises; the serving modes never asked."""

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

BUSY = "not asked: every READY worker is busy with one request (see the heartbeat)"


# -- every READY worker busy ----------------------------------------------------------------


def test_no_describe_while_every_ready_worker_is_busy(tmp_path: Path) -> None:
    busy = beat(in_flight_since=NOW - 3)
    assert hold_describe([busy], 1, tmp_path, NOW, 2.0) is not None
    assert hold_describe([busy, beat(worker="9001", pid=42)], 2, tmp_path, NOW, 2.0) is None
    assert hold_describe([beat(in_flight_since=NOW - 1)], 1, tmp_path, NOW, 2.0) is None
    assert hold_describe([beat(at=NOW - 60)], 1, tmp_path, NOW, 2.0) is not None  # frozen
    assert hold_describe([], 1, tmp_path, NOW, 2.0) is None  # no evidence: ask


def test_a_heartbeat_exactly_at_its_limit_can_still_answer(tmp_path: Path) -> None:
    assert hold_describe([beat(at=NOW - 6)], 1, tmp_path, NOW, 2.0) is None
    assert hold_describe([beat(at=NOW - 6.5)], 1, tmp_path, NOW, 2.0) == BUSY


def test_a_request_as_old_as_the_describe_timeout_holds_the_describe(tmp_path: Path) -> None:
    assert hold_describe([beat(in_flight_since=NOW - 2)], 1, tmp_path, NOW, 2.0) == BUSY
    assert hold_describe([beat(in_flight_since=NOW - 1.9)], 1, tmp_path, NOW, 2.0) is None


def test_without_ready_workers_or_with_too_few_beats_the_describe_is_sent(tmp_path: Path) -> None:
    remember_pending(tmp_path, NOW - 10)
    assert hold_describe([beat(in_flight_since=NOW - 60)], 0, tmp_path, NOW, 2.0) is None
    busy = [beat(in_flight_since=NOW - 60)]
    assert hold_describe(busy, 2, tmp_path, NOW, 2.0) is None  # one worker has no beat
    both = [*busy, beat(worker="9001", pid=42, in_flight_since=NOW - 60)]
    assert hold_describe(both, 2, tmp_path, NOW, 2.0) == BUSY


# -- an earlier describe still waiting ------------------------------------------------------


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


def test_a_describe_answered_when_ours_was_sent_is_not_pending(tmp_path: Path) -> None:
    remember_pending(tmp_path, NOW - 10)
    assert (tmp_path / PENDING_FILE).read_text(encoding="ascii") == f"{NOW - 10:.3f}\n"
    assert hold_describe([beat(describe_at=NOW - 10)], 1, tmp_path, NOW, 2.0) is None
    held = hold_describe([beat(describe_at=NOW - 10.5), beat(pid=42)], 1, tmp_path, NOW, 2.0)
    assert held is not None
    assert held.startswith("not asked: an earlier describe, sent 10 s ago")
    # a clock set back: never a negative age
    early = hold_describe([beat()], 1, tmp_path, NOW - 60, 2.0)
    assert early is not None
    assert "sent 0 s ago" in early


def test_a_pending_file_that_cannot_be_written_or_read_never_raises(tmp_path: Path) -> None:
    (tmp_path / PENDING_FILE).mkdir()  # in the way: the replace fails
    remember_pending(tmp_path, NOW)
    assert hold_describe([beat()], 1, tmp_path, NOW, 2.0) is None
    forget_pending(tmp_path)
    (tmp_path / PENDING_FILE).rmdir()
    (tmp_path / PENDING_FILE).write_text("soon\n")
    assert hold_describe([beat()], 1, tmp_path, NOW, 2.0) is None
    forget_pending(tmp_path)
    forget_pending(tmp_path)  # nothing left: still no error
    assert not (tmp_path / PENDING_FILE).exists()


# -- the serving modes ----------------------------------------------------------------------


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
