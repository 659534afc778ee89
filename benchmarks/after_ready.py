"""The truth after READY, against a real TorchServe and ``examples/troubled_model``.

Run: .venv/bin/python benchmarks/after_ready.py {detect,queue,mixed,all} [--minutes M]
     [--trials N]

``detect``: seconds from a hung request to "not ready", seen by the probe (``ts-health ready
MODEL``, a fresh process started every second) and by ``ts-health serve --interval 1``
(``GET /v2/models/MODEL/ready`` asked every 0.1 s, until it answers 503). Two settings:

- fast: ``health: {heartbeat_interval_s: 0.5, stuck_after_s: 3}``, ``responseTimeout`` 10;
- scaled defaults: the example's defaults (``heartbeat_interval_s`` 2, ``stuck_after_s`` unset,
  so 3/4 of ``responseTimeout``) with ``responseTimeout`` 20 instead of TorchServe's 120: stuck
  after 15 s instead of 90 s, so that a trial takes seconds, not minutes.

Each trial registers the model under a new name (a new registration starts its record over:
the deaths of earlier trials would make it ``unstable``), waits until the watcher says ready,
sends ``hang``, measures, waits until TorchServe kills the worker at ``responseTimeout``, and
unregisters it. Times are from sending ``hang`` to the end of the first probe run (the first
503) that said not ready. The hang comes at a random point of the watcher's 1-s cycle (the
probe loop's first run after it, or serve's next observation, is 0 to 1 s away), so the
spread shows the whole range a watcher that looks every second can give.

``queue``: describes of ours left in a hung worker's job queue after ``--minutes`` (default 5):
``responseTimeout`` 600 (TorchServe does not kill the worker meanwhile), fast health settings,
one ``hang``; then the probe (``ts-health ready MODEL --json`` every second) and, separately
(another model on a fresh server), ``ts-health serve --interval 1 --model MODEL``. TorchServe's
``jobQueueStatus.pendingRequests`` (``GET /models/MODEL``, which does not go through the
worker) is read every 5 s: the hung request is in flight, not pending, so every pending job is
a describe of ours. Target: at most 1.

``mixed``: false alarms in a ``--minutes`` (default 10) run. One server, three models of
``examples/troubled_model`` with their default thresholds (``responseTimeout`` 120, so stuck
after 90 s; heartbeat 2 s): ``fast`` (two clients, a request every 50 ms each; one request in
100 is ``fail``, an input error followed by successes), ``slow`` (one client sending
``sleep:8`` back to back: legitimate 8-s requests) and ``idle`` (no traffic).
``ts-health serve --interval 1`` watches all three; ``/status`` and ``/ready`` are read every
second and ``ts-health status --json`` runs every 10 s. Every state other than ``ready`` and
every ``/ready`` 503 counts as a false alarm. Target: 0.

All traffic goes to 127.0.0.1; every loop is bounded in count and time; the servers and
``ts-health serve`` processes started here are stopped on exit.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
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
    serve_process,
)
from _load import request_once

from ts_health_handler.testing import TorchServe, serve, wait_for

TROUBLED = REPO / "examples" / "troubled_model"
FAST_HEALTH = {"heartbeat_interval_s": 0.5, "stuck_after_s": 3}
DETECT_SETTINGS: dict[str, tuple[dict[str, Any], float]] = {
    "fast": ({"responseTimeout": 10, "health": FAST_HEALTH}, 3.0),
    "scaled defaults": ({"responseTimeout": 20}, 15.0),
}


# -- helpers -----------------------------------------------------------------------------------


@dataclass
class Env:
    server: TorchServe
    cache: Path

    def probe(self, *args: str, timeout: float = 30.0) -> tuple[int, str, float]:
        """Run ``ts-health ARGS`` against the server: (exit code, stdout, seconds)."""
        command = [*probe_command(), *args]
        command += ["--inference-url", self.server.inference_url]
        command += ["--management-url", self.server.management_url]
        command += ["--state-dir", str(self.server.state_dir)]
        started = time.perf_counter()
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=probe_env(self.cache),
        )
        return done.returncode, done.stdout, time.perf_counter() - started

    def pending(self, name: str) -> int:
        entry = self.server.describe(name, timeout=10)[0]
        return int(entry["jobQueueStatus"]["pendingRequests"])


@contextlib.contextmanager
def torchserve(prefix: str) -> Iterator[Env]:
    with tempfile.TemporaryDirectory(prefix=prefix) as scratch:
        root = Path(scratch)
        store = root / "store"
        store.mkdir()
        with serve(
            store,
            config={**SERVER_CONFIG, "default_response_timeout": 120},
            env={"TS_HEALTH_STATE_DIR": str(root / "state")},
        ) as server:
            yield Env(server, root / "pycache")


def register(env: Env, mar: str, name: str) -> None:
    env.server.register(mar, model_name=name, initial_workers=1, synchronous=True)
    env.server.wait_until_ready(name, timeout=180)


def send_in_background(env: Env, name: str, body: str, timeout: float) -> threading.Thread:
    """One request that may hang; its thread ends when TorchServe answers or ``timeout``."""

    def run() -> None:
        with contextlib.suppress(Exception):
            env.server.infer(name, body, timeout=timeout)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def get_json(address: str, path: str) -> tuple[int | None, Any]:
    outcome = request_once(f"http://{address}{path}", timeout=10)
    try:
        body = json.loads(outcome.body) if outcome.body else None
    except ValueError:
        body = outcome.body[:200]
    return outcome.status, body


def every(period: float, deadline: float) -> Iterator[float]:
    """Ticks ``period`` apart (start to start) until ``deadline`` (monotonic); a tick that
    comes late (the previous look took longer) starts at once."""
    tick = time.monotonic()
    while True:
        now = time.monotonic()
        if tick > now:
            time.sleep(tick - now)
            now = time.monotonic()
        if now >= deadline:
            return
        yield now
        tick = max(tick + period, time.monotonic())


def spread(values: list[float]) -> str:
    if not values:
        return "no values"
    return (
        f"min {min(values):.2f}, median {statistics.median(values):.2f}, max {max(values):.2f} s "
        f"({', '.join(f'{v:.2f}' for v in values)})"
    )


# -- detect ------------------------------------------------------------------------------------


def detect(args: argparse.Namespace) -> None:
    print("\n## detect: seconds from `hang` to not ready\n")
    with torchserve("bench-detect-") as env:
        results: dict[tuple[str, str], list[float]] = {}
        states: dict[tuple[str, str], Counter[str]] = {}
        for setting, (changes, stuck_after) in DETECT_SETTINGS.items():
            label = setting.split()[0]
            mar = archive(TROUBLED, f"troubled_{label}", env.server.model_store, changes)
            response_timeout = float(changes["responseTimeout"])
            for watcher in ("probe", "serve"):
                key = (setting, watcher)
                results[key], states[key] = [], Counter()
                for trial in range(1, args.trials + 1):
                    name = f"hang_{label}_{watcher}_{trial}"
                    register(env, mar.name, name)
                    seconds, state = detect_once(
                        env, name, watcher, stuck_after + 30, response_timeout
                    )
                    print(
                        f"  {setting}, {watcher}, trial {trial}: "
                        + (f"{state} after {seconds:.2f} s" if seconds else "never not ready")
                    )
                    if seconds is not None:
                        results[key].append(seconds)
                    states[key][state] += 1
        print()
        print("| setting | stuck after | watcher | seconds to not ready | state |")
        print("|---|---|---|---|---|")
        for (setting, watcher), values in results.items():
            stuck = DETECT_SETTINGS[setting][1]
            print(
                f"| {setting} | {stuck:g} s | {watcher} | {spread(values)} | "
                f"{dict(states[(setting, watcher)])} |"
            )


def detect_once(
    env: Env, name: str, watcher: str, limit: float, response_timeout: float
) -> tuple[float | None, str]:
    """One hang; (seconds to not ready or None, the state said)."""
    with contextlib.ExitStack() as stack:
        address = ""
        if watcher == "serve":
            _, address = stack.enter_context(
                serve_process(
                    env.server.inference_url,
                    env.server.management_url,
                    env.server.state_dir,
                    "--interval",
                    "1",
                    "--model",
                    name,
                )
            )
            path = f"/v2/models/{name}/ready"
            wait_for(lambda: get_json(address, path)[0] == 200, timeout=60, what="serve ready")
            # serve looks every second from its start: hang at a random point of its cycle.
            time.sleep(random.uniform(0.0, 1.0))
        else:
            wait_for(lambda: env.probe("ready", name)[0] == 0, timeout=60, what="probe ready")
        sent = time.monotonic()
        hung = send_in_background(env, name, "hang", timeout=response_timeout + 60)
        found: tuple[float | None, str] = (None, "ready")
        deadline = sent + limit
        if watcher == "probe":
            # A probe loop runs on its own clock: its first run after the hang comes at a
            # random point of its 1-s period.
            time.sleep(random.uniform(0.0, 1.0))
        if watcher == "serve":
            for _ in every(0.1, deadline):
                status, body = get_json(address, f"/v2/models/{name}/ready")
                if status != 200:
                    state = body.get("state") if isinstance(body, dict) else body
                    found = (time.monotonic() - sent, f"{status} {state}")
                    break
        else:
            for _ in every(1.0, deadline):
                code, out, _ = env.probe("ready", name)
                if code != 0:
                    found = (time.monotonic() - sent, out.split(":", 1)[0])
                    break
        # TorchServe kills the worker at responseTimeout; then the name is unregistered.
        hung.join(timeout=response_timeout + 90)
    env.server.unregister(name, check=False)
    return found


# -- queue -------------------------------------------------------------------------------------


def queue(args: argparse.Namespace) -> None:
    minutes = args.minutes if args.minutes is not None else 5.0
    print(f"\n## queue: describes of ours left behind a hung request after {minutes:g} min\n")
    rows = []
    for watcher in ("probe", "serve"):
        with torchserve(f"bench-queue-{watcher}-") as env:
            changes = {"responseTimeout": 600, "health": FAST_HEALTH}
            mar = archive(TROUBLED, "troubled_long", env.server.model_store, changes)
            name = f"queue_{watcher}"
            register(env, mar.name, name)
            rows.append(queue_once(env, name, watcher, minutes))
    print()
    print("| watcher | looks | describes sent (not held) | pending: max, at the end | states |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(row)


def queue_once(env: Env, name: str, watcher: str, minutes: float) -> str:
    before = env.pending(name)
    sent = time.monotonic()
    # In flight until the server stops (responseTimeout 600 is past the run).
    send_in_background(env, name, "hang", timeout=minutes * 60 + 120)
    time.sleep(1.0)
    in_flight = env.pending(name)
    print(f"  {watcher}: pending before the hang {before}, 1 s after it {in_flight}")
    deadline = sent + minutes * 60
    pending: list[tuple[float, int]] = []
    states: Counter[str] = Counter()
    held: Counter[str] = Counter()
    looks = 0
    last_pending = 0.0

    def read_pending() -> None:
        count = env.pending(name)
        pending.append((time.monotonic() - sent, count))
        if count != (pending[-2][1] if len(pending) > 1 else in_flight):
            print(f"  {watcher}: {pending[-1][0]:6.1f} s pending {count}")

    with contextlib.ExitStack() as stack:
        if watcher == "serve":
            _, address = stack.enter_context(
                serve_process(
                    env.server.inference_url,
                    env.server.management_url,
                    env.server.state_dir,
                    "--interval",
                    "1",
                    "--model",
                    name,
                )
            )
        for now in every(1.0, deadline):
            if watcher == "probe":
                code, out, _ = env.probe("ready", name, "--json")
                looks += 1
                try:
                    model = json.loads(out)["model"]
                    states[model["state"]] += 1
                    held[_status_note(model)] += 1
                except (ValueError, KeyError, TypeError):
                    states[f"exit {code}"] += 1
            else:
                status, body = get_json(address, "/status")
                looks += 1
                try:
                    model = body["models"][0]
                    states[model["state"]] += 1
                    held[_status_note(model)] += 1
                except (KeyError, IndexError, TypeError):
                    states[f"/status {status}, no observation yet"] += 1
            if now - last_pending >= 5.0:
                last_pending = now
                read_pending()
        read_pending()
    final = pending[-1][1]
    peak = max(count for _, count in pending)
    print(f"  {watcher}: after {minutes:g} min pending {final} (max {peak}); states {dict(states)}")
    print(f"  {watcher}: what the looks said about the describe: {dict(held)}")
    verdict = "met" if final <= 1 and peak <= 1 else "MISSED"
    looks_note = (
        f"{looks} ({'probe runs' if watcher == 'probe' else '/status reads; serve asks every 1 s'})"
    )
    sent_count = sum(n for note, n in held.items() if not note.startswith("not asked"))
    return (
        f"| {watcher} | {looks_note} | {sent_count} | {peak}, **{final}** (target <= 1: "
        f"{verdict}) | {dict(states)} |"
    )


def _status_note(model: dict[str, Any]) -> str:
    """``not asked: ...`` (held), ``answered`` or the describe's error, shortened."""
    error = model.get("status_error")
    if model.get("status") is not None:
        return "answered"
    if not error:
        return "no status"
    text = str(error)
    return text.split(":", 1)[0] + ": " + text.split(":", 1)[1].split("(", 1)[0].strip()[:60]


