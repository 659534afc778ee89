"""The heartbeat file: every field through JSON and what an older writer leaves out, complaints
that name the file and the field; beats as files (names that stay in their directory, a write
no reader sees half done, a failed write that leaves nothing); when a beat counts as stuck and
when its heartbeat as stopped. The serving modes' fields: tests/unit/record/test_beat_modes.py."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.support.records import NOW, POISON, beat
from ts_health_handler.record import ErrorInfo, RecordError
from ts_health_handler.record import _beat as beat_module
from ts_health_handler.record._beat import Beat, beat_path, read_beat, read_beats, write_beat

ERROR = ErrorInfo("torch.cuda.OutOfMemoryError", "CUDA out of memory", "2025-06-15T15:06:40Z", 2)


FATAL = ErrorInfo("RuntimeError", "device-side assert", "2025-06-15T15:06:41Z", 3, "Traceback")


#: Every field away from its default, so that a field read wrongly (or not at all) shows.
FULL = Beat(
    worker="9001",
    pid=4242,
    at=NOW,
    interval_s=2.5,
    requests=17,
    failed=6,
    consecutive_failures=4,
    in_flight_since=NOW - 3.25,
    last_request_at=NOW - 3.25,
    describe_at=NOW - 1.5,
    last_error=ERROR,
    fatal=FATAL,
    restarting=True,
    stuck_after_s=45.0,
    response_timeout_s=60.0,
    failing_after=7,
    unstable_after_deaths=2,
    death_window_s=300.0,
)


#: What every writer has always written.
REQUIRED = {
    "schema_version": 1,
    "worker": "9000",
    "pid": 41,
    "at": NOW,
    "interval_s": 1,
    "requests": 0,
    "failed": 0,
    "consecutive_failures": 0,
}


def complaint(raw: Any, where: str = "/state/m/1.0/beat.s.9000.json") -> RecordError:
    with pytest.raises(RecordError) as caught:
        Beat.from_json(raw, where)
    assert caught.value.path == where
    return caught.value


# -- through JSON ---------------------------------------------------------------------------


def test_every_field_survives_json_and_the_file(tmp_path: Path) -> None:
    assert Beat.from_json(json.loads(json.dumps(FULL.to_json())), "b") == FULL
    path = beat_path(tmp_path, "100-5", "9001")
    write_beat(path, FULL)
    assert read_beat(path) == FULL


def test_a_beat_of_an_older_writer_takes_the_defaults() -> None:
    read = Beat.from_json(REQUIRED, "b")
    assert read == Beat("9000", 41, NOW, 1.0, 0, 0, 0)
    assert (read.stuck_after_s, read.response_timeout_s) == (90.0, 120.0)
    assert (read.failing_after, read.unstable_after_deaths, read.death_window_s) == (5, 3, 600.0)
    assert (read.in_flight_since, read.last_request_at, read.describe_at) == (None, None, None)
    assert (read.last_error, read.fatal, read.restarting) == (None, None, False)
    assert isinstance(read.interval_s, float)


@pytest.mark.parametrize("value", ["yes", 1, "true", None])
def test_only_a_json_true_makes_a_beat_restarting(value: Any) -> None:
    assert Beat.from_json({**REQUIRED, "restarting": value}, "b").restarting is False
    assert Beat.from_json({**REQUIRED, "restarting": True}, "b").restarting is True


def test_complaints_name_the_file_and_the_field() -> None:
    assert "expected a JSON object, got list" in str(complaint([]))
    assert "schema_version 2, expected 1" in str(complaint({**REQUIRED, "schema_version": 2}))
    assert "missing field 'schema_version'" in str(complaint({"worker": "9000"}))
    for key, value in (
        ("worker", 9000),
        ("pid", "41"),
        ("at", "now"),
        ("interval_s", None),
        ("requests", 1.5),
        ("failed", "0"),
        ("consecutive_failures", None),
        ("in_flight_since", "soon"),
        ("last_request_at", "soon"),
        ("describe_at", "soon"),
        ("stuck_after_s", "90"),
        ("response_timeout_s", "120"),
        ("failing_after", 5.5),
        ("unstable_after_deaths", "3"),
        ("death_window_s", "600"),
    ):
        assert f"field {key!r} is " in str(complaint({**REQUIRED, key: value})), key
    for name in ("last_error", "fatal"):
        broken = {**ERROR.to_json(), "message": 7}
        assert f"field '{name}.message' is 7" in str(complaint({**REQUIRED, name: broken}))
        assert f"field '{name}' is list" in str(complaint({**REQUIRED, name: []}))


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "beat.s.9000.json"
    path.write_text("{not json")
    with pytest.raises(RecordError, match=r"not JSON \(") as caught:
        read_beat(path)
    assert caught.value.path == str(path)
    path.write_text(json.dumps({**REQUIRED, "pid": "x"}))
    with pytest.raises(RecordError, match="field 'pid'") as caught:
        read_beat(path)
    assert caught.value.path == str(path)


# -- as files -------------------------------------------------------------------------------


def test_a_beat_round_trips_and_bad_ones_are_skipped(tmp_path: Path) -> None:
    error = ErrorInfo("RuntimeError", POISON, "2025-06-15T15:06:40.000Z", 3)
    one = beat(fatal=error, last_error=error, in_flight_since=NOW - 2, restarting=True)
    path = beat_path(tmp_path, "100-5", "9000")
    write_beat(path, one)
    assert read_beat(path) == one
    (tmp_path / "beat.x.9001.json").write_text("{not json")
    (tmp_path / "beat.x.9002.json").write_text(json.dumps({"schema_version": 9}))
    assert read_beats(tmp_path) == [one]
    assert read_beat(tmp_path / "beat.none.json") is None


def test_beat_files_stay_in_their_directory(tmp_path: Path) -> None:
    assert beat_path(tmp_path, None, "9000") == tmp_path / "beat.local.9000.json"
    assert beat_path(tmp_path, "", "9000") == tmp_path / "beat.local.9000.json"
    assert beat_path(tmp_path, "100-5", "9000") == tmp_path / "beat.100-5.9000.json"
    odd = beat_path(tmp_path, "../x/y", "9/0")
    assert odd.parent == tmp_path
    assert odd.name == "beat...%2Fx%2Fy.9%2F0.json"


def test_a_reader_never_sees_a_beat_half_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = beat_path(tmp_path, "s", "9000")
    seen: list[tuple[Path, list[Beat]]] = []
    replace = os.replace

    def watched(src: Any, dst: Any) -> None:
        seen.append((Path(src).parent, read_beats(tmp_path)))
        replace(src, dst)

    monkeypatch.setattr(beat_module.os, "replace", watched)
    write_beat(path, FULL)
    assert seen == [(tmp_path, [])]  # the temporary file lies beside, and is not a beat
    assert read_beats(tmp_path) == [FULL]
    assert os.listdir(tmp_path) == [path.name]


def test_a_failed_write_leaves_nothing_and_raises_its_own_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(src: Any, dst: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(beat_module.os, "replace", full)
    with pytest.raises(OSError, match="No space left"):
        write_beat(beat_path(tmp_path, "s", "9000"), FULL)
    assert os.listdir(tmp_path) == []

    def vanished(src: Any, dst: Any) -> None:  # a cleaner took the temporary file first
        os.unlink(src)
        raise OSError(errno.ENOENT, "gone")

    monkeypatch.setattr(beat_module.os, "replace", vanished)
    with pytest.raises(OSError, match="gone"):
        write_beat(beat_path(tmp_path, "s", "9000"), FULL)


def test_the_newest_beats_first_and_at_most_64(tmp_path: Path) -> None:
    for n in range(70):  # the worker ids sort the other way round
        worker = str(9100 - n)
        write_beat(beat_path(tmp_path, "s", worker), FULL._replace(worker=worker, at=NOW + n))
    (tmp_path / "beat.s.x.txt").write_text("not a beat file")
    (tmp_path / "other.json").write_text(json.dumps({**REQUIRED, "at": NOW + 1000}))
    beats = read_beats(tmp_path)
    assert len(beats) == 64
    assert [b.at for b in beats] == [NOW + n for n in range(69, 5, -1)]
    assert read_beats(tmp_path / "missing") == []


# -- stuck and stopped ----------------------------------------------------------------------


def test_when_a_request_counts_as_stuck() -> None:
    idle = Beat("9000", 41, NOW, 1.0, 0, 0, 0, stuck_after_s=0.5)
    assert idle.stuck_for(NOW + 100) is None
    running = idle._replace(in_flight_since=NOW)
    assert running.stuck_for(NOW + 0.2) is None  # just started: not stuck yet
    assert running.stuck_for(NOW + 0.5) == 0.5  # at the threshold: stuck
    assert running.stuck_for(NOW + 2) == 2.0
    skewed = running._replace(in_flight_since=NOW + 5, stuck_after_s=0.0)
    assert skewed.stuck_for(NOW) == 0.0  # a clock behind the worker's: never negative


@pytest.mark.parametrize(("interval", "stale"), [(1.0, 6.0), (2.5, 7.5), (10.0, 30.0)])
def test_a_heartbeat_stops_after_three_beats_or_five_seconds_more(
    interval: float, stale: float
) -> None:
    assert Beat("9000", 41, NOW, interval, 0, 0, 0).stale_after_s() == stale
