"""HealthMixin's requests: counted, InferenceError answered with its status code, and the fault
knobs that fail or slow initialization and inference on purpose."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip(
    "ts", reason="needs torchserve (the ts package): pip install torchserve==0.12.0"
)

from ts.utils.util import PredictionException

from tests.unit.handler.mixin_model import Make
from ts_health_handler import InferenceError, InitializationError
from ts_health_handler.testing import describe, infer

pytestmark = pytest.mark.usefixtures("no_real_sleep")


# -- requests, controlled failures -----------------------------------------------------------


def test_requests_are_counted(make: Make, clock: Any) -> None:
    handler, context = make()
    handler.initialize(context)

    clock.advance(5)
    infer(handler, context, [{"body": 1}, {"body": 2}])
    clock.advance(5)
    with pytest.raises(ZeroDivisionError):  # anything else passes through unchanged
        infer(handler, context, [{"raise": ZeroDivisionError("x")}])

    assert describe(handler, context)["requests"] == {
        "total": 3,
        "failed": 1,
        "in_flight": 0,
        "open": None,
        "last_request_at": "2025-06-15T15:06:51.500Z",
        "consecutive_failures": 1,
        "last_error": {
            "type": "ZeroDivisionError",
            "message": "x",
            "at": "2025-06-15T15:06:51.500Z",
            "attempt": 3,
            "traceback": None,
        },
        "fatal": None,
    }


@pytest.mark.parametrize("code", [400, 429, 503, 599])
def test_inference_error_becomes_prediction_exception(make: Make, code: int) -> None:
    handler, context = make()
    handler.initialize(context)

    with pytest.raises(PredictionException) as caught:
        infer(handler, context, [{"raise": InferenceError("input too long", code)}])

    assert (caught.value.message, caught.value.error_code) == ("input too long", code)
    assert str(caught.value) == f"input too long : {code}"
    assert describe(handler, context)["requests"]["failed"] == 1


def test_inference_error_defaults_to_500() -> None:
    error = InferenceError("broken")

    assert (error.message, error.status_code, str(error)) == ("broken", 500, "broken")


@pytest.mark.parametrize("code", [399, 600, 200, True, "500", 500.0, None])
def test_inference_error_rejects_bad_status_codes(code: Any) -> None:
    with pytest.raises(ValueError, match=r"^invalid status_code: ") as caught:
        InferenceError("x", code)

    assert str(caught.value) == f"invalid status_code: {code!r}; expected an int from 400 to 599"


# -- fault knobs ------------------------------------------------------------------------------


def test_fail_initialize_fault(make: Make) -> None:
    handler, context = make(health={"faults": {"fail_initialize": "weights missing"}})

    with pytest.raises(InitializationError) as caught:
        handler.initialize(context)

    assert str(caught.value) == "injected by health.faults.fail_initialize: weights missing"
    assert getattr(handler, "init_calls", 0) == 0
    document = describe(handler, context)
    assert document["faults"] == {"fail_initialize": "weights missing"}
    assert document["initialization"]["error"]["message"] == str(caught.value)


def test_initialize_delay_uses_health_sleep(make: Make, sleep: Any) -> None:
    handler, context = make(health={"faults": {"initialize_delay_s": 2.5}})

    handler.initialize(context)

    assert sleep.calls == [2.5]
    document = describe(handler, context)
    assert document["initialization"]["duration_s"] == 4.0  # delay + the model's 1.5 s
    assert document["faults"] == {"initialize_delay_s": 2.5}
    assert document["status"] == "ready"


def test_inference_delay_uses_health_sleep_per_request_batch(make: Make, sleep: Any) -> None:
    handler, context = make(health={"faults": {"inference_delay_s": 0.75}})
    handler.initialize(context)

    infer(handler, context, [{"body": 1}, {"body": 2}])
    describe(handler, context)
    infer(handler, context, [{"body": 3}])

    assert sleep.calls == [0.75, 0.75]  # not on describe


def test_no_faults_no_sleep(make: Make, sleep: Any) -> None:
    handler, context = make()
    handler.initialize(context)
    infer(handler, context, [{"body": 1}])

    assert sleep.calls == []


@pytest.mark.parametrize(("faults", "code"), [({}, 503), ({"fail_inference_status": 429}, 429)])
def test_fail_inference_fault(make: Make, faults: dict[str, Any], code: int) -> None:
    handler, context = make(health={"faults": {"fail_inference": "backend down", **faults}})
    handler.initialize(context)

    with pytest.raises(PredictionException) as caught:
        infer(handler, context, [{"body": 1}])

    assert caught.value.error_code == code
    assert caught.value.message == "injected by health.faults.fail_inference: backend down"
    assert getattr(handler, "handle_calls", 0) == 0
    document = describe(handler, context)
    assert document["status"] == "ready"
    assert document["requests"]["failed"] == 1
    assert document["faults"] == {"fail_inference": "backend down", **faults}
