"""End-to-end throughput and latency of the empty model: HealthHandler vs plain BaseHandler.

Run: .venv/bin/python benchmarks/serve_throughput.py [--rounds 8] [--requests 2000]
     [--concurrency 16] [--workers 1]

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
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _common import (
    HEALTH_MODEL,
    PLAIN_MODEL,
    SERVER_CONFIG,
    archive,
    median,
    print_load,
    print_machine,
)
from _load import LoadResult, percentile, run_load

from ts_health_handler.testing import serve

TARGET_RATIO = 0.97
MODELS = {
    "BaseHandler": ("plain_empty", PLAIN_MODEL),
    "HealthHandler": ("health_empty", HEALTH_MODEL),
}
#: ``--aa``: the baseline against itself, under the same labels.
AA_MODELS = {
    "BaseHandler": ("plain_empty", PLAIN_MODEL),
    "HealthHandler": ("plain_again", PLAIN_MODEL),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="rounds per model (default 20)")
    parser.add_argument("--requests", type=int, default=1000, help="requests per round")
    parser.add_argument("--concurrency", type=int, default=16, help="connections (default 16)")
    parser.add_argument("--workers", type=int, default=1, help="workers per model (default 1)")
    parser.add_argument("--warmup", type=int, default=3000, help="warm-up requests per model")
    parser.add_argument(
        "--aa", action="store_true", help="A/A run: the plain model against itself (noise floor)"
    )
    args = parser.parse_args()
    models = AA_MODELS if args.aa else MODELS
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
        for name, source in models.values():
            archive(source, name, store, workers)
        with serve(
            store,
            config={**SERVER_CONFIG, "job_queue_size": max(100, 2 * args.concurrency)},
            env={"TS_HEALTH_STATE_DIR": str(root / "state")},
        ) as server:
            for name, _ in models.values():
                server.register(f"{name}.mar", initial_workers=args.workers)
                server.wait_until_ready(name, workers=args.workers, timeout=180)
            urls = {
                label: f"{server.inference_url}/predictions/{name}"
                for label, (name, _) in models.items()
            }
            headers = {"Content-Type": "text/plain"}
            for url in urls.values():
                run_load(url, requests=args.warmup, concurrency=args.concurrency, headers=headers)
            runs: dict[str, list[LoadResult]] = {label: [] for label in models}
            order = list(urls)
            for round_no in range(1, args.rounds + 1):
                # A B, then B A: a machine that speeds up or slows down during the run
                # (JIT warm-up, other load) favours neither model.
                for label in order if round_no % 2 else order[::-1]:
                    url = urls[label]
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
    pairs = [
        h.throughput / p.throughput
        for h, p in zip(runs["HealthHandler"], runs["BaseHandler"], strict=True)
        if p.throughput
    ]
    ratio = figures["HealthHandler"] / figures["BaseHandler"]
    p50 = {
        label: percentile([x for r in results for x in r.latencies_s], 50)
        for label, results in runs.items()
    }
    p99 = {
        label: percentile([x for r in results for x in r.latencies_s], 99)
        for label, results in runs.items()
    }
    verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
    print(
        f"throughput ratio HealthHandler/BaseHandler: {ratio:.3f} (target >= {TARGET_RATIO}: "
        f"{verdict}); per-pair ratios: min {min(pairs):.3f}, median {median(pairs):.3f}, "
        f"max {max(pairs):.3f}"
    )
    p50_ratio = p50["HealthHandler"] / p50["BaseHandler"]
    p99_ratio = p99["HealthHandler"] / p99["BaseHandler"]
    print(f"latency ratio HealthHandler/BaseHandler: p50 {p50_ratio:.3f}, p99 {p99_ratio:.3f}")
    if args.workers != 1 or health_doc is None:
        return 1 if failed else 0
    counted = health_doc["requests"]["total"]
    expected = args.warmup + args.rounds * args.requests
    print(
        f"HealthHandler's own count (status document, 1 worker asked): {counted} requests "
        f"(sent {expected} to health_empty)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
