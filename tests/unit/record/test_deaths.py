"""Deaths: told from a worker's last beat (the response timeout's boundary, a fatal error with
and without a restart, the error's short type), kept in the record, counted and narrowed,
through JSON with the complaints about a broken one, and the window of recent deaths in the
order they were found."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.records import NOW, POISON, beat
from ts_health_handler.record import ErrorInfo, InitRecord, RecordError, narrow
from ts_health_handler.record._deaths import Death, DeathCause, death_from_beat, deaths_within

WHERE = "/state/m/1.0/init.s.json"


# -- told from the last beat ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "cause", "text"),
    [
        ({}, DeathCause.DIED, "idle when last seen"),
        ({"in_flight_since": NOW - 0.2}, DeathCause.DIED, "during a request, 0.2 s in"),
        (
            {"in_flight_since": NOW - 119.5, "response_timeout_s": 120.0},
            DeathCause.RESPONSE_TIMEOUT,
            "killed by TorchServe at responseTimeout",
        ),
        (
            {"fatal": ErrorInfo("torch.AcceleratorError", POISON, "t", 1), "restarting": True},
            DeathCause.FATAL_RESTART,
            f"restarted after a fatal error: AcceleratorError: {POISON}",
        ),
    ],
)
def test_a_death_is_told_from_the_last_beat(
    changes: dict[str, Any], cause: DeathCause, text: str
) -> None:
    death = death_from_beat(beat(**changes), found=NOW + 3)
    assert (death.cause, death.last_seen, death.found) == (cause, NOW, NOW + 3)
    assert text in death.describe()


def test_a_request_killed_at_the_response_timeout_is_told_at_its_boundary() -> None:
    # last beat at 118 s into the request, one beat later it would be at 119 = timeout - 1
    at_edge = death_from_beat(beat(in_flight_since=NOW - 118), found=NOW + 5)
    assert at_edge.cause is DeathCause.RESPONSE_TIMEOUT
    assert at_edge.describe() == "killed by TorchServe at responseTimeout, a request 118 s in"
    before = death_from_beat(beat(in_flight_since=NOW - 117.5), found=NOW + 5)
    assert before.cause is DeathCause.DIED
    assert before.describe() == "during a request, 117.5 s in when last seen"
    assert before.message is None


def test_a_fatal_error_without_restarting_is_a_plain_death() -> None:
    fatal = ErrorInfo("RuntimeError", "device-side assert", "t", 1)
    reported = death_from_beat(beat(fatal=fatal), found=NOW + 5)
    assert (reported.cause, reported.message) == (DeathCause.DIED, None)
    assert reported.describe() == "idle when last seen"
    ended = death_from_beat(beat(restarting=True), found=NOW + 5)  # no error: not a restart
    assert (ended.cause, ended.message) == (DeathCause.DIED, None)


@pytest.mark.parametrize(
    ("kind", "short"),
    [("RuntimeError", "RuntimeError"), ("torch.cuda.OutOfMemoryError", "OutOfMemoryError")],
)
def test_a_fatal_restart_names_the_errors_short_type(kind: str, short: str) -> None:
    fatal = ErrorInfo(kind, "CUDA out of memory", "t", 1)
    death = death_from_beat(beat(fatal=fatal, restarting=True), found=NOW + 5)
    assert death.message == f"{short}: CUDA out of memory"
    assert death.describe() == f"restarted after a fatal error: {short}: CUDA out of memory"
    assert Death("9000", 1, NOW, NOW, DeathCause.FATAL_RESTART).describe() == (
        "restarted after a fatal error: unknown"
    )


# -- kept in the record and through JSON ----------------------------------------------------


def test_deaths_are_kept_counted_and_narrowed_by_worker() -> None:
    record = InitRecord.started(
        None, model_name="m", model_version="1.0", now=NOW, worker_pid=1, worker_id="9000"
    )
    for n in range(25):
        worker = "9000" if n % 2 else "9001"
        record = record.died(Death(worker, 100 + n, NOW + n, NOW + n + 1, DeathCause.DIED))
    assert (len(record.deaths), record.deaths_total) == (20, 25)
    assert InitRecord.from_json(record.to_json()) == record
    assert {d.worker for d in narrow(record, ["9000"]).deaths} == {"9000"}


def test_every_field_of_a_death_survives_json() -> None:
    death = Death("9001", 77, NOW - 2, NOW + 3, DeathCause.FATAL_RESTART, 1.25, "X: y")
    raw = json.loads(json.dumps(death.to_json()))
    assert raw["message"] == "X: y"
    assert Death.from_json(raw, WHERE, "deaths[0]") == death
    del raw["request_s"], raw["message"]  # an older writer, or nothing to tell
    assert Death.from_json(raw, WHERE, "deaths[0]") == death._replace(request_s=None, message=None)
    assert Death.from_json({**raw, "last_seen": 5, "request_s": 2}, WHERE, "d").request_s == 2.0


def test_complaints_about_a_death_name_the_file_and_the_field() -> None:
    good = Death("9000", 7, NOW, NOW, DeathCause.DIED).to_json()
    cases: list[tuple[Any, str]] = [
        ([], "field 'deaths[3]' is list, expected an object"),
        ({**good, "cause": "bored"}, "field deaths[3].cause is 'bored'"),
        ({**good, "cause": 1}, "field 'deaths[3].cause' is 1"),
        ({**good, "request_s": "long"}, "field 'deaths[3].request_s' is 'long'"),
        ({**good, "message": 5}, "field 'deaths[3].message' is 5"),
        ({**good, "worker": 9000}, "field 'deaths[3].worker' is 9000"),
        ({**good, "pid": "7"}, "field 'deaths[3].pid' is '7'"),
        ({**good, "last_seen": None}, "field 'deaths[3].last_seen' is None"),
        ({**good, "found": "now"}, "field 'deaths[3].found' is 'now'"),
    ]
    for raw, text in cases:
        with pytest.raises(RecordError) as caught:
            Death.from_json(raw, WHERE, "deaths[3]")
        assert caught.value.path == WHERE
        assert text in str(caught.value), text


# -- the window of recent deaths ------------------------------------------------------------


def test_recent_deaths_are_those_of_the_window_oldest_found_first() -> None:
    old = Death("9000", 1, NOW - 700, NOW - 600, DeathCause.DIED)
    late = Death("9000", 2, NOW - 50, NOW - 10, DeathCause.DIED)
    early = Death("9001", 3, NOW - 90, NOW - 80, DeathCause.DIED)
    assert deaths_within([late, old, early], NOW, 600.0) == [old, early, late]  # 600 s: kept
    assert deaths_within([late, old, early], NOW, 599.0) == [early, late]
