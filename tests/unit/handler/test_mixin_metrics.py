"""HealthMixin's metrics: the init duration, failures and the worker state, through TorchServe's
metrics cache; a broken cache never fails the handler."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip(
    "ts", reason="needs torchserve (the ts package): pip install torchserve==0.12.0"
)

from ts.metrics.metric_type_enum import MetricTypes

from tests.unit.handler.mixin_model import Make, Model
from ts_health_handler import InitializationError
from ts_health_handler.testing import describe

pytestmark = pytest.mark.usefixtures("no_real_sleep")


def _metric_calls(spy: Any) -> list[tuple[Any, ...]]:
    return [(c.args[0], c.args[1], c.args[2], c.args[5]) for c in spy.call_args_list]


def test_metrics_on_success_and_state_changes(make: Make, mocker: Any) -> None:
    class Flaky(Model):
        healthy = True

        def health_check(self) -> bool:
            return self.healthy

    handler, context = make(Flaky)
    spy = mocker.spy(context.metrics, "add_metric")

    handler.initialize(context)
    describe(handler, context)  # still ready: no new state sample
    handler.healthy = False
    describe(handler, context)
    describe(handler, context)  # still degraded

    assert _metric_calls(spy) == [
        ("ts_health_init_duration_seconds", 1.5, "Seconds", MetricTypes.GAUGE),
        ("ts_health_worker_state", 0, "State", MetricTypes.GAUGE),
        ("ts_health_worker_state", 1, "State", MetricTypes.GAUGE),
    ]


def test_metrics_on_failure(make: Make, mocker: Any) -> None:
    handler, context = make(fail=OSError("x"))
    spy = mocker.spy(context.metrics, "add_metric")

    with pytest.raises(InitializationError):
        handler.initialize(context)

    assert _metric_calls(spy) == [
        ("ts_health_init_failures_total", 1, "Count", MetricTypes.COUNTER),
        ("ts_health_worker_state", 2, "State", MetricTypes.GAUGE),
    ]


def test_broken_metrics_never_fail_the_handler(make: Make, mocker: Any) -> None:
    handler, context = make()
    mocker.patch.object(context.metrics, "add_metric", side_effect=RuntimeError("cache broken"))

    handler.initialize(context)

    assert describe(handler, context)["status"] == "ready"
