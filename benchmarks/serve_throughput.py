"""End-to-end throughput and latency of the empty model: HealthHandler vs plain BaseHandler.

Run: .venv/bin/python benchmarks/serve_throughput.py [--rounds 20] [--requests 1000]
     [--concurrency 16] [--workers 1] [--aa | --with-serve]

One real TorchServe serves both models at once: ``examples/empty_model`` (``HealthMixin`` +
``BaseHandler``) as ``health_empty`` and ``benchmarks/plain_empty_model`` (the same code
without ``HealthMixin``) as ``plain_empty``. The load generator (``benchmarks/_load.py``,
keep-alive connections on loopback) sends ``--requests`` POSTs per round to one model, then to
the other: A B A B ..., so that drift of the machine hits both alike. Figures per model:
median throughput over the rounds, p50 and p99 latency over all requests of all rounds.
Target: throughput ratio HealthHandler / BaseHandler >= 0.97.

Rounds alternate which model goes first (A B, B A, A B, ...), so that a machine that speeds
up (JIT warm-up) or slows down (other load) during the run favours neither. ``--aa`` serves
the plain model twice (as both A and B) to show the noise floor of the machine: the ratio
it prints should be 1.0, and how far it strays is what the real ratio can be trusted to.

``--with-serve`` compares the HealthHandler model with itself: ``ts-health serve --interval 1
--model health_empty`` running against not running. It asks TorchServe every second for
``/ping``, a describe and a customized describe, which goes through the worker's queue like an
inference request. One serve process is started once; it is stopped with SIGSTOP for the rounds
without it (no CPU, no request) and continued with SIGCONT for the rounds with it (each of
those starts once it has observed afresh), so that no round pays for starting a Python
process. Rounds are longer by default (3000 requests, several seconds, so that each round of
the running arm holds several observations). ``--with-serve --aa`` keeps serve stopped in both
arms: the noise floor of the same design. Target: throughput ratio >= 0.99.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _common import (
    HEALTH_MODEL,
    PLAIN_MODEL,
    SERVER_CONFIG,
    archive,
    cpu_seconds,
    median,
    print_load,
    print_machine,
    serve_process,
)
from _load import LoadResult, percentile, request_once, run_load

from ts_health_handler.testing import serve, wait_for

TARGET_RATIO = 0.97
TARGET_WITH_SERVE = 0.99
MODELS = {
    "BaseHandler": ("plain_empty", PLAIN_MODEL),
    "HealthHandler": ("health_empty", HEALTH_MODEL),
}
#: ``--aa``: the baseline against itself, under the same labels.
AA_MODELS = {
    "BaseHandler": ("plain_empty", PLAIN_MODEL),
    "HealthHandler": ("plain_again", PLAIN_MODEL),
}
#: ``--with-serve``: one model, without and with ``ts-health serve`` watching it.
SERVE_MODELS = {
    "serve off": ("health_empty", HEALTH_MODEL),
    "serve on": ("health_empty", HEALTH_MODEL),
}
#: ``--with-serve --aa``: serve stopped in both arms.
SERVE_AA_MODELS = {
    "serve off": ("health_empty", HEALTH_MODEL),
    "serve off again": ("health_empty", HEALTH_MODEL),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--rounds", type=int, default=None, help="rounds per model (20; 30 with serve)"
    )
    parser.add_argument(
        "--requests", type=int, default=None, help="requests per round (1000; 3000 with serve)"
    )
    parser.add_argument("--concurrency", type=int, default=16, help="connections (default 16)")
    parser.add_argument("--workers", type=int, default=1, help="workers per model (default 1)")
    parser.add_argument("--warmup", type=int, default=3000, help="warm-up requests per model")
    parser.add_argument(
        "--aa", action="store_true", help="A/A run: the plain model against itself (noise floor)"
    )
    parser.add_argument(
        "--with-serve",
        action="store_true",
        help="the health model with ts-health serve --interval 1 running against not running",
    )
    args = parser.parse_args()
    if args.requests is None:
        args.requests = 3000 if args.with_serve else 1000
    if args.rounds is None:
        args.rounds = 30 if args.with_serve else 20
    if args.with_serve:
        models = SERVE_AA_MODELS if args.aa else SERVE_MODELS
    else:
        models = AA_MODELS if args.aa else MODELS
    print_machine()
    if args.aa and not args.with_serve:
        print("A/A run: 'HealthHandler' below is a second copy of the plain BaseHandler model")
    print(
        f"rounds {args.rounds} per model (interleaved A B B A A B ...), {args.requests} "
        f"requests per round, concurrency {args.concurrency}, {args.workers} worker(s) per model"
    )
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as scratch:
        root = Path(scratch)
        store = root / "store"
        workers = {"minWorkers": args.workers, "maxWorkers": args.workers}
        for name, source in dict(models.values()).items():
            archive(source, name, store, workers)
        with serve(
            store,
            config={**SERVER_CONFIG, "job_queue_size": max(100, 2 * args.concurrency)},
            env={"TS_HEALTH_STATE_DIR": str(root / "state")},
        ) as server:
            for name in dict(models.values()):
                server.register(f"{name}.mar", initial_workers=args.workers)
                server.wait_until_ready(name, workers=args.workers, timeout=180)
            urls = {
                label: f"{server.inference_url}/predictions/{name}"
                for label, (name, _) in models.items()
            }
            headers = {"Content-Type": "text/plain"}
            for url in dict.fromkeys(urls.values()):
                run_load(url, requests=args.warmup, concurrency=args.concurrency, headers=headers)
            runs: dict[str, list[LoadResult]] = {label: [] for label in models}
            order = list(urls)
            with contextlib.ExitStack() as stack:
                watcher = None
                if args.with_serve:
                    watcher = stack.enter_context(
                        stopped_serve(server, root / "state", "health_empty")
                    )
                for round_no in range(1, args.rounds + 1):
                    # A B, then B A: a machine that speeds up or slows down during the run
                    # (JIT warm-up, other load) favours neither model.
                    for label in order if round_no % 2 else order[::-1]:
                        if watcher is not None and label == "serve on":
                            watcher.resume()
                        result = run_load(
                            urls[label],
                            requests=args.requests,
                            concurrency=args.concurrency,
                            headers=headers,
                            body=b"hello",
                            keep_bodies=True,
                        )
                        note = ""
                        if watcher is not None and label == "serve on":
                            note = watcher.pause()
                        runs[label].append(result)
                        print(f"  round {round_no} {label:13s} {result.summary()}{note}")
            health_doc = (
                None if args.aa and not args.with_serve else server.status_document("health_empty")
            )
    print_load("load average at end")
    return report(runs, health_doc, args)


class StoppedServe:
    """A ``ts-health serve`` process that runs only between :meth:`resume` and :meth:`pause`."""

    def __init__(self, pid: int, address: str) -> None:
        self.pid, self.address = pid, address
        self.cpu = self.started = 0.0
        self.observed = 0.0

    def observations(self) -> float:
        metrics = request_once(f"http://{self.address}/metrics").body.decode("utf-8", "replace")
        for line in metrics.splitlines():
            if line.startswith('ts_health_observations_total{kind="model"}'):
                return float(line.rsplit(" ", 1)[1])
        return float("nan")

    def resume(self) -> None:
        """Continue it and wait for its next observation of the model."""
        os.kill(self.pid, signal.SIGCONT)
        before = self.observations()
        wait_for(lambda: self.observations() > before, timeout=30, what="a fresh observation")
        self.cpu, self.started = cpu_seconds(self.pid), time.monotonic()
        self.observed = self.observations()

    def pause(self) -> str:
        """Stop it; what it did since :meth:`resume`, for the round's line."""
        seconds, cpu = time.monotonic() - self.started, cpu_seconds(self.pid) - self.cpu
        observed = self.observations() - self.observed
        os.kill(self.pid, signal.SIGSTOP)
        return (
            f"\n    serve: {observed:.0f} observations in {seconds:.1f} s, "
            f"{100 * cpu / seconds:.2f} % of a core"
        )


