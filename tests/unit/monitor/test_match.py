"""Which record belongs to the registration TorchServe describes now (``_match``): by worker
id, process and start time (up to the clock slack, exactly), which of the records that fit
alike is current and which is history; and what the verdict makes of a registration's runs
and of an earlier one's failure."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.describes import entry, thread
from tests.support.records import attempt
from tests.support.status_docs import status_doc
from ts_health_handler.monitor._match import CLOCK_SLACK_S, Match, match
from ts_health_handler.probe import ModelHealth, ModelState, Observation, assess
from ts_health_handler.record import utc_iso
from ts_health_handler.record._registration import narrow
from ts_health_handler.torchserve._answers import ModelEntry, Worker

T0 = 1_750_000_000.0


# -- matching records to what TorchServe describes ------------------------------------------


def test_the_record_of_the_thread_described_now_is_current() -> None:
    record = attempt(None, "9000", 11, at=T0 + 1, fail="x")
    found = match(entry(thread("9000", 11, T0)), [("a.json", record)])
    assert (found.current, found.path, found.previous) == (record, "a.json", None)


def test_a_record_older_than_the_thread_is_from_an_earlier_server_run() -> None:
    before_restart = attempt(None, "9000", 11, at=T0, fail="x")
    found = match(entry(thread("9000", 77, T0 + 600)), [("old.json", before_restart)])
    assert found.current is None
    assert found.previous == before_restart


def test_after_re_registration_the_old_threads_record_is_history() -> None:
    old = attempt(None, "9000", 11, at=T0, fail="x")
    found = match(entry(thread("9001", 12, T0 + 60)), [("r.json", old)])
    assert (found.current, found.previous) == (None, old)


@pytest.mark.parametrize(("started", "belongs"), [(T0 + 1.5, True), (T0 + 2.5, False)])
def test_a_record_begun_up_to_two_seconds_before_its_thread_still_belongs_to_it(
    started: float, belongs: bool
) -> None:
    # The frontend stamps startTime before the worker process runs, on another clock.
    record = attempt(None, "9000", 11, at=T0, fail="x")
    found = match(entry(thread("9000", 11, started)), [("r.json", record)])
    assert (found.current, found.previous) == ((record, None) if belongs else (None, record))


def test_a_record_begun_exactly_the_clock_slack_before_its_thread_belongs_to_it() -> None:
    record = attempt(None, "9000", 11, at=T0, fail="x")
    found = match(entry(thread("9000", 11, T0 + CLOCK_SLACK_S)), [("r.json", record)])
    assert (found.current, found.path, found.previous) == (record, "r.json", None)


def test_a_record_begun_a_millisecond_earlier_than_the_slack_does_not() -> None:
    record = attempt(None, "9000", 11, at=T0, fail="x")
    found = match(entry(thread("9000", 11, T0 + CLOCK_SLACK_S + 0.001)), [("r.json", record)])
    assert (found.current, found.previous) == (None, record)


@pytest.mark.parametrize("start_time", [None, "", "yesterday"])
def test_a_thread_without_a_readable_start_time_takes_its_record(start_time: str | None) -> None:
    record = attempt(None, "9000", 11, at=T0, fail="x")
    described = ModelEntry("m", "1.0", (Worker("UNLOADING", "9000", 11, start_time),))
    assert match(described, [("r.json", record)]) == Match(record, "r.json", None)


def test_two_servers_fitting_in_time_are_told_apart_by_the_worker_pid() -> None:
    mine = attempt(None, "9000", 11, at=T0 + 1, fail="mine")
    theirs = attempt(None, "9000", 99, at=T0 + 2, fail="theirs", server="300-1")
    found = match(entry(thread("9000", 11, T0)), [("t.json", theirs), ("m.json", mine)])
    assert (found.current, found.path, found.previous) == (mine, "m.json", theirs)


def test_a_record_without_worker_ids_is_taken_when_nothing_fits_better() -> None:
    legacy = attempt(None, None, 11, at=T0, fail="x")
    fits = attempt(None, "9000", 12, at=T0 + 1)
    described = entry(thread("9000", 12, T0))
    assert match(described, [("l.json", legacy)]).current == legacy
    assert match(described, [("l.json", legacy), ("f.json", fits)]).current == fits


def test_a_record_that_fits_in_time_wins_over_a_newer_one_without_worker_ids() -> None:
    fits = attempt(None, "9000", 12, at=T0 + 1)
    legacy = attempt(None, None, 11, at=T0 + 50, fail="x")
    # Neither pid matches the one described (99): the fit is by worker id and time only.
    found = match(entry(thread("9000", 99, T0)), [("l.json", legacy), ("f.json", fits)])
    assert (found.current, found.path, found.previous) == (fits, "f.json", legacy)


def test_nothing_found_matches_nothing() -> None:
    assert match(entry(thread("9000", 11, T0)), []) == Match(None, None, None)


def test_of_records_that_fit_alike_the_last_updated_is_current_and_the_other_history() -> None:
    # Neither names the worker pid described now (its process restarted): both fit in time.
    older = attempt(None, "9000", 11, at=T0 + 1, fail="older")
    newer = attempt(None, "9000", 12, at=T0 + 5, fail="newer", server="100-6")
    for found in ([("o.json", older), ("n.json", newer)], [("n.json", newer), ("o.json", older)]):
        assert match(entry(thread("9000", 77, T0)), found) == Match(newer, "n.json", older)


def test_a_record_without_an_update_time_loses_to_an_equal_fit_that_has_one() -> None:
    dated = attempt(None, "9000", 12, at=T0 + 1, fail="dated")
    undated = attempt(None, "9000", 13, at=T0 + 2, fail="undated")._replace(updated_at=None)
    for found in (
        [("u.json", undated), ("d.json", dated)],
        [("d.json", dated), ("u.json", undated)],
    ):
        assert match(entry(thread("9000", 99, T0)), found).current == dated


def test_of_two_records_alike_in_fit_and_time_the_first_found_is_current() -> None:
    one = attempt(None, "9000", 12, at=T0 + 1, fail="one")
    two = attempt(None, "9000", 13, at=T0 + 1, fail="two", server="300-1")
    assert one.updated_at == two.updated_at
    found = match(entry(thread("9000", 99, T0)), [("1.json", one), ("2.json", two)])
    assert (found.current, found.path, found.previous) == (one, "1.json", two)


def test_the_previous_record_is_the_newest_of_the_others() -> None:
    current = attempt(None, "9001", 21, at=T0 + 60)
    old = attempt(None, "9000", 11, at=T0, fail="old")
    older = attempt(None, "9000", 5, at=T0 - 600, fail="older", server="1-1")
    found = match(entry(thread("9001", 21, T0 + 59)), [("a", older), ("b", current), ("c", old)])
    assert found == Match(current, "b", old)


def test_the_previous_record_is_the_last_updated_not_the_one_with_more_attempts() -> None:
    # Neither fits the thread described (started later than both): both are history.
    older = attempt(attempt(None, "9000", 11, at=T0 - 100, fail="1"), "9000", 11, at=T0, fail="2")
    newer = attempt(None, "9000", 12, at=T0 + 5, fail="3", server="100-6")
    undated = attempt(None, "9000", 13, at=T0 + 9, fail="4", server="200-6")
    undated = undated._replace(updated_at=None)
    assert older.attempts > newer.attempts
    for found in ([("o", older), ("n", newer), ("u", undated)], [("u", undated), ("n", newer)]):
        assert match(entry(thread("9000", 99, T0 + 600)), found).previous == newer


def test_the_current_record_is_narrowed_to_the_threads_described() -> None:
    record = attempt(None, "9000", 11, at=T0, fail="an earlier thread")
    record = attempt(record, "9001", 12, at=T0 + 5)  # 9000's process is gone
    described = ModelEntry(
        "m", "1.0", (Worker("READY"), Worker("READY", "9001", 12, utc_iso(T0 + 4)))
    )
    found = match(described, [("r.json", record)])
    assert found.current is not None
    assert [r.id for r in found.current.workers] == ["9001"]
    assert found.current == narrow(record, ["9001"])
    assert found.current != record


# -- what the verdict makes of it -----------------------------------------------------------


def verdict(describe: ModelEntry, **seen: Any) -> ModelHealth:
    return assess("m", "1.0", Observation(describe=describe, now=T0 + 100, **seen))


def test_one_worker_failing_before_the_other_starts_stays_in_the_registration() -> None:
    # The race of two workers: 9001 fails and its process is gone before 9000 even enters
    # initialize(). Nothing inside the worker may start a new record on that order.
    record = attempt(None, "9001", 31, at=T0, fail="shard-b weights")
    record = attempt(record, "9000", 11, at=T0 + 3, alive=())
    view = narrow(record, ["9000", "9001"])
    assert [r.id for r in view.workers] == ["9001", "9000"]
    assert (view.attempts, view.failures, view.previous) == (2, 1, None)
    assert view.last_error is not None
    assert view.last_error.message == "shard-b weights"
    describe = ModelEntry(
        "m", "1.0", (Worker("READY", "9000", 11), entry(thread("9001", 31, T0)).workers[0])
    )
    health = verdict(describe, record=view, status=status_doc())
    assert health.reason == "1/2 workers READY; other worker failing: KeyError: shard-b weights"


def test_scaling_up_and_down_while_failing_keeps_the_failures() -> None:
    record = attempt(None, "9000", 11, at=T0, fail="oom")
    record = attempt(record, "9000", 12, at=T0 + 2, fail="oom")
    record = attempt(record, "9001", 13, at=T0 + 3, fail="oom")  # scale-up, none alive
    record = attempt(record, "9000", 14, at=T0 + 5, fail="oom")
    one = narrow(record, ["9000"])  # scaled back to 1: TorchServe dropped 9001
    assert (one.attempts, one.failures, one.consecutive_failures) == (3, 3, 3)
    assert one.first_failure_at == utc_iso(T0 + 1)
    assert one.previous is not None
    assert one.previous.failures == 1
    health = verdict(entry(thread("9000", 14, T0)), record=one)
    assert health.state is ModelState.FAILING
    assert health.reason.startswith("initialization failed 3 times in a row (0/1 workers READY")


def test_a_new_registration_is_initializing_with_the_old_failure_as_history() -> None:
    old = attempt(None, "9000", 11, at=T0, fail="old build")
    health = verdict(entry(thread("9001", 12, T0 + 60)), previous=old)
    assert health.state is ModelState.INITIALIZING
    assert health.reason == (
        "no READY worker yet (0/1 workers READY; no initialization record; "
        "an earlier registration or server run failed: KeyError: old build)"
    )


def test_a_ready_worker_with_another_failing_names_the_other_reason() -> None:
    record = attempt(None, "9000", 11, at=T0)
    record = attempt(record, "9001", 12, at=T0 + 5, fail="weights", alive=(11,))
    failing = entry(thread("9001", 12, T0)).workers[0]
    describe = ModelEntry("m", "1.0", (Worker("READY", "9000", 11), failing))
    health = verdict(describe, record=record, status=status_doc())
    assert health.state is ModelState.READY
    assert health.reason == "1/2 workers READY; other worker failing: KeyError: weights"
    # A worker that is only restarting (its run succeeded before) is not called failing.
    recovered = attempt(record, "9001", 13, at=T0 + 9, alive=(11,))
    assert verdict(describe, record=recovered, status=status_doc()).reason == ("1/2 workers READY")
