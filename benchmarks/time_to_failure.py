"""Time to a known failure: when ``ts-health status`` names the reason vs when ``/ping`` says 500.

Run: .venv/bin/python benchmarks/time_to_failure.py [--max-retry 60] [--interval 0.5]

``examples/failing_model`` (its ``initialize()`` raises "model-config.yml has no
handler.answer...") is loaded at server start with ``maxRetryTimeoutInSec`` set to
``--max-retry`` (default 60, the value recommended in
``examples/templates/model-config.prod.yml``). From the moment the server is started, two
pollers run side by side until ``/ping`` answers 500 and the probe says ``unhealthy``
(bounded by ``--max-retry`` + 120 s):

- ``ts-health status failing_model --json`` (the real CLI, a fresh process each time) every
  ``--interval`` seconds; the first run whose state is ``failing`` or ``unhealthy`` and whose
  reason carries the handler's message counts;
- ``GET /ping`` every ``--interval`` seconds; the first 500 counts.

Also printed: when the first attempt failed (``first_failure_at`` of the record, on the same
clock) and when the probe first said ``unhealthy``. Target: the probe names the reason near
the first failed attempt; ``/ping`` only after ``maxRetryTimeoutInSec``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from _common import (
    REPO,
    SERVER_CONFIG,
    archive,
    print_load,
    print_machine,
    probe_command,
    probe_env,
    run_timed,
)
from _load import request_once

from ts_health_handler.testing import serve

MODEL = "failing_model"
#: The message examples/failing_model/handler.py raises with.
REASON = "no handler.answer"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--max-retry",
        type=int,
        default=60,
        help="maxRetryTimeoutInSec of the model (default 60, the recommended value)",
    )
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between polls")
    args = parser.parse_args()
    print_machine()
    print(f"maxRetryTimeoutInSec {args.max_retry}, polling every {args.interval:g} s")
    with tempfile.TemporaryDirectory(prefix="bench-failure-") as scratch:
        root = Path(scratch)
        store, state = root / "store", root / "state"
        archive(
            REPO / "examples" / MODEL,
            MODEL,
            store,
            {"maxRetryTimeoutInSec": args.max_retry, "minWorkers": 1, "maxWorkers": 1},
        )
        events = measure(store, state, root, args)
    print_load("load average at end")
    return report(events, args)


def measure(store: Path, state: Path, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    events: dict[str, Any] = {}
    wall0, t0 = time.time(), time.monotonic()

    def now() -> float:
        return time.monotonic() - t0

    with serve(
        store,
        models={MODEL: f"{MODEL}.mar"},
        config=SERVER_CONFIG,
        env={"TS_HEALTH_STATE_DIR": str(state)},
    ) as server:
        events["ping_answers"] = now()
        stop = threading.Event()
        give_up = args.max_retry + 120
        command = [
            *probe_command(),
            "status",
            MODEL,
            "--json",
            "--inference-url",
            server.inference_url,
            "--management-url",
            server.management_url,
            "--state-dir",
            str(state),
        ]
        env = probe_env(root / "pycache")
        probe_runs: list[float] = []

        def poll_probe() -> None:
            # Until the probe says unhealthy (at most 5 s after /ping turned 500).
            while "probe_unhealthy" not in events and now() < give_up:
                if "ping_500" in events and now() > events["ping_500"] + 5:
                    break
                began = now()
                seconds, code, output = run_timed(command, env=env, timeout=30)
                probe_runs.append(seconds)
                try:
                    model = json.loads(output[: output.rindex("}") + 1])["models"][0]
                except (ValueError, KeyError, IndexError):
                    model = {"state": f"exit {code}", "reason": output.strip()[:200]}
                known = model.get("state") in ("failing", "unhealthy") and REASON in str(
                    model.get("reason")
                )
                if known and "probe_reason" not in events:
                    events["probe_reason"] = began + seconds
                    events["probe_reason_line"] = f"{model['state']}: {model['reason']}"
                    record = model.get("initialization") or {}
                    if record.get("first_failure_at"):
                        first = (
                            datetime.fromisoformat(
                                record["first_failure_at"].replace("Z", "+00:00")
                            ).timestamp()
                            - wall0
                        )
                        events["first_failure"] = first
                if model.get("state") == "unhealthy" and "probe_unhealthy" not in events:
                    events["probe_unhealthy"] = began + seconds
                    events["probe_unhealthy_line"] = model.get("reason")
                stop.wait(args.interval)

        def poll_ping() -> None:
            url = f"{server.inference_url}/ping"
            while not stop.is_set() and now() < give_up:
                answer = request_once(url, timeout=5)
                if answer.status == 500 and "ping_500" not in events:
                    events["ping_500"] = now()
                    body = answer.body.decode("utf-8", "replace")
                    events["ping_500_body"] = " ".join(body.split())
                    return
                stop.wait(args.interval)

        threads = [threading.Thread(target=f, daemon=True) for f in (poll_probe, poll_ping)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=give_up + 60)
        stop.set()
        events["attempts"] = _attempts(state)
        events["probe_runs"] = probe_runs
    return events


def _attempts(state: Path) -> int | None:
    # One record file per server run (init.<server>.json); this run's state dir has one.
    try:
        [path] = (state / MODEL / "1.0").glob("init*.json")
        return int(json.loads(path.read_text(encoding="utf-8"))["attempts"])
    except (OSError, ValueError, KeyError):
        return None


def report(events: dict[str, Any], args: argparse.Namespace) -> int:
    def at(key: str) -> str:
        value = events.get(key)
        return "never (within the bound)" if value is None else f"{value:6.1f} s"

    print(f"server start -> /ping answers (TorchServe up):        {at('ping_answers')}")
    print(f"server start -> first initialize() failed (record):   {at('first_failure')}")
    print(f"server start -> ts-health status names the reason:    {at('probe_reason')}")
    print(f"    {events.get('probe_reason_line', '')}")
    print(f"server start -> ts-health status says unhealthy:      {at('probe_unhealthy')}")
    print(f"server start -> /ping answers 500:                    {at('ping_500')}")
    print(f"    {events.get('ping_500_body', '')}")
    runs = sorted(events.get("probe_runs") or [0.0])
    print(
        f"initialize() attempts by then: {events.get('attempts')}; probe runs: {len(runs)}, "
        f"median {runs[len(runs) // 2] * 1000:.0f} ms each"
    )
    probe, ping, first = (events.get(k) for k in ("probe_reason", "ping_500", "first_failure"))
    if probe is None:
        print("ts-health never named the reason: target MISSED")
        return 1
    if first is not None:
        print(f"probe named the reason {probe - first:.1f} s after the first failed attempt")
    if ping is not None:
        print(
            f"/ping turned 500 {ping - probe:.1f} s later than the probe named the reason "
            f"({ping / probe:.1f}x the time); maxRetryTimeoutInSec was {args.max_retry}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
