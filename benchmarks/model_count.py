"""Cost of growth: probe and status time with 1, 10 and 50 models registered.

Run: .venv/bin/python benchmarks/model_count.py [--counts 1,10,50] [--runs 15]

One real TorchServe; ``examples/empty_model`` is archived once and registered under the names
``m01``, ``m02``, ... (one worker each) until each count is reached. At each count, these are
measured, interleaved, ``--runs`` times each (medians printed):

- ``ts-health status`` (every model: a model list, then per model a describe, a customized
  describe and a record read; 8 models at a time), a fresh process each run;
- ``ts-health status m01`` and ``ts-health ready m01`` (one model), fresh processes;
- ``GET /models/m01?customized=true`` (the status document alone, in-process HTTP).

Every worker is a Python process with torch imported (about 210 MiB resident): 50 models take
about 11 GiB. Before growing, the benchmark checks ``MemAvailable`` and stops early (saying so)
when the next count would leave less than 4 GiB.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _common import (
    HEALTH_MODEL,
    SERVER_CONFIG,
    archive,
    median,
    print_load,
    print_machine,
    probe_command,
    probe_env,
    run_timed,
)
from _load import request_once

from ts_health_handler.testing import serve

#: Resident memory of one worker, measured on TorchServe 0.12 + torch 2.13 CPU.
WORKER_MIB = 230
RESERVE_MIB = 4096


def available_mib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable"):
            return int(line.split()[1]) // 1024
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--counts", default="1,10,50", help="model counts (default 1,10,50)")
    parser.add_argument("--runs", type=int, default=15, help="runs per measurement")
    args = parser.parse_args()
    counts = sorted({int(c) for c in args.counts.split(",")})
    print_machine()
    table: list[tuple[int, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="bench-models-") as scratch:
        root = Path(scratch)
        store, state = root / "store", root / "state"
        archive(HEALTH_MODEL, "empty", store)
        with serve(
            store,
            config={**SERVER_CONFIG, "default_response_timeout": 60},
            env={"TS_HEALTH_STATE_DIR": str(state)},
            startup_timeout=180,
        ) as server:
            common = [
                "--inference-url",
                server.inference_url,
                "--management-url",
                server.management_url,
                "--state-dir",
                str(state),
            ]
            probe = probe_command()
            commands = {
                "ts-health status (all)": [*probe, "status", *common],
                "ts-health status m01": [*probe, "status", "m01", *common],
                "ts-health ready m01": [*probe, "ready", "m01", *common],
            }
            env = probe_env(root / "pycache")
            registered = 0
            for count in counts:
                needed = (count - registered) * WORKER_MIB + RESERVE_MIB
                if available_mib() < needed:
                    print(
                        f"stopping before {count} models: {available_mib()} MiB available, "
                        f"{needed} MiB wanted"
                    )
                    break
                started = time.monotonic()
                while registered < count:
                    registered += 1
                    name = f"m{registered:02d}"
                    server.register("empty.mar", model_name=name, initial_workers=1)
                print(f"{count} models registered and READY in {time.monotonic() - started:.0f} s")
                for name, command in commands.items():  # warm-up and sanity
                    _, code, output = run_timed(command, env=env)
                    if code != 0:
                        print(f"  {name} exits {code}: {output.strip()[:500]}")
                        return 1
                figures = measure(server.management_url, commands, env, args.runs)
                table.append((count, figures))
                for name, value in figures.items():
                    print(f"  {name:32s} {value * 1000:8.1f} ms (median of {args.runs})")
            print_load("load average at end")
    if not table:
        return 1
    base = table[0][1]
    print(f"growth relative to {table[0][0]} model(s):")
    for count, figures in table:
        ratios = ", ".join(f"{name} {figures[name] / base[name]:.2f}x" for name in figures)
        print(f"  {count:3d} models: {ratios}")
    return 0


def measure(
    management: str, commands: dict[str, list[str]], env: dict[str, str], runs: int
) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in commands}
    describe = "GET m01?customized=true (HTTP)"
    samples[describe] = []
    url = f"{management}/models/m01?customized=true"
    for _ in range(runs):
        for name, command in commands.items():
            seconds, _, _ = run_timed(command, env=env)
            samples[name].append(seconds)
        answer = request_once(url, timeout=10)
        if answer.status == 200:
            samples[describe].append(answer.latency_s)
    return {name: median(values) for name, values in samples.items()}


if __name__ == "__main__":
    sys.exit(main())
