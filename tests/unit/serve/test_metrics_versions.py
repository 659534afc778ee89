"""``/metrics`` for a model version that was never observed: its state, reason, readiness
and age are exposed; the families read from an observation have no sample for it."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.support.serve_support import NOW, WALL, health, options, snapshot
from ts_health_handler._lifecycle import ModelState
from ts_health_handler.monitor import ModelHealth, ReadinessPolicy
from ts_health_handler.serve._metrics import metrics_text

OBSERVED_ONLY = (
    "ts_health_model_ready_workers",
    "ts_health_model_workers",
    "ts_health_model_init_consecutive_failures",
    "ts_health_worker_deaths",
    "ts_health_requests",
    "ts_health_requests_failed",
)


def versions_by_family() -> dict[str, list[str]]:
    unseen = ModelHealth("u", "1.0", ModelState.UNREACHABLE, "not described")
    snap = snapshot(("m", (health("m"),)), ("u", (unseen,)))
    text = metrics_text(snap, options(), ReadinessPolicy(), NOW, WALL).decode()
    return {
        family.name: [s.labels["model"] for s in family.samples if "model" in s.labels]
        for family in text_string_to_metric_families(text)
    }


def test_an_unobserved_version_has_no_sample_in_the_observed_families() -> None:
    models = versions_by_family()
    for name in OBSERVED_ONLY:
        assert models[name] == ["m"], name


def test_an_unobserved_version_still_has_its_state_reason_readiness_and_ages() -> None:
    models = versions_by_family()
    assert models["ts_health_model_state"] == ["m"] * len(ModelState) + ["u"] * len(ModelState)
    for name in (
        "ts_health_model_reason",
        "ts_health_model_ready",
        "ts_health_model_state_age_seconds",
        "ts_health_model_observation_age_seconds",
    ):
        assert models[name] == ["m", "u"], name
