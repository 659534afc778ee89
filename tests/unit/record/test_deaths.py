"""Deaths: told from a worker's last beat, kept in the record, counted and narrowed."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.records import NOW, POISON, beat
from ts_health_handler.record import ErrorInfo, InitRecord, narrow
from ts_health_handler.record._deaths import Death, DeathCause, death_from_beat


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
