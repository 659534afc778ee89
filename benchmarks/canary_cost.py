"""What the canary costs: the example network's forward pass, and a describe with the canary
cached, running, or absent.

Run: PYTHONPATH=src .venv/bin/python benchmarks/canary_cost.py [--calls N] [--repeats R]

In one process, on CPU, with ``examples/canary_model`` (a 16-32-3 MLP; the canary's stored
example is 2 rows):

1. the forward pass of the stored example under ``torch.inference_mode()`` (what one canary
   run does, before its checks);
2. ``Canary.__call__`` when it answers the stored result (within ``min_interval_s``) and when
   it runs (``min_interval_s=0``), and a run in a fresh thread each time, as the bounded
   check calls ``health_check()``;
3. a whole describe through ``HealthMixin`` (TorchServe's real ``Context``, the status
   document built, the record read, ``health_check()`` in the bounded check thread) with the
   example's canary cached, with it running on every describe, and with a ``health_check()``
   that returns ``True`` at once (the baseline).

Figures are medians over ``--repeats`` samples of ``--calls`` calls each, cases interleaved.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from _common import REPO, print_load, print_machine

from ts_health_handler import Canary
from ts_health_handler.testing import describe, mock_context

EXAMPLE = REPO / "examples" / "canary_model"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("canary_model_handler", EXAMPLE / "handler.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def per_call(function: Callable[[], Any], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        function()
    return (time.perf_counter() - start) / calls


def in_thread_call(function: Callable[[], Any]) -> None:
    """``function()`` in a new thread, waited for: what the bounded check does."""
    thread = threading.Thread(target=function)
    thread.start()
    thread.join()


def sample(cases: dict[str, Callable[[], Any]], calls: int, repeats: int) -> dict[str, float]:
    """Median seconds per call of each case; cases interleaved, the order alternating."""
    for function in cases.values():
        per_call(function, max(1, calls // 10))  # warm up
    samples: dict[str, list[float]] = {name: [] for name in cases}
    order = list(cases)
    for round_no in range(repeats):
        for name in order if round_no % 2 == 0 else order[::-1]:
            samples[name].append(per_call(cases[name], calls))
    return {name: statistics.median(values) for name, values in samples.items()}


def handler_with(example: ModuleType, state_dir: str, interval_s: float | None) -> Any:
    """The example handler, initialized; ``interval_s`` ``None``: health_check() is True."""
    config: dict[str, Any] = {"health": {"state_dir": state_dir, "check_timeout_s": 5}}
    if interval_s is not None:
        config["handler"] = {"canary_interval_s": interval_s}
    handler = example.CanaryHandler()
    if interval_s is None:
        handler.health_check = lambda: True
    context = mock_context("canary_model", model_yaml_config=config, batch_size=4)
    handler.initialize(context)
    document = describe(handler, context)
    assert document["status"] == "ready", document
    return handler, context


def describing(handler: Any, context: Any) -> Callable[[], Any]:
    """A call that describes ``handler`` with ``context``, for :func:`sample`."""
    return lambda: describe(handler, context)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    logging.disable(logging.INFO)  # the worker's per-describe log lines are not ours to time
    import torch

    print_machine()
    # TorchServe leaves a (non-torchrun) worker's OMP_NUM_THREADS alone: torch's default.
    print(f"torch threads: {torch.get_num_threads()} (torch's default)")
    print(f"calls per sample: {args.calls}, samples: {args.repeats} (interleaved)")
    example = load_example()
    network = example.build_network()
    stored = example.canary_example()

    def forward() -> Any:
        with torch.inference_mode():
            return network(stored)

    cached = Canary(network, stored, min_interval_s=1e9)
    cached()
    running = Canary(network, stored, min_interval_s=0)
    direct = sample(
        {"forward": forward, "canary cached": cached, "canary runs": running},
        args.calls,
        args.repeats,
    )
    # health_check() runs in a fresh thread on every describe (the bounded check): torch
    # sets itself up again in each new thread.
    in_thread = Canary(network, stored, min_interval_s=0)
    threaded = sample(
        {
            "empty thread": lambda: in_thread_call(lambda: None),
            "canary runs": lambda: in_thread_call(in_thread),
        },
        max(1, args.calls // 10),
        args.repeats,
    )
    print("[the canary alone]")
    print(
        f"  forward pass of the stored example ({tuple(stored.shape)}):"
        f" {direct['forward'] * 1e6:8.1f} us"
    )
    print(f"  canary(), cached:        {direct['canary cached'] * 1e6:8.1f} us/call")
    print(
        f"  canary(), runs:          {direct['canary runs'] * 1e6:8.1f} us/call "
        f"(+{(direct['canary runs'] - direct['forward']) * 1e6:.1f} us over the forward pass:"
        " timing, checks, result)"
    )
    print(
        f"  canary(), runs in a fresh thread: {threaded['canary runs'] * 1e6:8.1f} us/call "
        f"(a thread that does nothing: {threaded['empty thread'] * 1e6:.1f} us)"
    )

    with tempfile.TemporaryDirectory(prefix="bench-canary-") as state_dir:
        handlers = {
            "health_check() -> True": handler_with(example, state_dir, None),
            "canary cached (30 s)": handler_with(example, state_dir, 30),
            "canary runs (interval 0)": handler_with(example, state_dir, 0),
        }
        cases = {
            name: describing(handler, context) for name, (handler, context) in handlers.items()
        }
        calls = max(1, args.calls // 10)
        described = sample(cases, calls, args.repeats)
        runs = handlers["canary runs (interval 0)"][0].canary.runs
    baseline = described["health_check() -> True"]
    print(f"[a describe through HealthMixin, {calls} per sample]")
    for name, seconds in described.items():
        added = "" if name.startswith("health") else f" ({(seconds - baseline) * 1e6:+.1f} us)"
        print(f"  {name:26s} {seconds * 1e6:8.1f} us/describe{added}")
    print(f"  (the running canary ran {runs} times)")
    run_cost = described["canary runs (interval 0)"] - baseline
    print(
        f"at one run per 30 s: {run_cost * 1e3:.3f} ms added per 30 s "
        f"= {run_cost / 30 * 100:.4f} % of one core (wall time, the describe's added cost)"
    )
    print_load("load average at end")


if __name__ == "__main__":
    main()
