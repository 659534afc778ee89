"""``Canary``: a tiny forward pass on a stored example, for ``health_check()``, at a bounded rate.

A CUDA context after a device-side assert (or a driver reset, or corrupt weights) fails every
later request, while ``initialize()`` succeeded long ago. TGI and Triton catch it the same
way: run the model on a known input now and then, and check what comes back::

    class MyHandler(HealthMixin, BaseHandler):
        def initialize(self, context):
            ...
            self.canary = Canary(self.model, torch.zeros(1, 16), expected_shape=(1, 3))

        def health_check(self):
            return self.canary()

A call runs the model at most once per ``min_interval_s`` and otherwise answers the stored
result with its age, so a probe that describes every second costs one forward pass per
interval. It never raises: any failure is ``{"healthy": False, ...}`` with the error. torch is
never imported here; when the model's process has loaded it, the pass runs under
``torch.inference_mode()`` (and, on a GPU, is synchronized, so that an asynchronous CUDA
error is seen by the canary and not by the next request).
"""

from __future__ import annotations

import importlib
import math
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, Final, cast

from .._text import clip

if TYPE_CHECKING:
    from .._document import GpuDoc
from ..record import utc_iso

__all__ = ["Canary", "device_info", "gpu_memory"]

#: Longest error message kept in a result (the whole check result is bounded to 4000).
ERROR_LIMIT: Final = 500
#: How deep nested outputs (tuples, lists, dicts of tensors) are searched for values.
_DEPTH: Final = 4


def device_info(device: Any) -> dict[str, Any]:
    """``{"device": "cpu"}``, or for a CUDA device its name with ``torch.cuda`` memory figures.

    On a CUDA device: ``{"device": "cuda:0", "memory_allocated": ..., "memory_reserved": ...,
    "max_memory_allocated": ...}`` in bytes (``device="cuda"`` is resolved to the current
    index). When those figures cannot be read (a broken context), ``memory_error`` says why
    instead. Any other device (``cpu``, ``mps``, ...) is named alone; ``None`` is ``cpu``; one
    that cannot be named is ``None`` with ``device_error``.
    torch is imported only for a CUDA device. Never raises.
    """
    try:
        name = "cpu" if device is None else str(device)
    except Exception as exc:
        return {"device": None, "device_error": _error_text(exc)}
    if not name.startswith("cuda"):
        return {"device": name}
    try:
        cuda = importlib.import_module("torch").cuda
        index = int(name.partition(":")[2]) if ":" in name else int(cuda.current_device())
        name = f"cuda:{index}"
        return {
            "device": name,
            "memory_allocated": int(cuda.memory_allocated(index)),
            "memory_reserved": int(cuda.memory_reserved(index)),
            "max_memory_allocated": int(cuda.max_memory_allocated(index)),
        }
    except Exception as exc:
        return {"device": name, "memory_error": _error_text(exc)}


def gpu_memory(device: str | None) -> GpuDoc | None:
    """The status document's ``worker.gpu``: :func:`device_info` of a CUDA device; ``None``
    on anything else, without importing torch."""
    if device is None or not device.startswith("cuda"):
        return None
    return cast("GpuDoc", device_info(device))


