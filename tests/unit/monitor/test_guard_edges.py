"""The describe guard at its edges: a heartbeat exactly at its limit, a request exactly as old
as the describe timeout, a pending describe answered at the very moment it was sent, and a
pending file that cannot be written or read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ts_health_handler.monitor._guard import (
    PENDING_FILE,
    forget_pending,
    hold_describe,
    remember_pending,
)
from ts_health_handler.record._beat import Beat

NOW = 1_750_000_000.0
BUSY = "not asked: every READY worker is busy with one request (see the heartbeat)"


def beat(**changes: Any) -> Beat:
    values: dict[str, Any] = {
        "worker": "9000",
        "pid": 41,
        "at": NOW,
        "interval_s": 1.0,
        "requests": 10,
        "failed": 0,
        "consecutive_failures": 0,
    }
    values.update(changes)
    return Beat(**values)


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
