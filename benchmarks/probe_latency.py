"""Wall time of ``ts-health ready MODEL`` against a running TorchServe, next to ``curl /ping``.

Run against a server of your own::

    .venv/bin/python benchmarks/probe_latency.py --inference-url http://127.0.0.1:8080 \
        --management-url http://127.0.0.1:8081 --model my_model [--key-file key_file.json]

or without URLs, to start a TorchServe with ``examples/empty_model`` for the run (needs Java 17
and torchserve in this environment)::

    .venv/bin/python benchmarks/probe_latency.py

Each command runs ``--runs`` times as a fresh process, interleaved (probe, curl, probe, ...)
after one warm-up each; the figures are medians. The probe is what a Kubernetes exec probe
runs: interpreter start, imports, a describe and a customized describe. Target: under 150 ms.

With ``PYTHONDONTWRITEBYTECODE`` set, every run would compile the package from source; the
measured runs then use a byte-code cache in a temporary directory, as an installed wheel has.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_MS = 150.0


def timed(command: Sequence[str], env: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60
    )
    elapsed = (time.perf_counter() - started) * 1000
    return elapsed, done.returncode


def probe_command() -> list[str]:
    script = Path(sys.executable).parent / "ts-health"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "ts_health_handler"]


@contextlib.contextmanager
def own_server() -> Iterator[tuple[str, str, str, str | None]]:
    """Start TorchServe with the empty example model: (inference, management, model, key)."""
    try:
        from ts_health_handler.testing import archive_model, serve
    except ImportError as exc:  # pragma: no cover - depends on the checkout
        raise SystemExit(
            f"probe_latency: no running server given and cannot start one ({exc}); "
            "pass --inference-url, --management-url and --model"
        ) from None
    example = REPO / "examples" / "empty_model"
    with tempfile.TemporaryDirectory(prefix="probe-latency-") as scratch:
        store = Path(scratch) / "store"
        archive_model(
            example / "handler.py",
            "empty_model",
            store,
            config_file=example / "model-config.yml",
        )
        state = Path(scratch) / "state"
        with serve(
            store,
            models={"empty_model": "empty_model.mar"},
            config={"disable_system_metrics": "true"},
            env={"TS_HEALTH_STATE_DIR": str(state)},
        ) as server:
            server.wait_until_ready("empty_model", timeout=120)
            yield server.inference_url, server.management_url, "empty_model", None


def measure(inference: str, management: str, model: str, key_file: str | None, runs: int) -> int:
    env = dict(os.environ)
    cache_note = ""
    scratch = None
    if env.pop("PYTHONDONTWRITEBYTECODE", None):
        scratch = tempfile.mkdtemp(prefix="probe-latency-pyc-")
        env["PYTHONPYCACHEPREFIX"] = scratch
        cache_note = " (byte-code cache in a temporary directory)"
    probe = [
        *probe_command(),
        "ready",
        model,
        "--inference-url",
        inference,
        "--management-url",
        management,
    ]
    curl = ["curl", "-s", "-o", "/dev/null", "-m", "5", f"{inference}/ping"]
    if key_file:
        probe += ["--key-file", key_file]
        key = json.loads(Path(key_file).read_text(encoding="utf-8"))["inference"]["key"]
        curl += ["-H", f"Authorization: Bearer {key}"]
    have_curl = shutil.which("curl") is not None
    try:
        _, code = timed(probe, env)
        if code != 0:
            failed = subprocess.run(probe, env=env, capture_output=True, text=True, timeout=60)
            print(
                f"probe_latency: `ts-health ready {model}` exits {code}: "
                f"{(failed.stdout + failed.stderr).strip()}",
                file=sys.stderr,
            )
            return 1
        if have_curl:
            timed(curl, env)
        probe_ms: list[float] = []
        curl_ms: list[float] = []
        for _ in range(runs):
            probe_ms.append(timed(probe, env)[0])
            if have_curl:
                curl_ms.append(timed(curl, env)[0])
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    probe_median = statistics.median(probe_ms)
    print(f"runs: {runs} each, interleaved; medians{cache_note}")
    print(f"  ts-health ready {model}: {probe_median:7.1f} ms  (min {min(probe_ms):.1f})")
    if curl_ms:
        curl_median = statistics.median(curl_ms)
        print(f"  curl {inference}/ping: {curl_median:7.1f} ms  (min {min(curl_ms):.1f})")
        print(f"  ratio probe / curl: {probe_median / curl_median:.1f}x")
    else:
        print("  curl not found: no baseline")
    verdict = "ok" if probe_median < TARGET_MS else "ABOVE TARGET"
    print(f"  target: probe under {TARGET_MS:.0f} ms: {verdict}")
    return 0 if probe_median < TARGET_MS else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inference-url")
    parser.add_argument("--management-url")
    parser.add_argument("--model", help="a registered model (default: the first one)")
    parser.add_argument("--key-file", help="TorchServe's key_file.json when tokens are on")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    if args.inference_url and args.management_url:
        model = args.model
        if model is None:
            listed = subprocess.run(
                [
                    *probe_command(),
                    "status",
                    "--json",
                    "--inference-url",
                    args.inference_url,
                    "--management-url",
                    args.management_url,
                    *(["--key-file", args.key_file] if args.key_file else []),
                ],
                capture_output=True,
                text=True,
                timeout=60,
            )
            models = json.loads(listed.stdout).get("models") or []
            if not models:
                print("probe_latency: no model registered; pass --model", file=sys.stderr)
                return 2
            model = models[0]["model"]
        return measure(args.inference_url, args.management_url, model, args.key_file, args.runs)
    with own_server() as (inference, management, model, key_file):
        return measure(inference, management, model, key_file, args.runs)


if __name__ == "__main__":
    sys.exit(main())
