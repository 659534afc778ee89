"""Latency of ``GET /models/{name}?customized=true``: HealthHandler vs plain BaseHandler.

Run: .venv/bin/python benchmarks/describe_latency.py [--rounds 20] [--requests 50]

One real TorchServe serves ``examples/empty_model`` (``health_empty``: our status document is
built on every call, the record re-read from disk) and ``benchmarks/plain_empty_model``
(``plain_empty``: BaseHandler's ``describe_handle()`` returns None). A customized describe
goes through the frontend to the model's worker and back; a plain describe
(``GET /models/{name}``) stays in the frontend and is measured as the floor. One request at a
time on a keep-alive connection, ``--requests`` per round, rounds interleaved and alternating
which model goes first. Figures: p50 and p99 over all rounds, and the ratios.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from _common import HEALTH_MODEL, PLAIN_MODEL, SERVER_CONFIG, archive, print_load, print_machine
from _load import percentile, request_once, run_load

from ts_health_handler.testing import serve

CASES = {
    "plain describe (frontend only)": ("plain_empty", ""),
    "BaseHandler ?customized=true": ("plain_empty", "?customized=true"),
    "HealthHandler ?customized=true": ("health_empty", "?customized=true"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--requests", type=int, default=50, help="requests per round and case")
    args = parser.parse_args()
    print_machine()
    print(f"{args.rounds} rounds x {args.requests} sequential requests per case")
    samples: dict[str, list[float]] = {case: [] for case in CASES}
    failures = 0
    with tempfile.TemporaryDirectory(prefix="bench-describe-") as scratch:
        root = Path(scratch)
        store = root / "store"
        archive(PLAIN_MODEL, "plain_empty", store)
        archive(HEALTH_MODEL, "health_empty", store)
        with serve(
            store, config=SERVER_CONFIG, env={"TS_HEALTH_STATE_DIR": str(root / "state")}
        ) as server:
            for name in ("plain_empty", "health_empty"):
                server.register(f"{name}.mar")
                server.wait_until_ready(name, timeout=180)
            urls = {
                case: f"{server.management_url}/models/{name}{query}"
                for case, (name, query) in CASES.items()
            }
            for case, url in urls.items():  # what each answers, and warm-up
                answer = request_once(url)
                entry = json.loads(answer.body)[0]
                metadata = entry.get("customizedMetadata", "<absent>")
                if isinstance(metadata, dict) and metadata:
                    metadata = {"status": metadata.get("status"), "...": "..."}
                print(f"  {case}: HTTP {answer.status}, customizedMetadata: {metadata}")
                run_load(url, requests=100, concurrency=1, method="GET", body=b"")
            order = list(urls)
            for round_no in range(args.rounds):
                for case in order if round_no % 2 == 0 else order[::-1]:
                    result = run_load(
                        urls[case],
                        requests=args.requests,
                        concurrency=1,
                        method="GET",
                        body=b"",
                        timeout=10,
                    )
                    failures += result.sent - result.ok
                    samples[case].extend(result.latencies_s)
    print_load("load average at end")
    for case, values in samples.items():
        print(
            f"{case:32s} p50 {percentile(values, 50) * 1000:6.2f} ms, "
            f"p99 {percentile(values, 99) * 1000:6.2f} ms ({len(values)} requests)"
        )
    ours = samples["HealthHandler ?customized=true"]
    plain = samples["BaseHandler ?customized=true"]
    floor = samples["plain describe (frontend only)"]
    for q in (50, 99):
        added = (percentile(ours, q) - percentile(plain, q)) * 1000
        print(
            f"p{q}: HealthHandler/BaseHandler customized describe "
            f"{percentile(ours, q) / percentile(plain, q):.2f}x ({added:+.2f} ms); "
            f"customized/plain describe: BaseHandler "
            f"{percentile(plain, q) / percentile(floor, q):.2f}x, HealthHandler "
            f"{percentile(ours, q) / percentile(floor, q):.2f}x"
        )
    if failures:
        print(f"{failures} describe requests did not answer 200")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
