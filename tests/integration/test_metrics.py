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
    """``{model name: value}`` of one metric as scraped from ``/metrics`` (the last series of a
    model when it has several, e.g. one per worker)."""
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
                for name in (
                    "ts_health_init_duration_seconds",
                    "ts_health_worker_state",
                    "ts_health_init_failures_total",
                )
            }
            failures = seen["ts_health_init_failures_total"].get("failing_model", 0)
            ready = "empty_model" in seen["ts_health_init_duration_seconds"]
            return seen if ready and failures >= 2 else None

        seen = wait_for(scraped, timeout=60, interval=0.5, what="health metrics on /metrics")
        server_text = [server.request("GET", f"{server.metrics_url}/metrics", auth=False).text]

    assert seen["ts_health_init_duration_seconds"]["empty_model"] >= 0
    assert seen["ts_health_worker_state"]["empty_model"] == 0  # ready
    assert seen["ts_health_worker_state"]["failing_model"] == 2  # failed
    assert "empty_model" not in seen["ts_health_init_failures_total"]
    # One series per worker: the state carries the worker id (TorchServe's port).
    text = server_text[0]
    assert re.search(r'ts_health_worker_state\{[^}]*WorkerId="9\d{3}"', text), text[-2000:]
