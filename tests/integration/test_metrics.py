"""Our metrics reach TorchServe's Prometheus endpoint with the shipped metrics template."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ts_health_handler.testing import TorchServe, wait_for

pytestmark = pytest.mark.integration

TEMPLATE = Path(__file__).resolve().parents[2] / "examples" / "templates" / "metrics.yaml"


def samples(server: TorchServe, metric: str) -> dict[str, float]:
    """``{model name: value}`` of one metric as scraped from ``/metrics``."""
    text = server.request("GET", f"{server.metrics_url}/metrics", auth=False).text
    found: dict[str, float] = {}
    for line in text.splitlines():
        match = re.match(rf"{metric}\{{(.*)\}} (\S+)$", line)
        if match:
            model = re.search(r'ModelName="([^"]*)"', match.group(1))
            if model:
                found[model.group(1)] = float(match.group(2))
    return found


@pytest.mark.own_server
def test_health_metrics_on_the_prometheus_endpoint(
    tmp_path: Path,
    build_mar: Callable[..., Path],
    serve_own: Callable[..., Any],
) -> None:
    store, state = tmp_path / "store", tmp_path / "state"
    good = build_mar("empty_model", store)
    bad = build_mar("failing_model", store)
    config = {"metrics_mode": "prometheus", "metrics_config": str(TEMPLATE)}
    with serve_own(store, state_dir=state, config=config) as server:
        server.register(good.name)
        server.register(bad.name, synchronous=False)

        def scraped() -> dict[str, dict[str, float]] | None:
            seen = {
                name: samples(server, name)
                for name in ("HealthInitDurationMs", "HealthState", "HealthInitFailures")
            }
            failures = seen["HealthInitFailures"].get("failing_model", 0)
            ready = "empty_model" in seen["HealthInitDurationMs"]
            return seen if ready and failures >= 2 else None

        seen = wait_for(scraped, timeout=60, interval=0.5, what="health metrics on /metrics")

    assert seen["HealthInitDurationMs"]["empty_model"] >= 0
    assert seen["HealthState"]["empty_model"] == 0  # ready
    assert seen["HealthState"]["failing_model"] == 2  # failed
    assert "empty_model" not in seen["HealthInitFailures"]
