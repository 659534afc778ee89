"""Series per replica over a long run with a busy model, and what one scrape costs.

One TorchServe serves ``examples/troubled_model`` (one worker) while a bounded load loop keeps
it busy: requests of ``sleep:0.02`` from 1 to 12 clients, changing every ``--phase-seconds``,
so that the job queue's pending count moves as it does under bursty traffic.
``ts-health serve`` watches it at its default ``--interval`` (2 s), and this script scrapes
its ``/metrics`` every ``--scrape-interval`` seconds for ``--minutes``, as Prometheus would.
For each scrape it keeps the series (name and labels), the body's size and the time to
answer. It prints:

- series per scrape (min, max) and distinct series over the whole run: a replica whose
  series set never changes costs Prometheus nothing new as it runs;
- with ``--baseline SRC``: the same run of another checkout's ``ts-health serve`` beside
  this one (``PYTHONPATH=SRC``; same TorchServe, same load), e.g. the code before the reason
  left the labels;
- the cost of a scrape on a quiet server (the load stopped): questions to TorchServe (from
  ``ts_health_observations_total`` during ``--burst-seconds`` of back-to-back scrapes, against
  as long without), bytes per scrape and per series, CPU milliseconds per scrape (``/proc``,
  less the idle background), and the answer's p50 and p99.

    PYTHONPATH=src .venv/bin/python benchmarks/series_churn.py [--minutes 10]
        [--scrape-interval 5] [--phase-seconds 15] [--baseline ../main/src] [--burst-seconds 20]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

from _common import SERVER_CONFIG, archive, print_load, print_machine  # noqa: E402
from _load import run_load  # noqa: E402

MODEL = "busy"
TROUBLED = REPO / "examples" / "troubled_model"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

Series = tuple[str, tuple[tuple[str, str], ...]]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


@dataclass
class Scrapes:
    """What the scrapes of one ``ts-health serve`` saw."""

    label: str
    per_scrape: list[int] = field(default_factory=list)
    distinct: set[Series] = field(default_factory=set)
    first: set[Series] = field(default_factory=set)
    sizes: list[int] = field(default_factory=list)
    times_s: list[float] = field(default_factory=list)
    states: Counter[str] = field(default_factory=Counter)
    failures: int = 0


class Serve:
    """``ts-health serve`` on a free loopback port, from the sources at ``src``."""

    def __init__(self, src: Path, inference: str, management: str, state: Path) -> None:
        command = [sys.executable, "-m", "ts_health_handler", "serve", "--listen", "127.0.0.1:0"]
        command += ["--inference-url", inference, "--management-url", management]
        command += ["--state-dir", str(state), "--model", MODEL]
        env = {**os.environ, "PYTHONPATH": str(src)}
        self.process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
        assert self.process.stderr is not None
        line = self.process.stderr.readline()
        if "listening on" not in line:
            self.stop()
            raise SystemExit(f"series_churn: ts-health serve did not start: {line}")
        url = line.split("listening on ", 1)[1].split(";", 1)[0]
        host, port = url.split("//", 1)[1].rsplit(":", 1)
        self.address = (host, int(port))

    def metrics(self) -> tuple[bytes, float]:
        started = time.perf_counter()
        connection = http.client.HTTPConnection(*self.address, timeout=10)
        try:
            connection.request("GET", "/metrics")
            response = connection.getresponse()
            body = response.read()
            if response.status != 200:
                raise OSError(f"/metrics answered {response.status}")
        finally:
            connection.close()
        return body, time.perf_counter() - started

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def parse(body: bytes) -> dict[Series, float]:
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode("utf-8"))
        for sample in family.samples
    }


def scrape_into(serve: Serve, seen: Scrapes) -> None:
    try:
        body, elapsed = serve.metrics()
    except OSError:
        seen.failures += 1
        return
    series = parse(body)
    keys = set(series)
    if not seen.first:
        seen.first = keys
    seen.per_scrape.append(len(keys))
    seen.distinct |= keys
    seen.sizes.append(len(body))
    seen.times_s.append(elapsed)
    for (name, labels), value in series.items():
        if name == "ts_health_model_state" and value == 1:
            seen.states[dict(labels)["state"]] += 1


#: Clients of the load loop, phase after phase: bursty traffic, so that the job queue's
#: pending count moves (a steady closed loop would keep it at concurrency - 1).
PHASES = (1, 6, 2, 10, 4, 12, 3, 8)


@contextlib.contextmanager
def busy(url: str, seconds: float, phase_s: float) -> Iterator[dict[str, Any]]:
    """The load loop in a thread: phases of ``phase_s`` with the clients of :data:`PHASES`,
    bounded by ``seconds`` in all (and each phase by a request count)."""
    result: dict[str, Any] = {"sent": 0, "answered": 0, "errors": 0, "wall": 0.0}
    stop = time.monotonic() + seconds

    def work() -> None:
        phase = 0
        while (left := stop - time.monotonic()) > 0:
            load = run_load(
                url,
                requests=1_000_000,
                concurrency=PHASES[phase % len(PHASES)],
                body=b"sleep:0.02",
                deadline_s=min(phase_s, left),
                timeout=30.0,
            )
            result["sent"] += load.sent
            result["answered"] += load.ok
            result["errors"] += load.sent - load.ok
            result["wall"] += load.wall_s
            phase += 1

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        thread.join(timeout=seconds + 60)


def report(seen: Scrapes, minutes: float) -> None:
    new = seen.distinct - seen.first
    print(
        f"| {seen.label} | {len(seen.per_scrape)} | {min(seen.per_scrape)}-{max(seen.per_scrape)}"
        f" | {len(seen.distinct)} | {len(new)} | {statistics.median(seen.sizes):.0f} |"
        f" {', '.join(f'{k} {v}' for k, v in seen.states.most_common())} | {seen.failures} |"
    )
    churn = sorted({name for name, _ in new})
    if churn:
        print(f"|   new series came from | {', '.join(churn)} over {minutes:g} min | | | | | | |")


def cost(serve: Serve, pid: int, burst_s: float, interval: float) -> None:
    """One scrape on a quiet server: TorchServe requests, bytes, CPU, time."""
    first = parse(serve.metrics()[0])

    def observations(series: dict[Series, float]) -> float:
        return sum(v for (name, _), v in series.items() if name == "ts_health_observations_total")

    # Scrapes back to back for burst_s, then the background alone for as long.
    started, cpu0 = time.monotonic(), cpu_seconds(pid)
    times = []
    sizes = []
    count = len(first)
    while time.monotonic() - started < burst_s:
        body, elapsed = serve.metrics()
        times.append(elapsed)
        sizes.append(len(body))
    burst = len(times)
    burst_wall, burst_cpu = time.monotonic() - started, cpu_seconds(pid) - cpu0
    during = parse(serve.metrics()[0])
    asked_burst = observations(during) - observations(first)
    started, cpu0 = time.monotonic(), cpu_seconds(pid)
    time.sleep(burst_wall)
    idle_wall, idle_cpu = time.monotonic() - started, cpu_seconds(pid) - cpu0
    after = parse(serve.metrics()[0])
    asked_idle = observations(after) - observations(during)
    per_scrape_ms = max(0.0, burst_cpu - idle_cpu * burst_wall / idle_wall) / burst * 1000
    size = statistics.median(sizes)
    print(
        f"\n## The cost of one scrape ({burst} back to back in {burst_wall:.1f} s, quiet server)\n"
    )
    print("| figure | value |")
    print("|---|---|")
    print(f"| series per scrape (1 model version) | {count} |")
    print(f"| bytes per scrape (median) | {size:.0f} |")
    print(f"| bytes per series | {size / count:.0f} |")
    print(f"| answer p50 / p99 | {statistics.median(times) * 1000:.2f} / "
          f"{sorted(times)[int(0.99 * (len(times) - 1))] * 1000:.2f} ms |")  # fmt: skip
    print(f"| CPU per scrape (less the background) | {per_scrape_ms:.2f} ms |")
    print(
        f"| questions to TorchServe during the burst / as long idle ({idle_wall:.1f} s) |"
        f" {asked_burst:.0f} / {asked_idle:.0f} (a round every {interval:g} s either way) |"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the busy run")
    parser.add_argument("--scrape-interval", type=float, default=5.0)
    parser.add_argument("--phase-seconds", type=float, default=15.0, help="per load level")
    parser.add_argument("--baseline", type=Path, help="another checkout's src/ to compare")
    parser.add_argument(
        "--burst-seconds", type=float, default=20.0, help="back-to-back scrapes for the costs"
    )
    args = parser.parse_args(argv)
    from ts_health_handler.testing import serve

    print_machine()
    seconds = args.minutes * 60
    src = REPO / "src"
    with tempfile.TemporaryDirectory(prefix="series-churn-") as scratch:
        store, state = Path(scratch) / "store", Path(scratch) / "state"
        archive(TROUBLED, MODEL, store, {"responseTimeout": 60})
        with serve(
            store,
            models={MODEL: f"{MODEL}.mar"},
            config=SERVER_CONFIG,
            env={"TS_HEALTH_STATE_DIR": str(state)},
        ) as server:
            server.wait_until_ready(MODEL, timeout=180)
            checkouts = [("this checkout", src)]
            if args.baseline:
                checkouts.append((f"baseline {args.baseline}", args.baseline.resolve()))
            servers = [
                (label, Serve(path, server.inference_url, server.management_url, state))
                for label, path in checkouts
            ]
            try:
                time.sleep(3)  # the first observation
                seen = [Scrapes(label) for label, _ in servers]
                url = f"{server.inference_url}/predictions/{MODEL}"
                with busy(url, seconds, args.phase_seconds) as result:
                    deadline = time.monotonic() + seconds
                    while time.monotonic() < deadline:
                        for (_, one), scrapes in zip(servers, seen):
                            scrape_into(one, scrapes)
                        time.sleep(args.scrape_interval)
                print(f"\n## Series over {args.minutes:g} min of a busy model\n")
                print(
                    f"load: {result['sent']} requests, {result['answered']} answered 2xx, "
                    f"{result['errors']} not; {result['sent'] / max(result['wall'], 1e-9):.0f} "
                    f"requests/s, clients {'/'.join(map(str, PHASES))} by turns"
                )
                print_load("load average after the busy run")
                print(
                    "\n| serve | scrapes | series per scrape | distinct series | new after "
                    "the first scrape | bytes per scrape | scrapes by state | failed |"
                )
                print("|---|---|---|---|---|---|---|---|")
                for scrapes in seen:
                    report(scrapes, args.minutes)
                time.sleep(3)
                first = servers[0][1]
                cost(first, first.process.pid, args.burst_seconds, 2.0)
            finally:
                for _, one in servers:
                    one.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
