"""The health metrics a worker emits through TorchServe's metrics cache (``context.metrics``).

Declare them in the metrics config (``examples/templates/metrics.yaml``) so that they reach
TorchServe's Prometheus endpoint. Best effort: a missing or broken cache is ignored.
"""

from __future__ import annotations

from typing import Any, Final

from .._lifecycle import HealthStatus

__all__ = ["METRIC_INIT_DURATION", "METRIC_INIT_FAILURES", "METRIC_STATE", "STATE_GAUGE", "emit"]

#: Metric names emitted through ``context.metrics``; declare them in the metrics config
#: (``examples/templates/metrics.yaml``) so that they reach the Prometheus endpoint.
#: Prometheus-style: snake_case, base units, ``_total`` on the counter; the state gauge has a
#: ``WorkerId`` dimension, so that workers of one model never overwrite each other's value.
METRIC_INIT_DURATION: Final = "ts_health_init_duration_seconds"
METRIC_INIT_FAILURES: Final = "ts_health_init_failures_total"
METRIC_STATE: Final = "ts_health_worker_state"
#: ``ts_health_worker_state`` values: 0 is good, anything above wants attention.
STATE_GAUGE: Final = {HealthStatus.READY: 0, HealthStatus.DEGRADED: 1, HealthStatus.FAILED: 2}


def emit(
    metrics: Any,
    model_name: str,
    name: str,
    value: float,
    unit: str,
    *,
    counter: bool = False,
    worker: str | None = None,
) -> None:
    """Emit one metric; with ``worker``, every dimension is named in the order
    ``metrics.yaml`` declares them: ``ModelName``, ``Level``, ``WorkerId``."""
    if metrics is None:
        return
    try:
        from ts.metrics.dimension import Dimension
        from ts.metrics.metric_type_enum import MetricTypes

        kind = MetricTypes.COUNTER if counter else MetricTypes.GAUGE
        # A fresh list each call: ts appends default dimensions to the list it is given.
        dimensions = []
        if worker is not None:
            dimensions = [
                Dimension("ModelName", model_name),
                Dimension("Level", "Model"),
                Dimension("WorkerId", worker),
            ]
        metrics.add_metric(name, value, unit, None, dimensions, kind)
    except Exception:  # metrics are best effort; they must never fail the handler
        return
