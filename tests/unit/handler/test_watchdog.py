"""The watchdog's write rule, with a fake clock: every interval, and when a request starts
after a beat that showed the worker idle, at most every ``MIN_GAP_S``; never more."""

from __future__ import annotations

from pathlib import Path

from ts_health_handler.handler._watchdog import MIN_GAP_S, Watchdog
from ts_health_handler.record._beat import Beat, read_beat


def beat() -> Beat:
    return Beat("9000", 41, 1.0, 2.0, 0, 0, 0)


def test_a_busy_worker_beats_per_interval_and_an_idle_one_when_a_request_starts(
    tmp_path: Path,
) -> None:
    now, busy = [100.0], [False]
    dog = Watchdog(lambda: beat(), tmp_path / "b.json", 2.0, lambda: busy[0], lambda: now[0])
    dog.beat_now()  # idle
    assert dog.writes == 1
    now[0] += 1.0
    assert not dog.tick()  # still idle, interval not over
    busy[0] = True  # a request starts after the idle spell
    assert dog.tick()  # 1 s since the last write: past the gap
    now[0] += 0.5
    assert not dog.tick()  # busy as the last beat said: nothing new to tell before the interval
    busy[0] = False
    now[0] += 0.5
    assert not dog.tick()  # a request ended: told at the next interval
    busy[0] = True  # the next starts after a beat that showed one running
    assert not dog.tick()
    now[0] += 1.0
    assert dog.tick()  # the interval
    busy[0] = False
    now[0] += 2.0
    assert dog.tick()  # the interval: idle now
    busy[0] = True
    now[0] += MIN_GAP_S / 2
    assert not dog.tick()  # a start within MIN_GAP_S of the last write waits
    now[0] += MIN_GAP_S / 2
    assert dog.tick()
    assert dog.writes == 5
    assert read_beat(tmp_path / "b.json") == beat()


def test_an_exception_that_cannot_be_shown_never_replaces_the_handlers(tmp_path: Path) -> None:
    from ts_health_handler.handler._tracker import Tracker

    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no text")

    tracker = Tracker(clock=lambda: 1.0, sleep=lambda s: None)
    tracker._start_serving()  # outside TorchServe: the streak without a heartbeat
    tracker.requests.total = 1
    tracker.request_failed(Unprintable(), 1)
    assert tracker.requests.failed == 1


def test_a_request_after_an_idle_beat_writes_its_busy_beat_itself(tmp_path: Path) -> None:
    now, busy, told = [100.0], [False], []
    path = tmp_path / "b.json"

    def showing() -> Beat:
        return beat()._replace(in_flight_since=now[0] if busy[0] else None)

    dog = Watchdog(showing, path, 2.0, lambda: busy[0], lambda: now[0], on_write=told.append)
    busy[0] = True
    dog.request_started()  # not beating (outside TorchServe): nothing to tell
    assert (dog.writes, told) == (0, [])
    busy[0] = False
    dog.start()  # the first beat: idle
    dog.stop()  # beating as in a worker, without the thread's own looks racing the test's
    try:
        assert told == [False]
        busy[0] = True
        dog.request_started()  # right after the idle beat: written now, no gap needed
        assert (dog.writes, told) == (2, [False, True])
        written = read_beat(path)
        assert written is not None
        assert written.in_flight_since == 100.0
        dog.request_started()  # the last beat shows a request: the others write nothing
        assert dog.writes == 2
        busy[0] = False
        now[0] += 2.0
        assert dog.tick()  # the interval: idle again
        busy[0] = True
        dog.request_started()
        assert (dog.writes, told) == (4, [False, True, False, True])
    finally:
        dog.stop()


def test_a_failed_request_beat_is_told_and_kept_as_the_error(tmp_path: Path) -> None:
    told: list[bool] = []
    dog = Watchdog(beat, tmp_path / "gone" / "b.json", 2.0, lambda: True, on_write=told.append)
    dog._thread = object()  # type: ignore[assignment]  # beating, as start() would make it
    dog.request_started()
    assert told == [True]  # tried: the next requests do not try again before the next beat
    assert dog.writes == 0
    assert dog.error is not None
    assert dog.error.startswith("FileNotFoundError")
