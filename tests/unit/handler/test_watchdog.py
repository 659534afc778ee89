"""The watchdog's write rule, with a fake clock: every interval, or on activity at most every
``MIN_GAP_S``; never more."""

from __future__ import annotations

from pathlib import Path

from ts_health_handler.handler._watchdog import MIN_GAP_S, Watchdog
from ts_health_handler.record._beat import Beat, read_beat


def beat() -> Beat:
    return Beat("9000", 41, 1.0, 2.0, 0, 0, 0)


def test_the_watchdog_writes_on_interval_and_on_activity_at_most_every_min_gap(
    tmp_path: Path,
) -> None:
    now, activity = [100.0], [0]
    dog = Watchdog(lambda: beat(), tmp_path / "b.json", 2.0, lambda: activity[0], lambda: now[0])
    dog.beat_now()
    assert dog.writes == 1
    now[0] += 1.0
    assert not dog.tick()  # nothing changed, interval not over
    activity[0] += 1  # a request started
    assert dog.tick()  # 1 s since the last write: past the gap
    activity[0] += 1  # it ended 0.1 s later
    now[0] += 0.1
    assert not dog.tick()  # within MIN_GAP_S of the last write: wait
    now[0] += MIN_GAP_S
    assert dog.tick()  # now the change is written
    now[0] += 1.9
    assert not dog.tick()
    now[0] += 0.1
    assert dog.tick()  # the interval
    assert dog.writes == 4
    assert read_beat(tmp_path / "b.json") == beat()
