"""``Canary``: the bounded-rate forward pass for ``health_check()``, and ``device_info()``.

Plain callables stand in for models where torch is not the point (these tests run without
torch); a fake ``torch`` module stands in for a GPU, since there is none here. Time is a fake
clock throughout: no test sleeps.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
from collections.abc import Callable
from contextlib import nullcontext
from types import SimpleNamespace
from typing import Any

import pytest

from tests.support.torch_marks import needs_torch
from ts_health_handler import Canary, HealthMixin, device_info
from ts_health_handler.record import utc_iso

#: The ``clock`` fixture (tests/unit/conftest.py): a fake epoch clock, moved by ``advance()``.
FakeClock = Any
#: Where it starts.
EPOCH = 1_750_000_000.0

pytestmark = pytest.mark.filterwarnings("ignore:Failed to initialize NumPy:UserWarning")


class Model:
    """A callable model: counts its calls, answers ``answer`` (or raises it), takes ``cost``
    seconds of the fake clock."""

    def __init__(self, clock: FakeClock, answer: Any = 1.0, cost: float = 0.002) -> None:
        self.clock = clock
        self.answer = answer
        self.cost = cost
        self.inputs: list[Any] = []

    def __call__(self, example: Any) -> Any:
        self.inputs.append(example)
        self.clock.advance(self.cost)
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


def canary(clock: FakeClock, model: Callable[[Any], Any], **kwargs: Any) -> Canary:
    return Canary(model, kwargs.pop("example", [0.0] * 4), clock=clock, **kwargs)


# -- the rate bound and the cache ----------------------------------------------------------


def test_first_call_runs_the_model_and_reports_the_run(clock: FakeClock) -> None:
    model = Model(clock, cost=0.25)

    result = canary(clock, model)()

    assert model.inputs == [[0.0] * 4]
    assert result == {
        "healthy": True,
        "canary": {
            "ran_at": utc_iso(EPOCH),
            "age_s": 0.0,
            "cached": False,
            "duration_s": 0.25,
            "budget_s": 0.5,
            "over_budget": False,
            "runs": 1,
            "failures": 0,
            "min_interval_s": 30.0,
            "device": "cpu",
        },
    }
    json.dumps(result, allow_nan=False)  # goes into the status document as is


def test_calls_within_the_interval_answer_the_stored_result_with_its_age(
    clock: FakeClock,
) -> None:
    model = Model(clock, cost=0.0)
    check = canary(clock, model, min_interval_s=10)
    first = check()

    clock.advance(4)
    second = check()
    clock.advance(5.9)
    third = check()

    assert len(model.inputs) == 1
    assert second["canary"] == {**first["canary"], "cached": True, "age_s": 4.0}
    assert third["canary"]["age_s"] == 9.9
    assert third["canary"]["ran_at"] == first["canary"]["ran_at"]
    assert first["canary"]["cached"] is False  # the caller's copy is never changed


def test_the_model_runs_again_once_the_interval_has_passed(clock: FakeClock) -> None:
    model = Model(clock, cost=1.0)
    check = canary(clock, model, min_interval_s=10)
    check()  # ends at EPOCH + 1: the interval counts from the end of the run

    clock.advance(9.999)
    assert check()["canary"]["cached"] is True
    clock.advance(0.001)
    again = check()

    assert len(model.inputs) == 2
    assert again["canary"]["cached"] is False
    assert again["canary"]["runs"] == 2
    assert again["canary"]["ran_at"] == utc_iso(EPOCH + 11)


def test_an_interval_of_zero_runs_on_every_call(clock: FakeClock) -> None:
    model = Model(clock, cost=0.0)
    check = canary(clock, model, min_interval_s=0)

    for _ in range(3):
        check()

    assert len(model.inputs) == 3


def test_a_clock_set_back_runs_rather_than_trusting_a_negative_age(clock: FakeClock) -> None:
    model = Model(clock)
    check = canary(clock, model)
    check()

    clock.advance(-3600)
    result = check()

    assert len(model.inputs) == 2
    assert result["canary"]["cached"] is False


def test_run_ignores_the_interval(clock: FakeClock) -> None:
    model = Model(clock)
    check = canary(clock, model)
    assert check.last is None
    check.run()

    result = check.run()

    assert len(model.inputs) == 2
    assert result["canary"]["runs"] == 2
    assert check.last is not None
    assert check.last["canary"]["cached"] is True


def test_a_callable_example_makes_a_fresh_input_for_every_run(clock: FakeClock) -> None:
    made: list[int] = []

    def example() -> list[int]:
        made.append(len(made))
        return list(made)

    model = Model(clock)
    check = canary(clock, model, example=example, min_interval_s=0)
    check()
    check()

    assert model.inputs == [[0], [0, 1]]


def test_a_call_while_a_run_is_going_on_never_waits_for_it(clock: FakeClock) -> None:
    answers: list[dict[str, Any]] = []

    def model(example: Any) -> float:
        answers.append(check())  # e.g. a second describe while this run is going on
        return 1.0

    check = canary(clock, model, min_interval_s=0)
    check()
    check()

    first_time, second_time = answers
    assert first_time == {
        "healthy": False,
        "canary": {"error": "the first canary run has not finished"},
    }
    assert second_time["healthy"] is True
    assert second_time["canary"]["cached"] is True
    assert second_time["canary"]["runs"] == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_interval_s": -1}, "min_interval_s must be >= 0, got -1"),
        ({"min_interval_s": float("nan")}, "min_interval_s must be >= 0, got nan"),
        ({"budget_s": 0}, "budget_s must be > 0, got 0"),
    ],
)
def test_bad_settings_are_refused(clock: FakeClock, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        canary(clock, Model(clock), **kwargs)


# -- failures ------------------------------------------------------------------------------


def test_a_model_that_raises_makes_it_unhealthy_with_the_error(clock: FakeClock) -> None:
    model = Model(clock, RuntimeError("CUDA error: device-side assert triggered\nCompile with"))
    check = canary(clock, model, min_interval_s=10)

    result = check()

    assert result["healthy"] is False
    assert result["canary"]["error"] == (
        "RuntimeError: CUDA error: device-side assert triggered Compile with"
    )
    assert result["canary"]["failures"] == 1
    assert "output_shape" not in result["canary"]


def test_a_failure_is_kept_for_the_interval_and_a_later_good_run_clears_it(
    clock: FakeClock,
) -> None:
    model = Model(clock, ValueError("boom"))
    check = canary(clock, model, min_interval_s=10)
    check()
    model.answer = 2.0

    clock.advance(5)
    cached = check()
    clock.advance(5)
    recovered = check()

    assert cached["healthy"] is False
    assert cached["canary"]["cached"] is True
    assert cached["canary"]["error"] == "ValueError: boom"
    assert recovered["healthy"] is True
    assert "error" not in recovered["canary"]
    assert (recovered["canary"]["runs"], recovered["canary"]["failures"]) == (2, 1)


def test_an_error_message_is_bounded(clock: FakeClock) -> None:
    result = canary(clock, Model(clock, RuntimeError("x" * 10_000)))()

    assert len(result["canary"]["error"]) <= 500


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (float("nan"), "output has a non-finite value: nan"),
        ([1.0, (2.0, {"logits": float("-inf")})], "output has a non-finite value: -inf"),
    ],
)
def test_a_non_finite_output_makes_it_unhealthy(clock: FakeClock, answer: Any, error: str) -> None:
    result = canary(clock, Model(clock, answer))()

    assert result["healthy"] is False
    assert result["canary"]["error"] == error


def test_a_predicate_that_rejects_the_output_makes_it_unhealthy(clock: FakeClock) -> None:
    def is_positive(output: float) -> bool:
        return output > 0

    good = canary(clock, Model(clock, 1.0), check=is_positive)()
    bad = canary(clock, Model(clock, -1.0), check=is_positive)()

    assert good["healthy"] is True
    assert bad["healthy"] is False
    assert bad["canary"]["error"] == "check is_positive rejected the output"


def test_a_predicate_that_raises_makes_it_unhealthy(clock: FakeClock) -> None:
    def broken(output: Any) -> bool:
        raise KeyError("logits")

    result = canary(clock, Model(clock), check=broken)()

    assert result["healthy"] is False
    assert result["canary"]["error"] == "checking the output failed: KeyError: 'logits'"


def test_an_expected_shape_needs_a_tensor(clock: FakeClock) -> None:
    result = canary(clock, Model(clock, [1.0, 2.0]), expected_shape=(2,))()

    assert result["healthy"] is False
    assert result["canary"]["error"] == "output is list, not a tensor of shape (2)"


def test_it_never_raises_into_the_handler(clock: FakeClock) -> None:
    class Unnamed:
        def __str__(self) -> str:
            raise RuntimeError("no name")

    class Falsy:
        def __bool__(self) -> bool:
            raise RuntimeError("no truth")

    named = canary(clock, Model(clock), device=Unnamed())()
    judged = canary(clock, Model(clock), check=lambda output: Falsy())()

    assert named["healthy"] is True
    assert named["canary"]["device"] is None
    assert named["canary"]["device_error"] == "RuntimeError: no name"
    assert judged["healthy"] is False
    assert judged["canary"]["error"] == "checking the output failed: RuntimeError: no truth"

    def broken_clock() -> float:
        raise OSError("clock gone")

    assert Canary(Model(clock), 0, clock=broken_clock)() == {
        "healthy": False,
        "canary": {"error": "OSError: clock gone"},
    }


# -- timing --------------------------------------------------------------------------------


def test_a_run_over_its_budget_is_reported_and_stays_healthy_by_default(
    clock: FakeClock,
) -> None:
    result = canary(clock, Model(clock, cost=0.75), budget_s=0.5)()

    assert result["healthy"] is True
    assert result["canary"]["duration_s"] == 0.75
    assert result["canary"]["over_budget"] is True


def test_a_run_over_its_budget_fails_when_asked_to(clock: FakeClock) -> None:
    result = canary(clock, Model(clock, cost=0.75), budget_s=0.5, fail_over_budget=True)()
    within = canary(clock, Model(clock, cost=0.5), budget_s=0.5, fail_over_budget=True)()

    assert result["healthy"] is False
    assert result["canary"]["error"] == "the pass took 0.750 s, over its budget of 0.5 s"
    assert within["healthy"] is True
    assert within["canary"]["over_budget"] is False


# -- the device ----------------------------------------------------------------------------


class FakeCuda:
    """``torch.cuda`` on a machine with two GPUs; ``broken`` makes every call raise."""

    def __init__(self, broken: str | None = None) -> None:
        self.broken = broken
        self.asked: list[tuple[str, int]] = []
        self.synchronized: list[Any] = []

    def _figure(self, name: str, index: int, value: int) -> int:
        if self.broken is not None:
            raise RuntimeError(self.broken)
        self.asked.append((name, index))
        return value + index

    def current_device(self) -> int:
        return 1

    def memory_allocated(self, index: int) -> int:
        return self._figure("memory_allocated", index, 1000)

    def memory_reserved(self, index: int) -> int:
        return self._figure("memory_reserved", index, 2000)

    def max_memory_allocated(self, index: int) -> int:
        return self._figure("max_memory_allocated", index, 3000)

    def synchronize(self, device: Any) -> None:
        self.synchronized.append(device)
        if self.broken is not None:
            raise RuntimeError(self.broken)


class FakeTensor:
    """Just enough of a CUDA tensor for the canary: integer, so no finiteness to check."""

    shape = (2, 3)
    is_cuda = True
    device = "cuda:0"

    def is_floating_point(self) -> bool:
        return False

    def is_complex(self) -> bool:
        return False


def fake_torch(monkeypatch: pytest.MonkeyPatch, cuda: FakeCuda) -> None:
    torch = SimpleNamespace(cuda=cuda, Tensor=FakeTensor, inference_mode=nullcontext)
    monkeypatch.setitem(sys.modules, "torch", torch)


def test_cpu_is_named_alone_without_importing_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # any import of torch would fail

    assert device_info("cpu") == {"device": "cpu"}
    assert device_info(None) == {"device": "cpu"}
    assert device_info("mps") == {"device": "mps"}


@pytest.mark.parametrize(("device", "index"), [("cuda:0", 0), ("cuda", 1)])
def test_a_gpu_carries_its_cuda_memory_figures(
    monkeypatch: pytest.MonkeyPatch, device: str, index: int
) -> None:
    cuda = FakeCuda()
    fake_torch(monkeypatch, cuda)

    assert device_info(device) == {
        "device": f"cuda:{index}",
        "memory_allocated": 1000 + index,
        "memory_reserved": 2000 + index,
        "max_memory_allocated": 3000 + index,
    }
    assert {asked_index for _, asked_index in cuda.asked} == {index}


def test_a_gpu_whose_figures_cannot_be_read_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_torch(monkeypatch, FakeCuda(broken="CUDA error: device-side assert triggered"))

    assert device_info("cuda:0") == {
        "device": "cuda:0",
        "memory_error": "RuntimeError: CUDA error: device-side assert triggered",
    }


def test_a_canary_on_a_gpu_synchronizes_and_reports_memory(
    monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    cuda = FakeCuda()
    fake_torch(monkeypatch, cuda)

    result = canary(clock, Model(clock, FakeTensor()), expected_shape=(2, None))()

    assert result["healthy"] is True
    assert cuda.synchronized == ["cuda:0"]
    assert result["canary"]["device"] == "cuda:0"  # the output's device: no device given
    assert result["canary"]["output_shape"] == [2, 3]
    assert result["canary"]["memory_allocated"] == 1000


def test_a_canary_on_a_broken_gpu_fails_at_the_synchronize(
    monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    # Kernels run asynchronously: the error of a broken context shows at the synchronize.
    fake_torch(monkeypatch, FakeCuda(broken="CUDA error: device-side assert triggered"))

    result = canary(clock, Model(clock, FakeTensor()), device="cuda:0")()

    assert result["healthy"] is False
    assert result["canary"]["error"] == "RuntimeError: CUDA error: device-side assert triggered"
    assert result["canary"]["memory_error"].startswith("RuntimeError: CUDA error")


# -- with real torch on the CPU ------------------------------------------------------------


@needs_torch
def test_a_torch_model_runs_under_inference_mode_on_the_cpu(clock: FakeClock) -> None:
    import torch

    linear = torch.nn.Linear(4, 3)
    modes: list[bool] = []

    def model(example: torch.Tensor) -> torch.Tensor:
        modes.append(torch.is_inference_mode_enabled())
        return linear(example)

    result = canary(clock, model, example=torch.zeros(2, 4), expected_shape=(2, 3))()

    assert modes == [True]
    assert result["healthy"] is True
    assert result["canary"]["output_shape"] == [2, 3]
    assert result["canary"]["device"] == "cpu"
    assert not {"memory_allocated", "memory_reserved", "max_memory_allocated"} & set(
        result["canary"]
    )


@needs_torch
def test_without_an_output_the_device_comes_from_the_model(clock: FakeClock) -> None:
    import torch

    linear = torch.nn.Linear(4, 3, device="meta")

    result = Canary(linear, [0.0], clock=clock)()  # a list: Linear raises, no output

    assert result["healthy"] is False
    assert result["canary"]["error"].startswith("TypeError: linear()")
    assert result["canary"]["device"] == "meta"


@needs_torch
@pytest.mark.parametrize(
    ("value", "error"),
    [
        (float("nan"), "output has 1 non-finite value(s) (NaN or infinity)"),
        (float("inf"), "output has 1 non-finite value(s) (NaN or infinity)"),
    ],
)
def test_a_non_finite_tensor_makes_it_unhealthy(clock: FakeClock, value: float, error: str) -> None:
    import torch

    output = torch.zeros(2, 3)
    output[1, 2] = value

    result = canary(clock, lambda example: output, example=torch.zeros(1))()

    assert result["healthy"] is False
    assert result["canary"]["error"] == error
    json.dumps(result, allow_nan=False)


@needs_torch
def test_an_integer_tensor_is_finite_and_a_wrong_shape_fails(clock: FakeClock) -> None:
    import torch

    output = torch.ones(2, 5, dtype=torch.int64)

    fine = canary(clock, lambda example: output, expected_shape=(None, 5))()
    wrong = canary(clock, lambda example: output, expected_shape=(2, 3))()
    rank = canary(clock, lambda example: output, expected_shape=(2,))()

    assert fine["healthy"] is True
    assert wrong["canary"]["error"] == "output shape (2, 5), expected (2, 3)"
    assert rank["canary"]["error"] == "output shape (2, 5), expected (2)"


# -- through HealthMixin's describe (needs torchserve's Context) ---------------------------


class CanaryModel(HealthMixin):
    """A torch-free handler whose ``health_check()`` is a canary over ``self.model``."""

    def initialize(self, context: Any) -> None:
        self.canary = Canary(self.model, [1.0], min_interval_s=10, clock=self.health_clock)

    def health_check(self) -> dict[str, Any]:
        return self.canary()

    def handle(self, data: Any, context: Any) -> Any:
        return [self.model(row) for row in data]


def test_a_failing_canary_makes_the_status_degraded(
    ts_context: Any, fake_time: Any, clock: FakeClock
) -> None:
    from ts_health_handler.testing import describe

    handler = fake_time(CanaryModel())
    handler.model = Model(clock, RuntimeError("CUDA error: an illegal memory access"))
    context = ts_context("canary")
    handler.initialize(context)

    document = describe(handler, context)

    assert document["status"] == "degraded"
    assert document["check"]["status"] == "failed"
    assert document["check"]["error"] == "health_check() reported healthy: false"
    canary_result = document["check"]["result"]["canary"]
    assert canary_result["error"] == "RuntimeError: CUDA error: an illegal memory access"
    assert canary_result["device"] == "cpu"


def test_a_run_longer_than_the_check_timeout_is_reported_by_a_later_describe(
    ts_context: Any, fake_time: Any, clock: FakeClock
) -> None:
    from ts_health_handler.testing import describe

    release = threading.Event()

    def slow_model(example: Any) -> float:
        release.wait(30)
        clock.advance(2.0)  # as seen by the canary's clock: 2 s for this pass
        return 1.0

    handler = fake_time(CanaryModel())
    handler.model = slow_model
    context = ts_context("canary", model_yaml_config={"health": {"check_timeout_s": 0.01}})
    handler.initialize(context)

    timed_out = describe(handler, context)
    release.set()
    for thread in threading.enumerate():  # the run ends in the check's thread
        if thread.name == "ts-health-check":
            thread.join(timeout=30)
    assert handler.canary.last is not None
    # The later check answers from the cache at once, but its thread must first be scheduled:
    # a limit of 30 s only bounds that wait on a loaded machine.
    tracker = handler._ts_health
    tracker._config = dataclasses.replace(tracker._config, check_timeout_s=30.0)
    later = describe(handler, context)

    assert timed_out["status"] == "degraded"
    assert timed_out["check"]["status"] == "timeout"
    assert later["status"] == "ready"
    assert later["check"]["result"]["canary"]["cached"] is True
    assert later["check"]["result"]["canary"]["duration_s"] == 2.0
    assert later["check"]["result"]["canary"]["over_budget"] is True
