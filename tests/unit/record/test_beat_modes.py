"""The beat's view of a worker in any serving mode: requests in flight, their ids, the
requests that span calls, the mode; and a beat written before those fields existed."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.records import NOW, beat
from ts_health_handler.record._beat import Beat, read_beat, write_beat


def test_the_new_fields_go_through_the_file(tmp_path: Path) -> None:
    written = beat(
        in_flight_since=NOW - 5,
        in_flight=3,
        request_ids=("a1", "b2"),
        open_requests=4,
        open_since=NOW - 9,
        mode="continuous",
    )
    write_beat(tmp_path / "b.json", written)
    assert read_beat(tmp_path / "b.json") == written


def test_a_beat_without_the_new_fields_ran_one_call_at_most(tmp_path: Path) -> None:
    old = beat(in_flight_since=NOW - 5).to_json()
    for key in ("in_flight", "request_ids", "open_requests", "open_since", "mode"):
        del old[key]
    (tmp_path / "b.json").write_text(json.dumps(old), encoding="utf-8")
    read = read_beat(tmp_path / "b.json")
    assert read is not None
    assert (read.in_flight, read.request_ids, read.open_requests, read.mode) == (
        1,
        (),
        None,
        "default",
    )
    idle = beat().to_json()
    del idle["in_flight"]
    assert Beat.from_json(idle, "b.json").in_flight == 0
