"""What a reason is about: every verdict carries a kind from a fixed vocabulary, and the
metrics carry only bounded labels, so a live number in a reason never makes a new series."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.describes import entry
from tests.support.records import beat
from tests.support.serve_support import metrics_samples, settings_for
from tests.support.status_docs import status_doc
from ts_health_handler._document import parse_status
from ts_health_handler._lifecycle import ModelState, ReasonKind
from ts_health_handler.monitor._assess import ModelHealth, Observation, assess
from ts_health_handler.monitor._observe import observe, observe_model
from ts_health_handler.monitor._policy import READY_ONLY
from ts_health_handler.monitor._report import health_json
from ts_health_handler.record import ErrorInfo, InitPhase, InitRecord, utc_iso
from ts_health_handler.record._deaths import Death, DeathCause
from ts_health_handler.torchserve._answers import ModelEntry
from ts_health_handler.torchserve._client import Unreachable

NOW = 1_750_000_000.0


def failed(first_failure_ago: float = 10.0) -> InitRecord:
    at = NOW - first_failure_ago
    record = InitRecord.started(
        None, model_name="m", model_version="1.0", now=at, worker_pid=11, server="1"
    )
    error = ErrorInfo("builtins.ValueError", "weights missing", utc_iso(at), 1)
    return record.failed(error, now=at, duration_s=0.1, worker_pid=11)


def deaths(count: int) -> InitRecord:
    record = InitRecord("m", "1.0", InitPhase.READY)
    for n in range(count):
        record = record.died(Death("9000", 10 + n, NOW - 100 + n, NOW - 90 + n, DeathCause.DIED))
    return record


ERROR = ErrorInfo("builtins.ValueError", "bad input", "t", 9)
FATAL = ErrorInfo("RuntimeError", "CUDA error: device-side assert triggered", "t", 1)

#: One observation per branch of ``assess``: (state, kind, what was seen).
BRANCHES: list[tuple[ModelState, ReasonKind, dict[str, Any]]] = [
    (ModelState.READY, ReasonKind.OK, {"describe": entry("READY")}),
    (ModelState.INITIALIZING, ReasonKind.LOADING, {"describe": entry("UNLOADING")}),
    (
        ModelState.INITIALIZING,
        ReasonKind.RESTARTING,
        {"describe": entry("UNLOADING"), "record": InitRecord("m", "1.0", InitPhase.READY)},
    ),
    (ModelState.FAILING, ReasonKind.INIT_FAILED, {"describe": entry(), "record": failed()}),
    (
        ModelState.FAILING,
        ReasonKind.INIT_FAILED,
        {"describe": entry("READY"), "status": parse_status(status_doc("failed"))},
    ),
    (
        ModelState.UNHEALTHY,
        ReasonKind.RETRY_WINDOW_PASSED,
        {"describe": entry(), "record": failed(first_failure_ago=400)},
    ),
    (
        ModelState.UNHEALTHY,
        ReasonKind.PING_UNHEALTHY,
        {"describe": entry(), "record": failed(), "ping_healthy": False},
    ),
    (ModelState.UNHEALTHY, ReasonKind.NO_WORKERS, {"describe": entry(min_workers=0)}),
    (
        ModelState.STUCK,
        ReasonKind.REQUEST_STUCK,
        {"describe": entry("READY"), "beats": (beat(in_flight_since=NOW - 40),)},
    ),
    (
        ModelState.STUCK,
        ReasonKind.HEARTBEAT_STOPPED,
        {"describe": entry("READY"), "beats": (beat(at=NOW - 7),)},
    ),
    (
        ModelState.FAILING,
        ReasonKind.REQUESTS_FAILING,
        {"describe": entry("READY"), "beats": (beat(consecutive_failures=5, last_error=ERROR),)},
    ),
    (
        ModelState.FAILING,
        ReasonKind.FATAL_ERROR,
        {"describe": entry("READY"), "beats": (beat(fatal=FATAL, consecutive_failures=1),)},
    ),
    (ModelState.SATURATED, ReasonKind.QUEUE_FULL, {"describe": entry("READY", remaining=0)}),
    (
        ModelState.UNSTABLE,
        ReasonKind.DEATHS,
        {"describe": entry("READY"), "beats": (beat(),), "record": deaths(3)},
    ),
    (
        ModelState.DEGRADED,
        ReasonKind.CHECK_FAILED,
        {"describe": entry("READY"), "status": parse_status(status_doc("degraded"))},
    ),
]


@pytest.mark.parametrize(("state", "kind", "seen"), BRANCHES, ids=lambda v: str(v)[:30])
def test_every_verdict_names_its_kind(
    state: ModelState, kind: ReasonKind, seen: dict[str, Any]
) -> None:
    health = assess("m", "1.0", Observation(now=NOW, **seen))
    assert (health.state, health.kind) == (state, kind), health.reason
    assert health_json(health, READY_ONLY)["kind"] == kind.value


def test_the_vocabulary_is_covered_and_fixed() -> None:
    named = {kind for _, kind, _ in BRANCHES} | {ReasonKind.UNREACHABLE, ReasonKind.UNKNOWN}
    assert named == set(ReasonKind)
    # Each word is a valid, short Prometheus label value in snake case.
    for kind in ReasonKind:
        assert kind.value.replace("_", "").isalpha(), kind
        assert kind.value.islower(), kind
    # A verdict built by hand says that it has no kind; it never claims one.
    assert ModelHealth("m", "1.0", ModelState.READY, "by hand").kind is ReasonKind.UNKNOWN


class _Unreachable:
    """A client whose TorchServe does not answer."""

    def describe(self, model: str, version: str | None = None) -> ModelEntry:
        raise Unreachable("connection refused")

    def describe_all(self, model: str, version: str) -> list[ModelEntry]:
        raise Unreachable("connection refused")


def test_an_unanswered_describe_is_unreachable() -> None:
    settings_ = settings_for()
    client: Any = _Unreachable()
    single = observe(client, settings_, "m", None, ping_healthy=None, now=NOW)
    [listed] = observe_model(client, settings_, "m", ping_healthy=None, now=NOW)
    for health in (single, listed):
        assert (health.state, health.kind) == (ModelState.UNREACHABLE, ReasonKind.UNREACHABLE)


# -- the metrics: bounded labels --------------------------------------------------------------


def exposition(*healths: ModelHealth) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``/metrics`` of a snapshot holding ``healths``: series identity -> value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for sample in metrics_samples(*healths)
    }


def test_labels_hold_only_bounded_values() -> None:
    bounded = {
        "model": {"m"},
        "version": {"1.0"},
        "state": {s.value for s in ModelState},
        # the reason's kind, and the kind of question (ts_health_observations_total)
        "kind": {k.value for k in ReasonKind} | {"ping", "models", "model"},
    }
    for state, kind, seen in BRANCHES:
        health = assess("m", "1.0", Observation(now=NOW, **seen))
        series = exposition(health)
        assert (
            "ts_health_model_reason",
            (("kind", kind.value), ("model", "m"), ("state", state.value), ("version", "1.0")),
        ) in series
        for _, labels in series:
            for name, value in labels:
                assert value in bounded[name], (name, value)
        # The reason's text is nowhere in the exposition.
        assert all(health.reason not in value for _, labels in series for _, value in labels)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=0, max_value=500),
    st.integers(min_value=1, max_value=500),
    st.integers(min_value=0, max_value=500),
    st.integers(min_value=1, max_value=500),
)
def test_a_busy_queue_keeps_the_same_series(
    pending_a: int, free_a: int, pending_b: int, free_b: int
) -> None:
    """Two observations of a ready model whose queue differs: the reasons differ, the
    series (names and labels) do not."""
    a = Observation(entry("READY", remaining=free_a, pending=pending_a), now=NOW)
    b = Observation(entry("READY", remaining=free_b, pending=pending_b), now=NOW)
    first, second = assess("m", "1.0", a), assess("m", "1.0", b)
    assert exposition(first).keys() == exposition(second).keys()


def test_the_initialization_time_is_the_records_last_duration() -> None:
    record = InitRecord.started(
        None, model_name="m", model_version="1.0", now=NOW - 5, worker_pid=40, server="1"
    ).succeeded(now=NOW - 2, duration_s=2.75, worker_pid=40)
    health = assess("m", "1.0", Observation(entry("READY"), record=record, now=NOW))
    series = exposition(health)
    key = ("ts_health_model_init_duration_seconds", (("model", "m"), ("version", "1.0")))
    assert series[key] == 2.75
    # Never initialized (no record): no sample rather than a made-up 0.
    bare = exposition(assess("m", "1.0", Observation(entry("UNLOADING"), now=NOW)))
    assert key not in bare
