"""Edges of the persisted record (``record/_record``): what it keeps of an earlier
registration (``previous``) through JSON, and the complaints about a broken one."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.records import attempt
from ts_health_handler.record import ErrorInfo, InitPhase, InitRecord, RecordError
from ts_health_handler.record._record import Previous

T0 = 1_750_000_000.0
ERROR = ErrorInfo("builtins.KeyError", "gone", "2025-06-15T15:06:41.000Z", 4)


def with_previous(previous: Any) -> dict[str, Any]:
    data = attempt(None, "9000", 11, at=T0, fail="x").to_json()
    data["previous"] = previous
    return data


@pytest.mark.parametrize(
    "previous",
    [
        Previous(4, 3, InitPhase.FAILED, "2025-06-15T15:06:41.000Z", ERROR),
        Previous(1, 0, InitPhase.READY, None, None),
    ],
)
def test_the_previous_registration_survives_json(previous: Previous) -> None:
    record = attempt(None, "9000", 11, at=T0, fail="x")._replace(previous=previous)
    read = InitRecord.from_json(json.loads(json.dumps(record.to_json())), "r.json")
    assert read.previous == previous
    assert read == record


@pytest.mark.parametrize(
    ("previous", "complaint"),
    [
        ([], "previous"),
        ({"failures": 0, "phase": "ready", "ended_at": None}, "'previous.attempts'"),
        ({"attempts": 1, "phase": "ready", "ended_at": None}, "'previous.failures'"),
        ({"attempts": 1, "failures": 0, "ended_at": None}, "'previous.phase'"),
        ({"attempts": 1, "failures": 0, "phase": "ready"}, "'previous.ended_at'"),
        ({"attempts": "1", "failures": 0, "phase": "ready", "ended_at": None}, "expected int"),
        ({"attempts": 1, "failures": 0, "phase": "ready", "ended_at": 5}, "expected str or null"),
        ({"attempts": 1, "failures": 0, "phase": "gone", "ended_at": None}, "phase 'gone'"),
        (
            {"attempts": 1, "failures": 1, "phase": "failed", "ended_at": None, "last_error": []},
            "previous.last_error",
        ),
    ],
)
def test_a_broken_previous_is_a_record_error_naming_the_field(
    previous: Any, complaint: str
) -> None:
    with pytest.raises(RecordError, match=complaint) as raised:
        InitRecord.from_json(with_previous(previous), "r.json")
    assert raised.value.path == "r.json"


def with_run(change: dict[str, Any], drop: tuple[str, ...] = ()) -> dict[str, Any]:
    data = attempt(None, "9000", 11, at=T0, fail="x").to_json()
    run = {k: v for k, v in data["workers"][0].items() if k not in drop} | change
    data["workers"] = [run]
    return data


@pytest.mark.parametrize(
    ("change", "drop", "complaint"),
    [
        ({}, ("id",), "missing field 'workers[0].id'"),
        ({}, ("phase",), "missing field 'workers[0].phase'"),
        ({"phase": "gone"}, (), "phase 'gone', expected one of"),
        ({}, ("attempts",), "missing field 'workers[0].attempts'"),
        ({}, ("first_started_at",), "missing field 'workers[0].first_started_at'"),
        ({}, ("last_started_at",), "missing field 'workers[0].last_started_at'"),
        ({"last_error": []}, (), "'workers[0].last_error' is list, expected an object"),
        ({"failures": "1"}, (), "'workers[0].failures' is '1', expected int"),
        ({"consecutive_failures": None}, (), "'workers[0].consecutive_failures' is None"),
        ({"first_failure_at": 1}, (), "'workers[0].first_failure_at' is 1"),
        ({"last_finished_at": 1}, (), "'workers[0].last_finished_at' is 1"),
    ],
)
def test_a_broken_run_is_a_record_error_naming_the_file_and_the_field(
    change: dict[str, Any], drop: tuple[str, ...], complaint: str
) -> None:
    with pytest.raises(
        RecordError, match=complaint.replace("[", r"\[").replace("]", r"\]")
    ) as raised:
        InitRecord.from_json(with_run(change, drop), "r.json")
    assert raised.value.path == "r.json"


def test_a_run_that_is_not_an_object_is_named() -> None:
    data = attempt(None, "9000", 11, at=T0, fail="x").to_json()
    data["workers"] = ["9000"]
    with pytest.raises(
        RecordError, match=r"field 'workers\[0\]' is str, expected an object"
    ) as raised:
        InitRecord.from_json(data, "r.json")
    assert raised.value.path == "r.json"


def test_an_older_writers_run_without_counters_reads_as_none_yet() -> None:
    drop = ("failures", "consecutive_failures", "first_failure_at", "last_finished_at")
    run = InitRecord.from_json(with_run({}, drop), "r.json").workers[0]
    assert (run.failures, run.consecutive_failures, run.first_failure_at, run.last_finished_at) == (
        0,
        0,
        None,
        None,
    )
