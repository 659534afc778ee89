"""Readiness and liveness as served (``serve/_readiness``): the staleness boundaries of the model
list, of a model and of /ping, and their reasons; a model listed but not observed; models that
could not be described; a version that is not the default; one unready version in the
singular. The same through the HTTP routes: tests/unit/serve/test_routes.py."""

from __future__ import annotations

from ts_health_handler._lifecycle import ModelState
from ts_health_handler.monitor._assess import ModelHealth, Observation
from ts_health_handler.monitor._observe import PingResult
from ts_health_handler.monitor._policy import READY_ONLY
from ts_health_handler.serve._options import ServeOptions
from ts_health_handler.serve._readiness import (
    Live,
    Readiness,
    liveness,
    model_ready,
    server_ready,
    watched,
)
from ts_health_handler.serve._snapshot import ModelSeen, Snapshot
from ts_health_handler.torchserve._answers import ModelEntry

STALE = 10.0
OPTIONS = ServeOptions("127.0.0.1", 0, stale_after=STALE)


def ready_model(name: str, at: float) -> ModelSeen:
    return ModelSeen(name, (ModelHealth(name, "1.0", ModelState.READY, "fine"),), at)


def test_a_model_list_exactly_as_old_as_stale_after_is_fresh() -> None:
    now = 100.0 + STALE
    snap = Snapshot(0.0, names=("m",), names_at=100.0, models={"m": ready_model("m", now)})
    assert server_ready(snap, OPTIONS, READY_ONLY, now) == (True, "1 model version ready", [])


def test_a_stale_model_list_names_its_age_and_the_latest_listing_error() -> None:
    now = 100.0 + STALE + 2.0
    models = {"m": ready_model("m", now)}
    failed = Snapshot(0.0, names=("m",), names_at=100.0, names_error="refused", models=models)
    assert server_ready(failed, OPTIONS, READY_ONLY, now) == (
        False,
        "observation stale (12 s) (model list): refused",
        [],
    )
    quiet = Snapshot(0.0, names=("m",), names_at=100.0, models=models)
    assert server_ready(quiet, OPTIONS, READY_ONLY, now) == (
        False,
        "observation stale (12 s) (model list)",
        [],
    )


def test_a_model_not_listed_without_a_listing_time_is_not_observed_yet() -> None:
    snap = Snapshot(0.0, names=("a",), names_at=None)
    assert model_ready(snap, OPTIONS, READY_ONLY, 50.0, "b", "2.0") == Readiness(
        "b", "2.0", "unknown", "not observed yet", False
    )


def test_a_model_not_listed_exactly_stale_after_ago_is_not_registered() -> None:
    snap = Snapshot(0.0, names=("a",), names_at=100.0)
    assert model_ready(snap, OPTIONS, READY_ONLY, 100.0 + STALE, "b", None) is None
    assert model_ready(snap, OPTIONS, READY_ONLY, 100.0 + STALE + 0.5, "b", None) == Readiness(
        "b", None, "unknown", "not observed yet", False
    )


def test_a_registered_model_that_could_not_be_described_is_unknown_with_the_error() -> None:
    seen = ModelSeen("m", (), 5.0, error="token refused", registered=True)
    snap = Snapshot(0.0, names=("m",), names_at=5.0, models={"m": seen})
    assert model_ready(snap, OPTIONS, READY_ONLY, 6.0, "m", None) == Readiness(
        "m", None, "unknown", "token refused", False
    )


def test_a_model_torchserve_says_is_not_registered_is_none() -> None:
    seen = ModelSeen("m", (), 5.0, error="model not found", registered=False)
    snap = Snapshot(0.0, names=("m",), names_at=5.0, models={"m": seen})
    assert model_ready(snap, OPTIONS, READY_ONLY, 6.0, "m", None) is None


def test_models_that_could_not_be_described_are_unready_versions_with_the_error() -> None:
    models = {
        "a": ModelSeen("a", (), 5.0, error="token refused", registered=True),
        "b": ModelSeen("b", (), 5.0, error="model not found", registered=False),
    }
    snap = Snapshot(0.0, names=("a", "b", "c"), names_at=5.0, models=models)
    assert server_ready(snap, OPTIONS, READY_ONLY, 6.0) == (
        False,
        "3 of 3 model versions not ready",
        [
            Readiness("a", None, "unknown", "token refused", False),
            Readiness("b", None, "not_registered", "model not found", False),
            Readiness("c", None, "unknown", "not observed yet", False),
        ],
    )


def test_an_observation_under_a_second_old_is_fresh_for_a_sub_second_stale_after() -> None:
    quick = ServeOptions("127.0.0.1", 0, stale_after=0.5)
    snap = Snapshot(
        0.0,
        ping=PingResult(True, "Healthy"),
        ping_at=10.0,
        names=("m",),
        names_at=10.0,
        models={"m": ready_model("m", 10.0)},
    )
    assert liveness(snap, quick, 10.2) == Live(True, "/ping answered Healthy")
    assert server_ready(snap, quick, READY_ONLY, 10.2)[0] is True


def test_a_ping_without_its_time_is_no_answer_yet() -> None:
    snap = Snapshot(3.0, ping=PingResult(True, "Healthy"), ping_at=None)
    assert liveness(snap, OPTIONS, 10.0) == Live(False, "no /ping answer yet (7 s)")
    assert liveness(Snapshot(3.0), OPTIONS, 10.0) == Live(False, "no /ping answer yet (7 s)")


def test_a_ping_exactly_as_old_as_stale_after_is_fresh_and_older_is_stale() -> None:
    snap = Snapshot(0.0, ping=PingResult(True, "Healthy"), ping_at=100.0)
    assert liveness(snap, OPTIONS, 100.0 + STALE) == Live(True, "/ping answered Healthy")
    assert liveness(snap, OPTIONS, 100.0 + STALE + 1.0) == Live(
        False, "observation stale (11 s) (/ping)"
    )


def test_a_model_observed_exactly_stale_after_ago_is_fresh() -> None:
    snap = Snapshot(0.0, names=("m",), names_at=109.0, models={"m": ready_model("m", 100.0)})
    assert watched(snap, OPTIONS, READY_ONLY, 100.0 + STALE) == [
        Readiness("m", "1.0", "ready", "fine", True)
    ]
    assert watched(snap, OPTIONS, READY_ONLY, 100.0 + STALE + 0.6) == [
        Readiness("m", "1.0", "ready", "observation stale (11 s)", False)
    ]


def test_a_version_that_is_not_the_default_keeps_saying_so() -> None:
    other = Observation(ModelEntry("m", "2.0", ()), default=False)
    healths = (
        ModelHealth("m", "1.0", ModelState.READY, "fine"),
        ModelHealth("m", "2.0", ModelState.READY, "fine", other),
    )
    snap = Snapshot(0.0, names=("m",), names_at=5.0, models={"m": ModelSeen("m", healths, 5.0)})
    assert [r.default for r in watched(snap, OPTIONS, READY_ONLY, 6.0)] == [True, False]
    assert model_ready(snap, OPTIONS, READY_ONLY, 6.0, "m", "2.0") == Readiness(
        "m", "2.0", "ready", "fine", True, default=False
    )


def test_one_unready_version_of_one_is_said_in_the_singular() -> None:
    models = {"a": ModelSeen("a", (), 5.0, error="token refused", registered=True)}
    snap = Snapshot(0.0, names=("a",), names_at=5.0, models=models)
    ready, reason, unready = server_ready(snap, OPTIONS, READY_ONLY, 6.0)
    assert (ready, reason, len(unready)) == (False, "1 of 1 model version not ready", 1)