@contextlib.contextmanager
def stopped_serve(server: Any, state: Path, name: str) -> Iterator[StoppedServe]:
    """``ts-health serve --interval 1 --model NAME``, ready, then stopped (SIGSTOP)."""
    with serve_process(
        server.inference_url, server.management_url, state, "--interval", "1", "--model", name
    ) as (pid, address):
        ready = f"http://{address}/v2/models/{name}/ready"
        wait_for(lambda: request_once(ready).status == 200, timeout=60, what="serve ready")
        watcher = StoppedServe(pid, address)
        time.sleep(2.0)  # settled: imports and first observations done
        os.kill(pid, signal.SIGSTOP)
        try:
            yield watcher
        finally:
            os.kill(pid, signal.SIGCONT)  # so that it can take its SIGTERM


def report(
    runs: dict[str, list[LoadResult]], health_doc: dict[str, Any] | None, args: argparse.Namespace
) -> int:
    failed = False
    figures = {}
    for label, results in runs.items():
        latencies = [x for r in results for x in r.latencies_s]
        bad = sum(r.sent - r.ok for r in results)
        figures[label] = median([r.throughput for r in results])
        print(
            f"{label:13s} throughput {figures[label]:7.1f} req/s (median of {len(results)}), "
            f"p50 {percentile(latencies, 50) * 1000:6.2f} ms, "
            f"p99 {percentile(latencies, 99) * 1000:6.2f} ms, not 200: {bad}"
        )
        if bad:
            failed = True
            print(f"  samples: {[s for r in results for s in r.samples][:3]}")
    base, candidate = runs
    pairs = [
        c.throughput / b.throughput
        for c, b in zip(runs[candidate], runs[base], strict=True)
        if b.throughput
    ]
    ratio = figures[candidate] / figures[base]
    p50 = {
        label: percentile([x for r in results for x in r.latencies_s], 50)
        for label, results in runs.items()
    }
    p99 = {
        label: percentile([x for r in results for x in r.latencies_s], 99)
        for label, results in runs.items()
    }
    target = TARGET_WITH_SERVE if args.with_serve else TARGET_RATIO
    verdict = "met" if ratio >= target else "MISSED"
    print(
        f"throughput ratio {candidate}/{base}: {ratio:.3f} (target >= {target}: "
        f"{verdict}); per-pair ratios: min {min(pairs):.3f}, median {median(pairs):.3f}, "
        f"max {max(pairs):.3f}"
    )
    p50_ratio = p50[candidate] / p50[base]
    p99_ratio = p99[candidate] / p99[base]
    print(f"latency ratio {candidate}/{base}: p50 {p50_ratio:.3f}, p99 {p99_ratio:.3f}")
    if args.workers != 1 or health_doc is None:
        return 1 if failed else 0
    counted = health_doc["requests"]["total"]
    # With --with-serve both arms send to health_empty.
    expected = args.warmup + args.rounds * args.requests * (2 if args.with_serve else 1)
    print(
        f"HealthHandler's own count (status document, 1 worker asked): {counted} requests "
        f"(sent {expected} to health_empty)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
