"""Beats as files: written, read back, and the bad ones skipped."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.records import NOW, POISON, beat
from ts_health_handler.record import ErrorInfo
from ts_health_handler.record._beat import beat_path, read_beat, read_beats, write_beat


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
