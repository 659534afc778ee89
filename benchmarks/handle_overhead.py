"""Per-call cost of ``handle()`` through HealthHandler vs plain BaseHandler, same no-op model.

Run: .venv/bin/python benchmarks/handle_overhead.py [--calls N] [--repeats R]

Both handlers run in this one process, interleaved (A B A B ...), on TorchServe's real
Context and metrics cache; the figure per handler is the median over repeats of the mean
time per call. Two settings: logging as in a TorchServe worker (every ``HandlerTime``
metric is formatted and written; here to /dev/null instead of the frontend's pipe), and
logging off, which isolates the Python call overhead. Target: HealthHandler adds under 5 %.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from typing import Any

from ts.torch_handler.base_handler import BaseHandler

from ts_health_handler import HealthMixin
from ts_health_handler.testing import mock_context, set_requests


class _NoOp:
    """The trivial model: every step passes its input through."""

    def initialize(self, context: Any) -> None:
        self.initialized = True

    def preprocess(self, data: Any) -> Any:
        return data

    def inference(self, data: Any, *args: Any, **kwargs: Any) -> Any:
        return data

    def postprocess(self, data: Any) -> Any:
        return [1 for _ in data]


class PlainNoOp(_NoOp, BaseHandler):
    pass


class HealthNoOp(HealthMixin, PlainNoOp):
    """The same model with HealthMixin first, as the docs ask."""


def per_call_seconds(handler: Any, context: Any, calls: int) -> float:
    data = [{"body": b"1"}]
    handle = handler.handle
    start = time.perf_counter()
    for _ in range(calls):
        handle(data, context)
    return (time.perf_counter() - start) / calls


def measure(calls: int, repeats: int) -> tuple[float, float]:
    state_dir = tempfile.mkdtemp(prefix="ts-health-bench-")
    handlers = {}
    for name, kind in (("BaseHandler", PlainNoOp), ("HealthHandler", HealthNoOp)):
        context = mock_context("noop", model_yaml_config={"health": {"state_dir": state_dir}})
        handler = kind()
        handler.initialize(context)
        set_requests(context, [{}])
        per_call_seconds(handler, context, calls // 10)  # warm up
        handlers[name] = (handler, context)
    samples: dict[str, list[float]] = {name: [] for name in handlers}
    for _ in range(repeats):
        for name, (handler, context) in handlers.items():
            samples[name].append(per_call_seconds(handler, context, calls))
    return statistics.median(samples["BaseHandler"]), statistics.median(samples["HealthHandler"])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    print(f"calls per sample: {args.calls}, samples: {args.repeats} (interleaved)")

    with open(os.devnull, "w") as devnull:
        # The worker's logging: INFO and up, one line per record, as ts sets it up.
        logging.basicConfig(stream=devnull, format="%(message)s", level=logging.INFO, force=True)
        settings = [("worker logging", None), ("logging off", logging.INFO)]
        for label, disabled in settings:
            logging.disable(disabled or logging.NOTSET)
            plain, health = measure(args.calls, args.repeats)
            print(f"[{label}]")
            print(f"  BaseHandler   handle(): {plain * 1e6:8.2f} us/call (median)")
            print(f"  HealthHandler handle(): {health * 1e6:8.2f} us/call (median)")
            print(
                f"  ratio HealthHandler/BaseHandler: {health / plain:.3f} "
                f"(added {100 * (health / plain - 1):+.1f} %, target < +5 %)"
            )


if __name__ == "__main__":
    main()