# -- mixed -------------------------------------------------------------------------------------


@dataclass
class Stream:
    """One client: a request every ``period`` seconds (start to start) until stopped."""

    env: Env
    name: str
    body: Callable[[int], str]
    period: float
    limit: int
    timeout: float
    statuses: Counter[str] = field(default_factory=Counter)
    sent: int = 0

    def run(self, stop: threading.Event, deadline: float) -> None:
        url = f"{self.env.server.inference_url}/predictions/{self.name}"
        tick = time.monotonic()
        while not stop.is_set() and self.sent < self.limit and time.monotonic() < deadline:
            body = self.body(self.sent).encode()
            outcome = request_once(url, method="POST", body=body, timeout=self.timeout)
            self.sent += 1
            key = str(outcome.status) if outcome.status is not None else str(outcome.error)
            if body == b"fail":
                key += " (fail)"
            self.statuses[key] += 1
            tick += self.period
            wait = tick - time.monotonic()
            if wait > 0:
                stop.wait(wait)
            else:
                tick = time.monotonic()


def one_in_100_fails(client: int) -> Callable[[int], str]:
    """The body of each request ``i`` of fast client ``client``: every 100th is ``fail``, each
    client's at a different ``i``."""
    return lambda i: "fail" if (i + 50 * client) % 100 == 99 else "hello"


