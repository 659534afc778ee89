"""Edges of the judgement's table cells (``ModelHealth.cells``): a describe without a job
queue; the other worker failing."""

from __future__ import annotations

from tests.support.describes import entry
from tests.support.records import NOW, attempt, beat
from ts_health_handler.probe import ModelState, Observation, assess
from ts_health_handler.record._deaths import Death, DeathCause

T0 = 1_750_000_000.0


def test_a_describe_without_a_job_queue_has_a_dash_for_its_queue_cell() -> None:
    described = entry("READY", "LOADING", remaining=None)
    assert described.queue is None
    health = assess("m", "1.0", Observation(described))
    assert health.cells() == ("1/2", "-")
    assert health.cells(lambda q: "never asked") == ("1/2", "-")


def test_the_other_worker_failing_is_the_newest_failure_of_a_worker_not_ready() -> None:
    # 9001 failed first (message "z"), 9002 later (message "a"): the newest is named, not the
    # greatest by type or message.
    record = attempt(None, "9001", 11, at=T0, fail="z")
    record = attempt(record, "9002", 12, at=T0 + 10, fail="a")
    described = entry("READY", "UNLOADING", "UNLOADING", remaining=None)
    health = assess("m", "1.0", Observation(described, record=record, now=T0 + 20))
    assert health.state is ModelState.READY
    assert health.reason == "1/3 workers READY; other worker failing: KeyError: a"


def test_a_failure_recorded_for_a_worker_described_ready_is_not_another_worker_failing() -> None:
    # The record still holds 9000's failure (newest) though TorchServe describes it READY now.
    record = attempt(None, "9001", 11, at=T0, fail="older")
    record = attempt(record, "9000", 12, at=T0 + 10, fail="stale")
    described = entry("READY", "UNLOADING", remaining=None)
    health = assess("m", "1.0", Observation(described, record=record, now=T0 + 20))
    assert health.reason == "1/2 workers READY; other worker failing: KeyError: older"
    alone = entry("READY", remaining=None)
    assert assess("m", "1.0", Observation(alone, record=record, now=T0 + 20)).reason == (
        "1/1 workers READY"
    )


def test_a_restarting_worker_names_the_death_of_the_last_worker_process() -> None:
    record = attempt(None, "9000", 11, at=T0)
    death = Death("9000", 11, last_seen=T0 + 50, found=T0 + 60, cause=DeathCause.DIED)
    record = record._replace(deaths=(death,), deaths_total=1)
    health = assess(
        "m", "1.0", Observation(entry("UNLOADING", remaining=None), record=record, now=T0 + 70)
    )
    assert health.state is ModelState.INITIALIZING
    assert health.reason == (
        f"no READY worker (0/1 workers READY); the last initialization succeeded at "
        f"{record.last_finished_at}, a worker is restarting; the last worker process ended "
        "while serving: idle when last seen"
    )


def test_a_ready_reason_keeps_the_workers_and_adds_a_death_below_the_unstable_count() -> None:
    record = attempt(None, "9000", 11, at=NOW - 300)
    record = record.died(Death("9000", 11, NOW - 100, NOW - 90, DeathCause.DIED))
    described = entry("READY", remaining=None)
    health = assess("m", "1.0", Observation(described, record=record, beats=(beat(),), now=NOW))
    assert health.state is ModelState.READY
    assert health.reason == (
        "1/1 workers READY; a worker died once in the last 10 min while serving "
        "(last: idle when last seen)"
    )
