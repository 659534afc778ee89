"""Per-call cost of ``handle()`` with HealthMixin vs without, same no-op model, sync and async;
and what the watchdog thread costs the worker process.

Run: .venv/bin/python benchmarks/handle_overhead.py [--samples 1500] [--calls 100]

Four handlers run in this one process on TorchServe's real Context and metrics cache: a plain
``BaseHandler`` and the same with ``HealthMixin`` first, each once with the default ``handle()``
and once with an ``async def handle`` (awaited in a loop, as ``ts/async_service.py`` awaits
the entry point). Each pair takes ``--samples`` short samples of ``--calls`` calls per
handler, interleaved and alternating which goes first, and compares the **minimum** time per
call: on a shared machine every disturbance only ever adds time, so the fastest sample is
the best estimate of what the code itself costs (``timeit``'s advice for CPU-bound timing).
The p10 and median are printed beside it to show the noise.

The watchdog: the mixin handlers run as in a READY worker, their watchdog threads writing
beats into a temporary directory at the default interval (2 s). The thread's own CPU time is
read from its clock (``pthread_getcpuclockid``) and set against the process's CPU time over
the same run: that share is the watchdog's cost to the worker. Beats written by requests (the
first after a beat that showed the worker idle) run in the request and are in its time.

Two settings: logging as in a TorchServe worker (every ``HandlerTime`` metric formatted and
written, here to /dev/null), and logging off, which isolates the call overhead. Target:
HealthMixin adds at most 5 % with logging off, sync and async.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ts.torch_handler.base_handler import BaseHandler

from ts_health_handler import HealthMixin
from ts_health_handler.handler._serving import Serving
from ts_health_handler.record._beat import beat_path
from ts_health_handler.testing import mock_context, set_requests

TARGET_ADDED = 0.05


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


class PlainNoOp(_NoOp, BaseHandler):  # type: ignore[misc]
    pass


class HealthNoOp(HealthMixin, PlainNoOp):
    """The same model with HealthMixin first, as the docs ask."""


class PlainAsync(_NoOp, BaseHandler):  # type: ignore[misc]
    async def handle(self, data: Any, context: Any) -> Any:
        return BaseHandler.handle(self, data, context)


class HealthAsync(HealthMixin, PlainAsync):
    pass


Timer = Callable[[Any, Any, int], float]


def sync_seconds(handler: Any, context: Any, calls: int) -> float:
    data = [{"body": b"1"}]
    handle = handler.handle
    start = time.perf_counter()
    for _ in range(calls):
        handle(data, context)
    return (time.perf_counter() - start) / calls


def async_timer(loop: asyncio.AbstractEventLoop) -> Timer:
    def seconds(handler: Any, context: Any, calls: int) -> float:
        async def run() -> float:
            data = [{"body": b"1"}]
            handle = handler.handle
            start = time.perf_counter()
            for _ in range(calls):
                await handle(data, context)
            return (time.perf_counter() - start) / calls

        return loop.run_until_complete(run())

    return seconds


def start_watchdog(handler: Any, directory: Path) -> Serving:
    """The READY worker's watchdog for ``handler`` (inside TorchServe ``initialize()``
    starts it; outside, there is no worker id)."""
    tracker = handler._ts_health
    path = beat_path(directory, "bench", f"{id(handler)}")
    serving = Serving(tracker.requests, tracker.mode, tracker._config, "9000", path, time.time)
    tracker._serving = serving
    assert serving.watchdog is not None
    serving.watchdog.start()
    return serving


def thread_cpu(serving: Serving) -> float:
    """CPU seconds the watchdog thread has used, from its own clock."""
    thread = serving.watchdog._thread if serving.watchdog is not None else None
    if thread is None or thread.ident is None:
        return 0.0
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def spread(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    return ordered[0], ordered[len(ordered) // 10], statistics.median(ordered)


def compare(
    args: argparse.Namespace, label: str, pair: dict[str, tuple[Any, Any]], timer: Timer
) -> float:
    """Interleaved samples of both handlers of ``pair``; print the spread, return the ratio
    of the minimums (mixin over plain)."""
    for handler, context in pair.values():
        timer(handler, context, 20 * args.calls)  # warm up
    samples: dict[str, list[float]] = {name: [] for name in pair}
    order = list(pair)
    for i in range(args.samples):
        for name in order if i % 2 == 0 else order[::-1]:
            handler, context = pair[name]
            samples[name].append(timer(handler, context, args.calls))
    figures = {name: spread(values) for name, values in samples.items()}
    for name, (low, p10, mid) in figures.items():
        print(
            f"  {label:5s} {name:11s} min {low * 1e6:7.3f}  p10 {p10 * 1e6:7.3f}  "
            f"median {mid * 1e6:7.3f} us/call"
        )
    plain, health = (figures[name][0] for name in order)
    ratio = health / plain
    print(
        f"  {label:5s} ratio of minimums {ratio:.3f} (added {100 * (ratio - 1):+.1f} %, "
        f"{(health - plain) * 1e6:+.3f} us/call); of p10s "
        f"{figures[order[1]][1] / figures[order[0]][1]:.3f}, of medians "
        f"{figures[order[1]][2] / figures[order[0]][2]:.3f}"
    )
    return ratio


def make(kind: type, state_dir: Path, yaml: dict[str, Any]) -> tuple[Any, Any]:
    health = {"health": {"state_dir": str(state_dir)}, **yaml}
    context = mock_context("noop", model_yaml_config=health)
    handler = kind()
    handler.initialize(context)
    set_requests(context, [{}])
    return handler, context


def measure(args: argparse.Namespace, label: str, state_dir: Path) -> dict[str, float]:
    """One setting: both pairs; return their ratios."""
    print(f"[{label}]")
    cpu_start, started = time.process_time(), time.perf_counter()
    sync_pair = {
        "BaseHandler": make(PlainNoOp, state_dir, {}),
        "HealthMixin": make(HealthNoOp, state_dir, {}),
    }
    async_pair = {
        "BaseHandler": make(PlainAsync, state_dir, {"asyncCommunication": True}),
        "HealthMixin": make(HealthAsync, state_dir, {"asyncCommunication": True}),
    }
    watchdogs = [start_watchdog(pair["HealthMixin"][0], state_dir) for pair in (sync_pair,)]
    watchdogs.append(start_watchdog(async_pair["HealthMixin"][0], state_dir))
    loop = asyncio.new_event_loop()
    try:
        ratios = {
            "sync": compare(args, "sync", sync_pair, sync_seconds),
            "async": compare(args, "async", async_pair, async_timer(loop)),
        }
    finally:
        loop.close()
    cpu = time.process_time() - cpu_start
    elapsed = time.perf_counter() - started
    watchdog_cpu = sum(thread_cpu(s) for s in watchdogs)
    writes = sum(s.watchdog.writes for s in watchdogs if s.watchdog is not None)
    for serving in watchdogs:
        if serving.watchdog is not None:
            serving.watchdog.stop()
    print(
        f"  watchdogs: {len(watchdogs)} threads, {writes} beats in {elapsed:.1f} s "
        f"({writes / elapsed:.2f}/s, by the threads and by requests), "
        f"{watchdog_cpu * 1e3:.1f} ms of thread CPU = {100 * watchdog_cpu / cpu:.3f} % of the "
        f"process's {cpu:.1f} s CPU ({1e3 * watchdog_cpu / max(1, writes):.3f} ms a beat)"
    )
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--samples", type=int, default=1500, help="samples per handler")
    parser.add_argument("--calls", type=int, default=100, help="calls per sample")
    args = parser.parse_args()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"{args.samples} samples of {args.calls} calls per handler, interleaved; "
        f"load average {load}"
    )
    results = {}
    with open(os.devnull, "w") as devnull:
        # The worker's logging: INFO and up, one line per record, as ts sets it up.
        logging.basicConfig(stream=devnull, format="%(message)s", level=logging.INFO, force=True)
        for label, disabled in (("worker logging", None), ("logging off", logging.INFO)):
            logging.disable(disabled or logging.NOTSET)
            with tempfile.TemporaryDirectory(prefix="ts-health-bench-") as state_dir:
                results[label] = measure(args, label, Path(state_dir))
    logging.disable(logging.NOTSET)
    off = results["logging off"]
    verdicts = {
        mode: "met" if ratio <= 1 + TARGET_ADDED else "MISSED" for mode, ratio in off.items()
    }
    on = results["worker logging"]
    print(
        f"summary: worker logging sync {on['sync']:.3f} async {on['async']:.3f}; logging off "
        f"sync {off['sync']:.3f} ({verdicts['sync']}) async {off['async']:.3f} "
        f"({verdicts['async']}); target <= {1 + TARGET_ADDED:.2f} with logging off"
    )


if __name__ == "__main__":
    main()
