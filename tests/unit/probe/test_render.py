"""What ``ts-health`` prints for people (``probe._render``): one line per verdict, and the
status table: columns as wide as their widest cell, the default version marked."""

from __future__ import annotations

from tests.support.serve_support import health
from ts_health_handler._lifecycle import ModelState
from ts_health_handler.monitor._assess import ModelHealth
from ts_health_handler.probe._render import health_line, status_table


def test_a_verdict_is_one_line_of_state_model_version_and_reason() -> None:
    verdict = ModelHealth("m", "2.0", ModelState.FAILING, "initialization failed 3 times in a row")
    assert health_line(verdict) == "failing: model m 2.0: initialization failed 3 times in a row"


def test_no_models_is_said_under_the_header() -> None:
    assert status_table("server http://h:1: /ping Healthy", []) == (
        "server http://h:1: /ping Healthy\nno models registered"
    )


def test_columns_are_as_wide_as_their_widest_cell_and_the_reason_is_last() -> None:
    rows = [
        ModelHealth("a-long-model-name", "1.0", ModelState.READY, ""),
        health("b", "10.0.1", remaining=0),
    ]
    assert status_table("header", rows).splitlines() == [
        "header",
        "MODEL              VERSION  STATE      WORKERS  QUEUE    REASON",
        "a-long-model-name  1.0      ready      -        -",
        "b                  10.0.1   saturated  1/1      100/100  "
        "job queue full: 100 pending, 0 free (1/1 workers READY)",
    ]


def test_workers_and_queue_cells_count_ready_workers_and_the_queue_fill() -> None:
    full = health("m", workers=("READY", "UNLOADING"), remaining=0)
    free = health("n", remaining=97)
    lines = status_table("h", [full, free]).splitlines()
    assert lines[2].split()[:5] == ["m", "1.0", "saturated", "1/2", "100/100"]
    assert lines[3].split()[:5] == ["n", "1.0", "ready", "1/1", "0/97"]


def test_the_default_version_is_marked_only_among_several() -> None:
    results = [
        health("m", "1.0"),
        health("m", "2.0", default=False),
        health("solo", "3.0"),
    ]
    lines = status_table("h", results).splitlines()
    assert [line[:27] for line in lines[2:]] == [
        "m      1.0 (default)  ready",
        "m      2.0            ready",
        "solo   3.0            ready",
    ]
    assert "(default)" not in status_table("h", [health("m", "2.0", default=False)])