def mixed(args: argparse.Namespace) -> None:
    minutes = args.minutes if args.minutes is not None else 10.0
    print(f"\n## mixed: false alarms over {minutes:g} min\n")
    with torchserve("bench-mixed-") as env:
        mar = archive(TROUBLED, "troubled", env.server.model_store)
        for name in ("fast", "slow", "idle"):
            register(env, mar.name, name)
        with serve_process(
            env.server.inference_url,
            env.server.management_url,
            env.server.state_dir,
            "--interval",
            "1",
        ) as (_, address):
            wait_for(lambda: get_json(address, "/ready")[0] == 200, timeout=60, what="ready")
            seconds = minutes * 60
            per_second = 20
            streams = [
                Stream(
                    env,
                    "fast",
                    one_in_100_fails(c),
                    1 / per_second,
                    int(seconds * per_second) + 10,
                    30,
                )
                for c in range(2)
            ]
            streams.append(Stream(env, "slow", lambda i: "sleep:8", 0.0, int(seconds / 8) + 2, 60))
            stop = threading.Event()
            started = time.monotonic()
            deadline = started + seconds
            threads = [
                threading.Thread(target=s.run, args=(stop, deadline), daemon=True) for s in streams
            ]
            for thread in threads:
                thread.start()
            alarms: list[str] = []
            seen: Counter[str] = Counter()
            looks = Counter[str]()
            last_probe = 0.0
            try:
                for now in every(1.0, deadline):
                    at = now - started
                    status, body = get_json(address, "/status")
                    looks["/status"] += 1
                    for model in (body or {}).get("models", []) if status == 200 else []:
                        seen[f"{model['model']} {model['state']}"] += 1
                        if model["state"] != "ready":
                            alarms.append(f"{at:6.1f} s /status {model['model']}: {model}")
                    if status != 200:
                        alarms.append(f"{at:6.1f} s /status answered {status}: {body}")
                    ready, body = get_json(address, "/ready")
                    looks["/ready"] += 1
                    if ready != 200:
                        alarms.append(f"{at:6.1f} s /ready {ready}: {body}")
                    if now - last_probe >= 10.0:
                        last_probe = now
                        code, out, _ = env.probe("status", "--json")
                        looks["probe"] += 1
                        try:
                            for model in json.loads(out)["models"]:
                                seen[f"probe {model['model']} {model['state']}"] += 1
                                if model["state"] != "ready":
                                    alarms.append(f"{at:6.1f} s probe {model['model']}: {model}")
                        except (ValueError, KeyError, TypeError):
                            alarms.append(f"{at:6.1f} s probe exit {code}: {out[:300]}")
            finally:
                stop.set()
                for thread in threads:
                    thread.join(timeout=90)
            elapsed = time.monotonic() - started
    print(f"ran {elapsed:.0f} s; looks: {dict(looks)}")
    for stream in streams:
        print(f"  traffic {stream.name}: sent {stream.sent}, answers {dict(stream.statuses)}")
    print(f"  states seen: {dict(sorted(seen.items()))}")
    print(f"false alarms: **{len(alarms)}** (target 0: {'met' if not alarms else 'MISSED'})")
    for alarm in alarms[:20]:
        print(f"  {alarm[:1500]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("part", choices=["detect", "queue", "mixed", "all"])
    parser.add_argument(
        "--minutes", type=float, default=None, help="queue: 5, mixed: 10 (the default)"
    )
    parser.add_argument("--trials", type=int, default=5, help="detect: hangs per watcher")
    args = parser.parse_args()
    print_machine()
    parts = ["detect", "queue", "mixed"] if args.part == "all" else [args.part]
    for part in parts:
        {"detect": detect, "queue": queue, "mixed": mixed}[part](args)
        print_load(f"load average after {part}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
