"""The persisted record's JSON (``record/_record``): every field written under its own key and
read back (the previous registration's too), the schema versions still read, what an older
writer left out, and a complaint naming the file and the field for each field that is broken
(the record's, a run's, the previous registration's, an error's)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from ts_health_handler.record import ErrorInfo, InitPhase, InitRecord, RecordError
from ts_health_handler.record._deaths import Death, DeathCause
from ts_health_handler.record._record import Previous, WorkerRun

WHERE = "/state/m/1.0/init.json"
ERROR = ErrorInfo("builtins.KeyError", "gone", "2025-06-15T15:06:41.000Z", 2, "Traceback\n")
BRIEF = ERROR._replace(traceback=None)
RUN = WorkerRun(
    id="9000",
    pid=41,
    phase=InitPhase.FAILED,
    attempts=2,
    first_started_at="2025-06-15T15:06:30.000Z",
    last_started_at="2025-06-15T15:06:40.000Z",
    last_error=BRIEF,
    failures=2,
    consecutive_failures=1,
    first_failure_at="2025-06-15T15:06:31.000Z",
    last_finished_at="2025-06-15T15:06:41.000Z",
)
IDLE = WorkerRun("9001", None, InitPhase.INITIALIZING, 1, "2025-06-15T15:06:39.000Z", "x")
DEATH = Death("9002", 40, 1_749_999_990.0, 1_749_999_995.5, DeathCause.DIED, 0.25, None)
RECORD = InitRecord(
    model_name="m",
    model_version="1.0",
    phase=InitPhase.FAILED,
    attempts=7,
    failures=4,
    consecutive_failures=2,
    attempts_to_ready=3,
    first_failure_at="2025-06-15T15:06:31.000Z",
    last_started_at="2025-06-15T15:06:40.000Z",
    last_finished_at="2025-06-15T15:06:41.000Z",
    last_duration_s=1.25,
    last_error=ERROR,
    recent_errors=(BRIEF._replace(attempt=1), BRIEF),
    server="100-5",
    worker_pid=41,
    updated_at="2025-06-15T15:06:42.000Z",
    workers=(RUN, IDLE),
    deaths=(DEATH,),
    deaths_total=6,
    previous=Previous(5, 5, InitPhase.FAILED, "2025-06-15T15:00:00.000Z", BRIEF),
)

ERROR_JSON = {
    "type": "builtins.KeyError",
    "message": "gone",
    "at": "2025-06-15T15:06:41.000Z",
    "attempt": 2,
    "traceback": "Traceback\n",
}
BRIEF_JSON = {**ERROR_JSON, "traceback": None}
RECORD_JSON = {
    "model_name": "m",
    "model_version": "1.0",
    "phase": "failed",
    "attempts": 7,
    "failures": 4,
    "consecutive_failures": 2,
    "attempts_to_ready": 3,
    "first_failure_at": "2025-06-15T15:06:31.000Z",
    "last_started_at": "2025-06-15T15:06:40.000Z",
    "last_finished_at": "2025-06-15T15:06:41.000Z",
    "last_duration_s": 1.25,
    "last_error": ERROR_JSON,
    "recent_errors": [{**BRIEF_JSON, "attempt": 1}, BRIEF_JSON],
    "server": "100-5",
    "worker_pid": 41,
    "updated_at": "2025-06-15T15:06:42.000Z",
    "workers": [
        {
            "id": "9000",
            "pid": 41,
            "phase": "failed",
            "attempts": 2,
            "first_started_at": "2025-06-15T15:06:30.000Z",
            "last_started_at": "2025-06-15T15:06:40.000Z",
            "last_error": BRIEF_JSON,
            "failures": 2,
            "consecutive_failures": 1,
            "first_failure_at": "2025-06-15T15:06:31.000Z",
            "last_finished_at": "2025-06-15T15:06:41.000Z",
        },
        {
            "id": "9001",
            "pid": None,
            "phase": "initializing",
            "attempts": 1,
            "first_started_at": "2025-06-15T15:06:39.000Z",
            "last_started_at": "x",
            "last_error": None,
            "failures": 0,
            "consecutive_failures": 0,
            "first_failure_at": None,
            "last_finished_at": None,
        },
    ],
    "deaths": [
        {
            "worker": "9002",
            "pid": 40,
            "last_seen": 1_749_999_990.0,
            "found": 1_749_999_995.5,
            "cause": "died",
            "request_s": 0.25,
            "message": None,
        }
    ],
    "deaths_total": 6,
    "previous": {
        "attempts": 5,
        "failures": 5,
        "phase": "failed",
        "ended_at": "2025-06-15T15:00:00.000Z",
        "last_error": BRIEF_JSON,
    },
    "schema_version": 3,
}


def broken(**changes: Any) -> dict[str, Any]:
    """:data:`RECORD_JSON` (a deep copy) with ``changes``; a change to ``...`` drops the key."""
    data: dict[str, Any] = json.loads(json.dumps(RECORD_JSON))
    for key, value in changes.items():
        if value is ...:
            del data[key]
        else:
            data[key] = value
    return data


def complaint(data: Any) -> str:
    with pytest.raises(RecordError) as caught:
        InitRecord.from_json(data, WHERE)
    assert caught.value.path == WHERE
    prefix = f"unreadable health record {WHERE}: "
    assert str(caught.value).startswith(prefix)
    return str(caught.value)[len(prefix) :]


def with_run(change: dict[str, Any], drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """:data:`RECORD_JSON` with one run: the first, ``drop`` left out and ``change`` applied."""
    data = broken()
    run = {k: v for k, v in data["workers"][0].items() if k not in drop} | change
    data["workers"] = [run]
    return data


# -- written and read back ------------------------------------------------------------------


def test_every_field_is_written_under_its_own_key() -> None:
    assert RECORD.to_json() == RECORD_JSON


def test_every_field_is_read_back() -> None:
    assert InitRecord.from_json(json.loads(json.dumps(RECORD_JSON)), WHERE) == RECORD


def test_a_record_without_errors_runs_or_previous_writes_empty_values() -> None:
    record = InitRecord("m", "1.0", InitPhase.INITIALIZING)

    data = record.to_json()

    assert (data["phase"], data["last_error"], data["recent_errors"]) == ("initializing", None, [])
    assert (data["workers"], data["deaths"], data["previous"]) == ([], [], None)
    assert InitRecord.from_json(data, WHERE) == record


def test_an_optional_field_left_out_reads_as_its_default() -> None:
    optional = (
        "attempts_to_ready", "first_failure_at", "last_started_at", "last_finished_at",
        "last_duration_s", "last_error", "recent_errors", "server", "worker_pid", "updated_at",
        "workers", "deaths", "deaths_total", "previous",
    )  # fmt: skip

    read = InitRecord.from_json(broken(**dict.fromkeys(optional, ...)), WHERE)

    assert read == InitRecord("m", "1.0", InitPhase.FAILED, 7, 4, 2)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_every_readable_schema_version_is_read(version: int) -> None:
    assert InitRecord.from_json(broken(schema_version=version), WHERE) == RECORD


@pytest.mark.parametrize("version", [0, 4, -1])
def test_an_unknown_schema_version_is_refused_naming_the_one_written(version: int) -> None:
    assert complaint(broken(schema_version=version)) == f"schema_version {version}, expected 3"


@pytest.mark.parametrize(("duration", "read"), [(0, 0.0), (2.5, 2.5), (None, None)])
def test_a_duration_is_read_as_float_seconds_or_none(duration: Any, read: float | None) -> None:
    record = InitRecord.from_json(broken(last_duration_s=duration), WHERE)

    assert record.last_duration_s == read
    assert type(record.last_duration_s) is type(read)


@pytest.mark.parametrize(
    "previous",
    [
        Previous(4, 3, InitPhase.FAILED, "2025-06-15T15:06:41.000Z", ERROR),
        Previous(1, 0, InitPhase.READY, None, None),
    ],
)
def test_the_previous_registration_survives_json(previous: Previous) -> None:
    record = RECORD._replace(previous=previous)
    read = InitRecord.from_json(json.loads(json.dumps(record.to_json())), WHERE)
    assert read.previous == previous
    assert read == record


def test_an_older_writers_run_without_counters_reads_as_none_yet() -> None:
    drop = ("failures", "consecutive_failures", "first_failure_at", "last_finished_at")
    run = InitRecord.from_json(with_run({}, drop), WHERE).workers[0]
    assert (run.failures, run.consecutive_failures, run.first_failure_at, run.last_finished_at) == (
        0,
        0,
        None,
        None,
    )


# -- every broken field named, with the file -------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("schema_version", "3", "field 'schema_version' is '3', expected int"),
        ("model_name", ..., "missing field 'model_name'"),
        ("model_version", None, "field 'model_version' is None, expected str"),
        ("phase", ..., "missing field 'phase'"),
        ("phase", "Ready", "phase 'Ready', expected one of initializing, ready, failed"),
        ("attempts", ..., "missing field 'attempts'"),
        ("failures", ..., "missing field 'failures'"),
        ("consecutive_failures", ..., "missing field 'consecutive_failures'"),
        ("attempts_to_ready", 1.5, "field 'attempts_to_ready' is 1.5, expected int or null"),
        ("first_failure_at", 3, "field 'first_failure_at' is 3, expected str or null"),
        ("last_started_at", [], "field 'last_started_at' is [], expected str or null"),
        ("last_finished_at", 0, "field 'last_finished_at' is 0, expected str or null"),
        ("last_duration_s", -1, "field 'last_duration_s' is not a finite number of seconds >= 0"),
        ("last_duration_s", True, "field 'last_duration_s' is True, expected int or float or null"),
        ("last_error", 1, "field 'last_error' is int, expected an object"),
        ("recent_errors", None, "field 'recent_errors' is None, expected list"),
        ("server", 100, "field 'server' is 100, expected str or null"),
        ("worker_pid", 4.0, "field 'worker_pid' is 4.0, expected int or null"),
        ("updated_at", False, "field 'updated_at' is False, expected str or null"),
        ("workers", "9000", "field 'workers' is '9000', expected list"),
        ("deaths", {}, "field 'deaths' is {}, expected list"),
        ("deaths_total", "6", "field 'deaths_total' is '6', expected int"),
        ("previous", "p", "field 'previous' is str, expected an object"),
    ],
)
def test_a_broken_field_is_named_with_the_file(key: str, value: Any, reason: str) -> None:
    assert complaint(broken(**{key: value})) == reason


def test_a_record_that_is_not_an_object_names_what_it_is() -> None:
    assert complaint("{}") == "expected a JSON object, got str"


@pytest.mark.parametrize(
    ("place", "change", "reason"),
    [
        ("last_error", {"at": None}, "field 'last_error.at' is None, expected str"),
        ("recent_errors", {"message": 1}, "field 'recent_errors[1].message' is 1, expected str"),
        ("workers", {"pid": "41"}, "field 'workers[1].pid' is '41', expected int or null"),
        ("deaths", {"pid": None}, "field 'deaths[0].pid' is None, expected int"),
        ("previous", {"failures": None}, "field 'previous.failures' is None, expected int"),
    ],
)
def test_a_broken_field_inside_a_part_names_the_part_and_the_field(
    place: str, change: dict[str, Any], reason: str
) -> None:
    data = broken()
    part = data[place][-1] if isinstance(data[place], list) else data[place]
    part.update(change)

    assert complaint(data) == reason


@pytest.mark.parametrize(
    ("place", "reason"),
    [
        ("last_error", "field 'last_error' is list, expected an object"),
        ("recent_errors", "field 'recent_errors[1]' is list, expected an object"),
        ("workers", "field 'workers[1]' is list, expected an object"),
        ("deaths", "field 'deaths[0]' is list, expected an object"),
        ("previous", "field 'previous' is list, expected an object"),
    ],
)
def test_a_part_that_is_not_an_object_is_named(place: str, reason: str) -> None:
    data = broken()
    if isinstance(data[place], list):
        data[place][-1] = []
    else:
        data[place] = []

    assert complaint(data) == reason


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"id": 9000}, "field 'workers[0].id' is 9000, expected str"),
        ({"pid": ...}, "missing field 'workers[0].pid'"),
        ({"phase": "ok"}, "phase 'ok', expected one of initializing, ready, failed"),
        ({"phase": 1}, "field 'workers[0].phase' is 1, expected str"),
        ({"attempts": None}, "field 'workers[0].attempts' is None, expected int"),
        ({"first_started_at": 1}, "field 'workers[0].first_started_at' is 1, expected str"),
        ({"last_started_at": None}, "field 'workers[0].last_started_at' is None, expected str"),
        ({"last_error": {}}, "missing field 'workers[0].last_error.type'"),
        ({"failures": 1.0}, "field 'workers[0].failures' is 1.0, expected int"),
        (
            {"consecutive_failures": "1"},
            "field 'workers[0].consecutive_failures' is '1', expected int",
        ),
        ({"first_failure_at": 0}, "field 'workers[0].first_failure_at' is 0, expected str or null"),
        (
            {"last_finished_at": []},
            "field 'workers[0].last_finished_at' is [], expected str or null",
        ),
    ],
)
def test_every_broken_field_of_a_run_is_named_with_the_file(
    change: dict[str, Any], reason: str
) -> None:
    data = broken()
    run = data["workers"][0]
    for key, value in change.items():
        if value is ...:
            del run[key]
        else:
            run[key] = value

    assert complaint(data) == reason


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"attempts": None}, "field 'previous.attempts' is None, expected int"),
        ({"phase": "ok"}, "phase 'ok', expected one of initializing, ready, failed"),
        ({"phase": 2}, "field 'previous.phase' is 2, expected str"),
        ({"ended_at": 2}, "field 'previous.ended_at' is 2, expected str or null"),
        ({"last_error": {"type": "E"}}, "missing field 'previous.last_error.message'"),
    ],
)
def test_every_broken_field_of_the_previous_registration_is_named_with_the_file(
    change: dict[str, Any], reason: str
) -> None:
    data = broken()
    data["previous"].update(change)

    assert complaint(data) == reason


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
        InitRecord.from_json(broken(previous=previous), WHERE)
    assert raised.value.path == WHERE


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
        InitRecord.from_json(with_run(change, drop), WHERE)
    assert raised.value.path == WHERE


def test_a_run_that_is_not_an_object_is_named() -> None:
    data = broken()
    data["workers"] = ["9000"]
    with pytest.raises(
        RecordError, match=r"field 'workers\[0\]' is str, expected an object"
    ) as raised:
        InitRecord.from_json(data, WHERE)
    assert raised.value.path == WHERE


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"type": None}, "field 'error.type' is None, expected str"),
        ({"attempt": "2"}, "field 'error.attempt' is '2', expected int"),
        ({"traceback": 1}, "field 'error.traceback' is 1, expected str or null"),
    ],
)
def test_an_error_read_alone_is_named_error(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(RecordError) as caught:
        ErrorInfo.from_json({**ERROR_JSON, **change}, WHERE)

    assert str(caught.value) == f"unreadable health record {WHERE}: {reason}"


def test_an_error_read_alone_that_is_not_an_object_is_named_error() -> None:
    with pytest.raises(RecordError, match=re.escape("field 'error' is str, expected an object")):
        ErrorInfo.from_json("boom", WHERE)


def test_a_run_keeps_its_last_error_through_json() -> None:
    read = WorkerRun.from_json(RECORD_JSON["workers"][0], WHERE, "workers[0]")

    assert read == RUN
    assert read.last_error == BRIEF
