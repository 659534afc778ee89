"""Edges of matching a record to the registration described now (``_match``): the clock
slack's boundary and a record without worker ids against one that fits."""

from __future__ import annotations

from tests.support.describes import entry, thread
from tests.support.records import attempt
from ts_health_handler.monitor._match import CLOCK_SLACK_S, match

T0 = 1_750_000_000.0


def test_a_record_begun_exactly_the_clock_slack_before_its_thread_belongs_to_it() -> None:
    record = attempt(None, "9000", 11, at=T0, fail="x")
    found = match(entry(thread("9000", 11, T0 + CLOCK_SLACK_S)), [("r.json", record)])
    assert (found.current, found.path, found.previous) == (record, "r.json", None)


def test_a_record_begun_a_millisecond_earlier_than_the_slack_does_not() -> None:
    record = attempt(None, "9000", 11, at=T0, fail="x")
    found = match(entry(thread("9000", 11, T0 + CLOCK_SLACK_S + 0.001)), [("r.json", record)])
    assert (found.current, found.previous) == (None, record)


def test_a_record_that_fits_in_time_wins_over_a_newer_one_without_worker_ids() -> None:
    fits = attempt(None, "9000", 12, at=T0 + 1)
    legacy = attempt(None, None, 11, at=T0 + 50, fail="x")
    # Neither pid matches the one described (99): the fit is by worker id and time only.
    found = match(entry(thread("9000", 99, T0)), [("l.json", legacy), ("f.json", fits)])
    assert (found.current, found.path, found.previous) == (fits, "f.json", legacy)


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


def test_the_previous_record_is_the_last_updated_not_the_one_with_more_attempts() -> None:
    # Neither fits the thread described (started later than both): both are history.
    older = attempt(attempt(None, "9000", 11, at=T0 - 100, fail="1"), "9000", 11, at=T0, fail="2")
    newer = attempt(None, "9000", 12, at=T0 + 5, fail="3", server="100-6")
    undated = attempt(None, "9000", 13, at=T0 + 9, fail="4", server="200-6")
    undated = undated._replace(updated_at=None)
    assert older.attempts > newer.attempts
    for found in ([("o", older), ("n", newer), ("u", undated)], [("u", undated), ("n", newer)]):
        assert match(entry(thread("9000", 99, T0 + 600)), found).previous == newer
