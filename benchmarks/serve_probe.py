"""``ts-health serve`` against the alternatives, side by side in one run.

1. Readiness, against a real TorchServe serving ``examples/empty_model``:
   - ``GET /v2/models/empty_model/ready`` from ``ts-health serve`` (p50, p99 from one client;
     requests/s at concurrency 8),
   - ``ts-health ready empty_model`` as an exec probe (a fresh process each time),
   - ``curl /ping`` (a fresh process each time; frontend only);
   and CPU seconds per 1,000 probes: the server process's own CPU for the server, the
   child processes' CPU (``RUSAGE_CHILDREN``) for exec and curl. TorchServe's CPU to answer is
   left out of all three.
2. The cost of observing: ``ts-health serve`` with 1, 10 and 50 models at the default
   ``--interval`` (2 s), against the fake TorchServe of the tests (each model READY, with a
   status document), so that 50 models need no 50 Python workers: resident memory and
   background CPU in % of one core, measured from ``/proc`` over ``--idle-seconds``.

    .venv/bin/python benchmarks/serve_probe.py [--runs 40] [--requests 4000] [--idle-seconds 30]

Targets: p50 <= 2 ms, >= 1,000 requests/s, under 50 MB resident, background CPU under 2 % of
one core with 10 models.
"""

from __future__ import annotations

import argparse
import http.client
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO))  # for tests.support

from _common import (  # noqa: E402
    HEALTH_MODEL,
    SERVER_CONFIG,
    archive,
    cpu_seconds,
    print_machine,
    probe_command,
    serve_process,
)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def get(address: str, path: str) -> int:
    host, port = address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def wait_ready(address: str, path: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while get(address, path) != 200:
        if time.monotonic() > deadline:
            raise SystemExit(f"serve_probe: {path} never answered 200")
        time.sleep(0.1)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def exec_probe(command: list[str], runs: int) -> tuple[list[float], float]:
    subprocess.run(command, capture_output=True, timeout=60, check=False)  # warm-up
    times: list[float] = []
    before = child_cpu()
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, timeout=60, check=False)
        times.append((time.perf_counter() - started) * 1000)
        if done.returncode != 0:
            raise SystemExit(f"serve_probe: {command[0]} exited {done.returncode}")
    return times, (child_cpu() - before) / runs * 1000


def server_latency(address: str, path: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        assert get(address, path) == 200
        times.append((time.perf_counter() - started) * 1000)
    return times


def server_throughput(address: str, path: str, requests: int, pid: int) -> tuple[float, float]:
    per_thread = requests // 8
    errors: list[int] = []

    def work() -> None:
        for _ in range(per_thread):
            status = get(address, path)
            if status != 200:
                errors.append(status)

    threads = [threading.Thread(target=work) for _ in range(8)]
    cpu_before = cpu_seconds(pid)
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(pid) - cpu_before
    if errors:
        raise SystemExit(f"serve_probe: {len(errors)} answers were not 200: {errors[:5]}")
    done = per_thread * 8
    return done / elapsed, cpu / done * 1000


def row(label: str, times: Sequence[float], rate: str, cpu: float) -> None:
    print(
        f"| {label} | {statistics.median(times):.2f} | {percentile(times, 0.99):.2f} | "
        f"{rate} | {cpu:.3f} |"
    )


def readiness(args: argparse.Namespace, scratch: Path) -> None:
    from ts_health_handler.testing import serve

    store, state = scratch / "store", scratch / "state"
    archive(HEALTH_MODEL, "empty_model", store)
    with serve(
        store,
        models={"empty_model": "empty_model.mar"},
        config=SERVER_CONFIG,
        env={"TS_HEALTH_STATE_DIR": str(state)},
    ) as server:
        server.wait_until_ready("empty_model", timeout=120)
        path = "/v2/models/empty_model/ready"
        with serve_process(server.inference_url, server.management_url, state) as (pid, address):
            wait_ready(address, path)
            server_latency(address, path, 50)  # warm-up
            times = server_latency(address, path, args.requests // 4)
            rate, cpu = server_throughput(address, path, args.requests, pid)
            exec_command = [*probe_command(), "ready", "empty_model"]
            exec_command += ["--inference-url", server.inference_url]
            exec_command += ["--management-url", server.management_url]
            exec_command += ["--state-dir", str(state)]
            exec_times, exec_cpu = exec_probe(exec_command, args.runs)
            curl = shutil.which("curl")
            curl_row = None
            if curl:
                curl_row = exec_probe(
                    [curl, "-sf", "-o", "/dev/null", f"{server.inference_url}/ping"], args.runs
                )
    print("\n## Readiness: one answer\n")
    print("| probe | p50 ms | p99 ms | requests/s (concurrency 8) | CPU s per 1,000 |")
    print("|---|---|---|---|---|")
    row("ts-health serve GET /v2/models/empty_model/ready", times, f"{rate:.0f}", cpu)
    row("ts-health ready (exec)", exec_times, "-", exec_cpu)
    if curl_row:
        row("curl /ping (exec)", curl_row[0], "-", curl_row[1])


def background(args: argparse.Namespace, scratch: Path) -> None:
    from tests.support.fake_torchserve import running

    print(f"\n## Observing: default interval, {args.idle_seconds:g} s per model count\n")
    print("| models | resident MB | background CPU % of one core |")
    print("|---|---|---|")
    for count in (1, 10, 50):
        with running() as fake:
            names = [f"model_{i}" for i in range(count)]
            fake.on("/ping", (200, {"status": "Healthy"}))
            fake.on(
                "/models?limit=100",
                (200, {"models": [{"modelName": n, "modelUrl": f"{n}.mar"} for n in names]}),
            )
            for name in names:
                entry = {
                    "modelName": name,
                    "modelVersion": "1.0",
                    "minWorkers": 1,
                    "maxWorkers": 1,
                    "maxRetryTimeoutInSec": 300,
                    "workers": [{"id": "9000", "status": "READY", "pid": 1}],
                    "jobQueueStatus": {"remainingCapacity": 100, "pendingRequests": 0},
                }
                fake.on(f"/models/{name}", (200, [entry]))
                custom = {**entry, "customizedMetadata": {"status": "ready", "schema_version": 1}}
                fake.on(f"/models/{name}/1.0?customized=true", (200, [custom]))
            state = scratch / f"state-{count}"
            with serve_process(fake.url, fake.url, state) as (pid, address):
                wait_ready(address, "/ready")
                time.sleep(2.5)  # a settled observer: imports and first rounds done
                before, started = cpu_seconds(pid), time.perf_counter()
                time.sleep(args.idle_seconds)
                cpu = (cpu_seconds(pid) - before) / (time.perf_counter() - started) * 100
                print(f"| {count} | {rss_mb(pid):.1f} | {cpu:.2f} |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40, help="exec probe runs (default 40)")
    parser.add_argument("--requests", type=int, default=4000, help="server requests")
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    print_machine()
    with tempfile.TemporaryDirectory(prefix="serve-probe-") as scratch:
        readiness(args, Path(scratch))
        background(args, Path(scratch))
    print("\ntargets: p50 <= 2 ms, >= 1,000 requests/s, < 50 MB resident, < 2 % CPU at 10 models")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