class Canary:
    """Runs ``model(example)`` at most once per ``min_interval_s`` and judges the output.

    Calling it (``canary()``) returns a dict for ``health_check()``::

        {"healthy": True, "canary": {"ran_at": "...Z", "age_s": 3.2, "cached": True,
         "duration_s": 0.0004, "budget_s": 0.5, "over_budget": False, "runs": 4,
         "failures": 0, "min_interval_s": 30.0, "output_shape": [1, 3], "device": "cpu"}}

    ``"healthy": False`` (which makes the status ``degraded``) when the model raised, the
    output holds NaN or infinity, its shape is not ``expected_shape``, ``check`` rejected it
    or raised, or (with ``fail_over_budget``) the pass took longer than ``budget_s``; the
    reason is ``canary.error``. A failed result is kept for ``min_interval_s`` like a good
    one.

    Args:
        model: what to run: an ``nn.Module`` or any callable taking the example.
        example: the stored input, passed as is; a zero-argument callable is called on every
            run to make a fresh one (e.g. ``lambda: torch.zeros(1, 16, device=device)``).
        min_interval_s: a call within this many seconds of the last run's end answers the
            stored result (``cached: true`` and its ``age_s``).
        budget_s: what one pass should take; a slower run says ``over_budget: true``.
        fail_over_budget: an over-budget run is unhealthy (default: only reported).
        expected_shape: the output tensor's shape; ``None`` in it matches any size.
        check: a predicate on the output: falsy (or raising) fails the canary.
        device: named in the result (with CUDA memory figures, see :func:`device_info`);
            by default the output's device, else the example's, else the model's first
            parameter's, else cpu.
        clock: epoch seconds; tests pass a fake one. Intervals, ages and durations use it.

    Raises:
        ValueError: ``min_interval_s`` is negative or ``budget_s`` not positive.
    """

    def __init__(
        self,
        model: Callable[[Any], Any],
        example: Any,
        *,
        min_interval_s: float = 30.0,
        budget_s: float = 0.5,
        fail_over_budget: bool = False,
        expected_shape: Sequence[int | None] | None = None,
        check: Callable[[Any], object] | None = None,
        device: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not min_interval_s >= 0:  # NaN too
            raise ValueError(f"min_interval_s must be >= 0, got {min_interval_s!r}")
        if not budget_s > 0:
            raise ValueError(f"budget_s must be > 0, got {budget_s!r}")
        self.model: Final = model
        self.example: Final = example
        self.min_interval_s: Final = float(min_interval_s)
        self.budget_s: Final = float(budget_s)
        self.fail_over_budget: Final = fail_over_budget
        self.expected_shape: Final = None if expected_shape is None else tuple(expected_shape)
        self.check: Final = check
        self.device: Final = device
        self.clock: Final = clock
        self.runs = 0
        self.failures = 0
        self._lock = threading.Lock()
        self._last: dict[str, Any] | None = None
        self._finished_at = 0.0

    def __call__(self) -> dict[str, Any]:
        """The stored result when the last run ended less than ``min_interval_s`` ago, else
        the result of a run now. A call while another one runs answers the stored result."""
        try:
            if not self._lock.acquire(blocking=False):
                return self._cached() or _pending()
            try:
                age = self.clock() - self._finished_at
                # A clock set back makes the age negative: run rather than trust it.
                if self._last is not None and 0 <= age < self.min_interval_s:
                    return self._cached() or _pending()
                return self._run()
            finally:
                self._lock.release()
        except Exception as exc:  # never into the handler
            return {"healthy": False, "canary": {"error": _error_text(exc)}}

    def run(self) -> dict[str, Any]:
        """Run now, whatever the interval (e.g. once at the end of ``initialize()``)."""
        try:
            with self._lock:
                return self._run()
        except Exception as exc:
            return {"healthy": False, "canary": {"error": _error_text(exc)}}

    @property
    def last(self) -> dict[str, Any] | None:
        """The result of the last run, ``None`` before the first."""
        return self._cached()

    # -- one run (under the lock) --------------------------------------------------------

    def _run(self) -> dict[str, Any]:
        started = self.clock()
        error: str | None = None
        output: Any = None
        example: Any = None
        try:
            example = self.example() if callable(self.example) else self.example
            with _inference_mode():
                output = self.model(example)
                _synchronize(output)
        except Exception as exc:
            error = _error_text(exc)
        finished = self.clock()
        duration = max(0.0, finished - started)
        if error is None:
            error = self._judge(output)
        over = duration > self.budget_s
        if error is None and over and self.fail_over_budget:
            error = f"the pass took {duration:.3f} s, over its budget of {self.budget_s:g} s"
        self.runs += 1
        if error is not None:
            self.failures += 1
        canary: dict[str, Any] = {
            "ran_at": utc_iso(started),
            "age_s": 0.0,
            "cached": False,
            "duration_s": round(duration, 6),
            "budget_s": self.budget_s,
            "over_budget": over,
            "runs": self.runs,
            "failures": self.failures,
            "min_interval_s": self.min_interval_s,
        }
        shape = _shape(output)
        if shape is not None:
            canary["output_shape"] = shape
        canary.update(device_info(self._device(example, output)))
        if error is not None:
            canary["error"] = error
        self._last = {"healthy": error is None, "canary": canary}
        self._finished_at = finished
        return _copy(self._last)

    def _judge(self, output: Any) -> str | None:
        """Why ``output`` is wrong, ``None`` when it passes."""
        try:
            if self.expected_shape is not None:
                shape = _shape(output)
                if shape is None:
                    return f"output is {type(output).__name__}, not a tensor of shape " + (
                        _shape_text(self.expected_shape)
                    )
                if len(shape) != len(self.expected_shape) or any(
                    want is not None and want != got
                    for want, got in zip(self.expected_shape, shape)
                ):
                    return (
                        f"output shape {_shape_text(shape)}, expected "
                        f"{_shape_text(self.expected_shape)}"
                    )
            bad = _not_finite(output)
            if bad is not None:
                return bad
            if self.check is not None and not self.check(output):
                name = getattr(self.check, "__name__", type(self.check).__name__)
                return f"check {name} rejected the output"
        except Exception as exc:
            return f"checking the output failed: {_error_text(exc)}"
        return None

    def _device(self, example: Any, output: Any = None) -> Any:
        """The given device, else where the output is (where the pass ran), else the
        example's, else the model's first parameter's; ``None`` (named cpu) when none says."""
        if self.device is not None:
            return self.device
        for value in (*_leaves(output), *_leaves(example)):
            device = getattr(value, "device", None) if _is_tensor(value) else None
            if device is not None:
                return device
        parameters = getattr(self.model, "parameters", None)
        if callable(parameters):
            try:
                return next(iter(parameters())).device
            except Exception:  # no parameters, or not torch's
                pass
        return None

    def _cached(self) -> dict[str, Any] | None:
        if self._last is None:
            return None
        answer = _copy(self._last)
        answer["canary"]["cached"] = True
        answer["canary"]["age_s"] = round(max(0.0, self.clock() - self._finished_at), 3)
        return answer


def _pending() -> dict[str, Any]:
    return {"healthy": False, "canary": {"error": "the first canary run has not finished"}}


def _copy(result: Mapping[str, Any]) -> dict[str, Any]:
    return {"healthy": result["healthy"], "canary": dict(result["canary"])}


def _error_text(exc: BaseException) -> str:
    """``Type: message`` on one line, bounded."""
    return clip(" ".join(f"{type(exc).__name__}: {exc}".split()), ERROR_LIMIT)


def _torch() -> Any:
    """torch when this process has imported it (a torch model has), else ``None``."""
    return sys.modules.get("torch")


def _inference_mode() -> AbstractContextManager[Any]:
    torch = _torch()
    return nullcontext() if torch is None else torch.inference_mode()


def _is_tensor(value: Any) -> bool:
    torch = _torch()
    return torch is not None and isinstance(value, torch.Tensor)


def _leaves(value: Any, depth: int = 0) -> Iterator[Any]:
    """``value``, or the items of nested lists, tuples and dict values (bounded depth)."""
    if depth < _DEPTH and isinstance(value, (list, tuple)):
        for item in value:
            yield from _leaves(item, depth + 1)
    elif depth < _DEPTH and isinstance(value, Mapping):
        for item in value.values():
            yield from _leaves(item, depth + 1)
    else:
        yield value


def _synchronize(output: Any) -> None:
    """Wait for a CUDA output's kernels: an asynchronous error surfaces here."""
    torch = _torch()
    if torch is None:
        return
    for value in _leaves(output):
        if _is_tensor(value) and value.is_cuda:
            torch.cuda.synchronize(value.device)
            return


def _shape(output: Any) -> list[int] | None:
    return [int(size) for size in output.shape] if _is_tensor(output) else None


def _shape_text(shape: Sequence[int | None]) -> str:
    return "(" + ", ".join("*" if size is None else str(size) for size in shape) + ")"


def _not_finite(output: Any) -> str | None:
    """Which part of ``output`` holds NaN or infinity, ``None`` when none does."""
    for value in _leaves(output):
        if _is_tensor(value):
            if (value.is_floating_point() or value.is_complex()) and not bool(
                _torch().isfinite(value).all()
            ):
                count = int((~_torch().isfinite(value)).sum())
                return f"output has {count} non-finite value(s) (NaN or infinity)"
        elif isinstance(value, float) and not math.isfinite(value):
            return f"output has a non-finite value: {value!r}"
    return None
