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
--model health_empty`` running (started before the round, once it answers ready, and stopped
after it) against not running. It asks TorchServe every second for ``/ping``, a describe and
a customized describe, which goes through the worker's queue like an inference request.
Rounds are longer by default (4000 requests, several seconds, so that each round of the
running arm holds several observations). Target: throughput ratio >= 0.99.
"""

from __future__ import annotations

import argparse
import contextlib
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


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="rounds per model (default 20)")
    parser.add_argument(
        "--requests", type=int, default=None, help="requests per round (1000; 4000 with serve)"
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
    if args.aa and args.with_serve:
        parser.error("--aa and --with-serve are two different runs")
    if args.requests is None:
        args.requests = 4000 if args.with_serve else 1000
    models = AA_MODELS if args.aa else SERVE_MODELS if args.with_serve else MODELS
    print_machine()
    if args.aa:
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
            for round_no in range(1, args.rounds + 1):
                # A B, then B A: a machine that speeds up or slows down during the run
                # (JIT warm-up, other load) favours neither model.
                for label in order if round_no % 2 else order[::-1]:
                    url = urls[label]
                    with contextlib.ExitStack() as stack:
                        if label == "serve on":
                            stack.enter_context(watching(server, root / "state", "health_empty"))
                        result = run_load(
                            url,
                            requests=args.requests,
                            concurrency=args.concurrency,
                            headers=headers,
                            body=b"hello",
                            keep_bodies=True,
                        )
                    runs[label].append(result)
                    print(f"  round {round_no} {label:13s} {result.summary()}")
            health_doc = None if args.aa else server.status_document("health_empty")
    print_load("load average at end")
    return report(runs, health_doc, args)


@contextlib.contextmanager
def watching(server: Any, state: Path, name: str) -> Iterator[None]:
    """``ts-health serve --interval 1 --model NAME``, from its first ready answer until the
    end of the block; its observation count is printed when it stops."""
    with serve_process(
        server.inference_url, server.management_url, state, "--interval", "1", "--model", name
    ) as (pid, address):
        ready = f"http://{address}/v2/models/{name}/ready"
        wait_for(lambda: request_once(ready).status == 200, timeout=60, what="serve ready")
        started, cpu = time.monotonic(), cpu_seconds(pid)
        yield
        cpu, seconds = cpu_seconds(pid) - cpu, time.monotonic() - started
        metrics = request_once(f"http://{address}/metrics").body.decode("utf-8", "replace")
        observed = [
            line.rsplit(" ", 1)[1]
            for line in metrics.splitlines()
            if line.startswith('ts_health_observations_total{kind="model"}')
        ]
        print(
            f"    serve: {float(observed[0]) if observed else float('nan'):.0f} model "
            f"observations in all, {seconds:.1f} s from ready to the end of the round, "
            f"{100 * cpu / seconds:.2f} % of a core meanwhile"
        )


def report(
    runs: dict[str, list[LoadResult]], health_doc: dict | None, args: argparse.Namespace
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
