"""The initialization record: transitions, attempts left unfinished by a dead worker, and JSON
with every bad field named. Its store: tests/unit/record/test_store.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ts_health_handler import ErrorInfo, InitPhase, InitRecord, RecordError
from ts_health_handler.record import RECENT_ERRORS, parse_iso, utc_iso

T0 = 1_750_000_000.0  # 2025-06-15T15:06:40.000Z
SERVER = "4321-77"


def started(previous: InitRecord | None, now: float = T0, server: str = SERVER) -> InitRecord:
    return InitRecord.started(
        previous, model_name="m", model_version="1.0", now=now, worker_pid=11, server=server
    )


def error_at(now: float, attempt: int, message: str = "weights missing") -> ErrorInfo:
    return ErrorInfo("OSError", message, utc_iso(now), attempt, "Traceback...\nOSError: x\n")


# -- small helpers ------------------------------------------------------------------------


def test_utc_iso_format_and_inverse() -> None:
    assert utc_iso(T0) == "2025-06-15T15:06:40.000Z"
    assert utc_iso(T0 + 1.2345) == "2025-06-15T15:06:41.234Z"
    assert parse_iso("2025-06-15T15:06:41.500Z") == T0 + 1.5


# -- transitions ----------------------------------------------------------------------


def test_first_start_creates_a_record() -> None:
    record = started(None)

    assert record == InitRecord(
        model_name="m",
        model_version="1.0",
        phase=InitPhase.INITIALIZING,
        attempts=1,
        last_started_at="2025-06-15T15:06:40.000Z",
        server=SERVER,
        worker_pid=11,
        updated_at="2025-06-15T15:06:40.000Z",
    )


def test_failures_then_success_count_attempts() -> None:
    first = started(None).failed(error_at(T0 + 1, 1), now=T0 + 1, duration_s=1.0, worker_pid=11)
    second = started(first, now=T0 + 5).failed(
        error_at(T0 + 6, 2, "still missing"), now=T0 + 6, duration_s=1.0, worker_pid=12
    )
    ready = started(second, now=T0 + 10).succeeded(now=T0 + 12.25, duration_s=2.25, worker_pid=13)

    assert (first.phase, first.attempts, first.failures, first.consecutive_failures) == (
        InitPhase.FAILED,
        1,
        1,
        1,
    )
    assert second.attempts == 2
    assert second.consecutive_failures == 2
    assert second.first_failure_at == "2025-06-15T15:06:41.000Z"  # kept from the first
    assert second.last_error is not None
    assert second.last_error.message == "still missing"
    assert second.last_error.traceback == "Traceback...\nOSError: x\n"
    # recent errors drop their tracebacks
    assert [(e.message, e.attempt, e.traceback) for e in second.recent_errors] == [
        ("weights missing", 1, None),
        ("still missing", 2, None),
    ]
    assert ready.phase is InitPhase.READY
    assert ready.attempts == 3
    assert ready.failures == 2
    assert ready.consecutive_failures == 0
    assert ready.attempts_to_ready == 3
    assert ready.first_failure_at is None
    assert ready.last_started_at == "2025-06-15T15:06:50.000Z"
    assert ready.last_finished_at == "2025-06-15T15:06:52.250Z"
    assert ready.last_duration_s == 2.25
    assert ready.worker_pid == 13
    assert ready.last_error == second.last_error  # the last failure stays visible


def test_recent_errors_keep_only_the_last_few() -> None:
    record = started(None)
    for attempt in range(1, RECENT_ERRORS + 3):
        record = started(record) if attempt > 1 else record
        record = record.failed(
            error_at(T0 + attempt, attempt, f"fail {attempt}"),
            now=T0 + attempt,
            duration_s=0.1,
            worker_pid=1,
        )

    assert RECENT_ERRORS == 5
    assert record.failures == 7
    assert [e.message for e in record.recent_errors] == [f"fail {i}" for i in range(3, 8)]


def test_a_new_server_starts_a_fresh_record() -> None:
    old = started(None).failed(error_at(T0, 1), now=T0, duration_s=0.5, worker_pid=11)

    fresh = started(old, now=T0 + 100, server="4321-78")

    assert fresh.attempts == 1
    assert fresh.failures == 0
    assert fresh.last_error is None
    assert fresh.recent_errors == ()
    assert fresh.server == "4321-78"


def test_a_failed_record_keeps_when_who_and_how_long() -> None:
    record = started(None).failed(
        error_at(T0 + 1.5, 1), now=T0 + 1.5, duration_s=1.2345678, worker_pid=77
    )

    assert record.last_finished_at == utc_iso(T0 + 1.5)
    assert record.updated_at == utc_iso(T0 + 1.5)
    assert record.worker_pid == 77
    assert record.last_duration_s == 1.234568  # six decimals, rounded
    assert record.last_started_at == utc_iso(T0)


def test_a_success_rounds_its_duration_to_six_decimals() -> None:
    record = started(None).succeeded(now=T0 + 1, duration_s=0.12345678, worker_pid=11)

    assert record.last_duration_s == 0.123457


# -- JSON -------------------------------------------------------------------------------


def full_record() -> InitRecord:
    record = started(None).failed(error_at(T0 + 1, 1), now=T0 + 1, duration_s=1, worker_pid=11)
    return started(record, now=T0 + 2).succeeded(now=T0 + 3, duration_s=1, worker_pid=12)


def test_json_round_trip() -> None:
    record = full_record()
    data = record.to_json()

    assert json.loads(json.dumps(data)) == data
    assert data["phase"] == "ready"
    assert data["schema_version"] == 3
    assert data["last_error"]["type"] == "OSError"
    assert data["recent_errors"][0]["traceback"] is None
    assert InitRecord.from_json(json.loads(json.dumps(data))) == record


def test_from_json_accepts_minimal_record_and_integer_duration() -> None:
    record = InitRecord.from_json(
        {
            "schema_version": 1,
            "model_name": "m",
            "model_version": "2",
            "phase": "failed",
            "attempts": 1,
            "failures": 1,
            "consecutive_failures": 1,
            "last_duration_s": 3,
        }
    )
    assert record.phase is InitPhase.FAILED
    assert record.last_duration_s == 3.0
    assert type(record.last_duration_s) is float
    assert record.recent_errors == ()


def _valid() -> dict[str, Any]:
    return full_record().to_json()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d.pop("model_name"), "missing field 'model_name'"),
        (lambda d: d.pop("schema_version"), "missing field 'schema_version'"),
        (lambda d: d.update(attempts="3"), "field 'attempts' is '3', expected int"),
        (lambda d: d.update(attempts=True), "field 'attempts' is True, expected int"),
        (lambda d: d.update(failures=1.0), "field 'failures' is 1.0, expected int"),
        (lambda d: d.update(model_version=1), "field 'model_version' is 1, expected str"),
        (
            lambda d: d.update(attempts_to_ready="1"),
            "field 'attempts_to_ready' is '1', expected int or null",
        ),
        (
            lambda d: d.update(last_duration_s="1s"),
            "field 'last_duration_s' is '1s', expected int or float or null",
        ),
        (lambda d: d.update(server=[1]), "field 'server' is [1], expected str or null"),
        (lambda d: d.update(workers={}), "field 'workers' is {}, expected list"),
        (
            lambda d: d.update(workers=[{"id": "9000"}]),
            "missing field 'workers[0].pid'",
        ),
        (lambda d: d.update(updated_at=5), "field 'updated_at' is 5, expected str or null"),
        (lambda d: d.update(schema_version=4), "schema_version 4, expected 3"),
        (
            lambda d: d.update(phase="starting"),
            "phase 'starting', expected one of initializing, ready, failed",
        ),
        (lambda d: d.update(phase=1), "field 'phase' is 1, expected str"),
        (lambda d: d.update(last_error="boom"), "field 'last_error' is str, expected an object"),
        (lambda d: d.update(recent_errors={}), "field 'recent_errors' is {}, expected list"),
        (lambda d: d["recent_errors"][0].pop("type"), "missing field 'recent_errors[0].type'"),
        (
            lambda d: d["last_error"].update(attempt="1"),
            "field 'last_error.attempt' is '1', expected int",
        ),
        (
            lambda d: d["last_error"].update(traceback=3),
            "field 'last_error.traceback' is 3, expected str or null",
        ),
    ],
)
def test_from_json_names_the_bad_field(change: Any, reason: str) -> None:
    data = _valid()
    change(data)

    with pytest.raises(RecordError) as caught:
        InitRecord.from_json(data, "/state/m/1.0/init.json")

    assert str(caught.value) == f"unreadable health record /state/m/1.0/init.json: {reason}"
    assert caught.value.path == "/state/m/1.0/init.json"


@pytest.mark.parametrize("raw", [[], "record", None, 3])
def test_from_json_rejects_non_objects(raw: Any) -> None:
    with pytest.raises(RecordError, match=r"^unreadable health record record: expected a JSON"):
        InitRecord.from_json(raw)


def test_error_info_from_json_defaults_and_names() -> None:
    raw = {"type": "OSError", "message": "m", "at": "2025-06-15T15:06:40.000Z", "attempt": 1}

    assert ErrorInfo.from_json(raw, "w").traceback is None
    with pytest.raises(RecordError) as caught:
        ErrorInfo.from_json({**raw, "type": 1}, "w")
    assert str(caught.value) == "unreadable health record w: field 'error.type' is 1, expected str"


@pytest.mark.parametrize("key", ["message", "at"])
def test_error_info_fields_are_named_with_their_prefix_and_place(key: str) -> None:
    raw = {"type": "OSError", "message": "m", "at": "2025-06-15T15:06:40.000Z", "attempt": 1}

    with pytest.raises(RecordError) as caught:
        ErrorInfo.from_json({**raw, key: None}, "/s/init.json", "last_error")

    assert str(caught.value) == (
        f"unreadable health record /s/init.json: field 'last_error.{key}' is None, expected str"
    )


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("consecutive_failures", None, "int"),
        ("first_failure_at", 1, "str or null"),
        ("last_started_at", 1, "str or null"),
        ("last_finished_at", 1, "str or null"),
        ("worker_pid", "1", "int or null"),
    ],
)
def test_every_bad_field_names_the_file(key: str, value: Any, expected: str) -> None:
    data = {**_valid(), key: value}

    with pytest.raises(RecordError) as caught:
        InitRecord.from_json(data, "/s/init.json")

    assert str(caught.value) == (
        f"unreadable health record /s/init.json: field {key!r} is {value!r}, expected {expected}"
    )


def test_a_record_without_a_duration_has_none() -> None:
    data = _valid()
    del data["last_duration_s"]

    assert InitRecord.from_json(data).last_duration_s is None


@pytest.mark.parametrize("duration", [-0.5, float("inf"), 10**400])
def test_a_duration_that_is_not_finite_seconds_is_refused(duration: Any) -> None:
    data = {**_valid(), "last_duration_s": duration}

    with pytest.raises(RecordError) as caught:
        InitRecord.from_json(data, "/s/init.json")

    assert str(caught.value) == (
        "unreadable health record /s/init.json: "
        "field 'last_duration_s' is not a finite number of seconds >= 0"
    )


def test_a_non_object_record_names_its_type() -> None:
    with pytest.raises(RecordError) as caught:
        InitRecord.from_json([1], "/s/init.json")

    assert str(caught.value) == (
        "unreadable health record /s/init.json: expected a JSON object, got list"
    )


@pytest.mark.parametrize(
    ("length", "shown"),
    [(80, "'" + "a" * 78 + "'"), (81, "'" + "a" * 37 + "..." + "a" * 38 + "'")],
    ids=["exactly-80-kept", "81-cut-to-80"],
)
def test_a_bad_value_is_shown_in_at_most_80_characters(length: int, shown: str) -> None:
    data = {**_valid(), "attempts": "a" * (length - 2)}  # a str's repr adds two quotes

    with pytest.raises(RecordError) as caught:
        InitRecord.from_json(data, "w")

    assert str(caught.value) == (
        f"unreadable health record w: field 'attempts' is {shown}, expected int"
    )
    assert len(shown) == 80


# -- an attempt whose worker died before initialize() returned -----------------------------


def begun_by(pid: int, now: float = T0) -> InitRecord:
    return InitRecord.started(
        None, model_name="m", model_version="1.0", now=now, worker_pid=pid, server=SERVER
    )


def restart(previous: InitRecord, *, alive: bool, pid: int = 12, now: float = T0 + 4) -> InitRecord:
    return InitRecord.started(
        previous,
        model_name="m",
        model_version="1.0",
        now=now,
        worker_pid=pid,
        server=SERVER,
        worker_alive=lambda _pid: alive,
    )


def test_a_dead_unfinished_attempt_is_counted_as_a_failure() -> None:
    record = restart(begun_by(11), alive=False)

    assert record.phase is InitPhase.INITIALIZING
    assert record.attempts == 2
    assert record.failures == 1
    assert record.consecutive_failures == 1
    assert record.first_failure_at == utc_iso(T0 + 4)
    assert record.last_error is not None
    assert record.last_error.type == "WorkerDied"
    assert record.last_error.attempt == 1
    assert "worker 11 ended during initialize()" in record.last_error.message
    assert "startupTimeout" in record.last_error.message
    assert record.last_duration_s == 4.0


@pytest.mark.parametrize(
    ("alive", "pid"), [(True, 12), (False, 11)], ids=["still-alive", "same-worker"]
)
def test_a_live_or_own_unfinished_attempt_is_not_a_failure(alive: bool, pid: int) -> None:
    record = restart(begun_by(11), alive=alive, pid=pid)

    assert record.attempts == 2
    assert record.failures == 0
    assert record.last_error is None


def test_a_finished_attempt_is_never_reinterpreted() -> None:
    ready = begun_by(11).succeeded(now=T0 + 1, duration_s=1.0, worker_pid=11)

    record = restart(ready, alive=False)

    assert record.failures == 0
    assert record.attempts_to_ready == 1


def test_liveness_is_asked_about_the_unfinished_attempts_worker() -> None:
    asked: list[int] = []

    def alive(pid: int) -> bool:
        asked.append(pid)
        return True

    InitRecord.started(
        begun_by(11), model_name="m", model_version="1.0", now=T0 + 4, worker_pid=12,
        server=SERVER, worker_alive=alive,
    )  # fmt: skip

    assert asked == [11]


def test_an_interrupted_attempt_is_timed_from_its_start() -> None:
    record = begun_by(11).interrupted(now=T0 + 0.5)

    assert record.last_duration_s == 0.5
    assert record.worker_pid == 11
    assert record.last_error is not None
    assert record.last_error.message == (
        "worker 11 ended during initialize() without a result (killed by TorchServe's "
        "startupTimeout, the OOM killer or a signal)"
    )
    assert record.last_error.at == utc_iso(T0 + 0.5)


def test_an_interrupted_attempt_without_start_or_pid() -> None:
    unknown = InitRecord("m", "1.0", InitPhase.INITIALIZING, attempts=1)

    record = unknown.interrupted(now=T0)

    assert record.last_duration_s == 0.0
    assert record.worker_pid == 0
