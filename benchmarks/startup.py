"""Start-up of ``ts-health``: the wall time of a fresh process, as a Kubernetes exec probe pays it.

Three commands run ``--runs`` times each as fresh processes, interleaved (pass, help, ready,
pass, ...) after one warm-up each:

- ``python -c pass``: the interpreter alone, for comparison;
- ``ts-health --help``: parsing only;
- ``ts-health ready MODEL`` against a server this script starts and stops: by default the
  tests' fake TorchServe on loopback (a READY worker, a status document, and a record in the
  state directory, so the describe, the customized describe and the record are all read);
  with ``--real``, a TorchServe serving ``examples/empty_model`` (needs Java 17); with
  ``--token-auth`` as well, its token authorization on and ``ready`` given ``--key-file``.

It prints the median, the quartiles, min and max of each (wall time), the median CPU time of
each process (user + system: on a shared machine it moves less than wall time with the
load), then the modules that cost the most to import for both ``ts-health`` commands
(``-X importtime`` self time, median of ``--importtime-runs`` runs) and how many modules each
imports.

``--instructions`` also counts the instructions of one run of each command under valgrind's
callgrind (``PYTHONHASHSEED=0``): the same count on every run whatever else the machine does,
where the wall time of a command moves by a third between minutes on a shared host. It
needs ``valgrind`` (Debian's package) and takes about 2 s a command.

Byte-code is cached as in an installed wheel (``_common.probe_env``);
``--no-bytecode-cache`` runs with ``PYTHONDONTWRITEBYTECODE=1`` instead, which compiles the
package on every run in a checkout without ``__pycache__`` directories.

    PYTHONPATH=src .venv/bin/python benchmarks/startup.py [--runs 30] [--real [--token-auth]]
        [--baseline SRC]

``--baseline SRC`` also runs both ``ts-health`` commands on other sources (``PYTHONPATH=SRC``,
e.g. ``git archive <commit> src | tar -x -C /tmp/before``), interleaved with the rest: on a
shared machine only interleaved figures compare.

Target: a median of at most 100 ms for ``--help`` and for ``ready``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Final

BENCH: Final = Path(__file__).resolve().parent
REPO: Final = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO))  # for tests.support

from _common import (  # noqa: E402
    HEALTH_MODEL,
    SERVER_CONFIG,
    archive,
    print_load,
    print_machine,
    probe_command,
    probe_env,
)

TARGET_MS: Final = 100.0
#: The fake's model.
MODEL: Final = "m"
TOP: Final = 12


@contextlib.contextmanager
def fake_server(state: Path) -> Iterator[tuple[str, str, str, list[str]]]:
    """The tests' fake TorchServe answering like a served HealthMixin model, with its record."""
    from tests.support.fake_torchserve import running
    from ts_health_handler.record import InitRecord, StateStore, utc_iso

    now = time.time()
    store = StateStore(state, MODEL, "1.0", server="benchmark")
    store.update(
        lambda previous: InitRecord.started(
            previous,
            model_name=MODEL,
            model_version="1.0",
            now=now,
            worker_pid=4242,
            server="benchmark",
            worker_id="9000",
        ).succeeded(now=now + 0.5, duration_s=0.5, worker_pid=4242, worker_id="9000")
    )
    entry = {
        "modelName": MODEL,
        "modelVersion": "1.0",
        "modelUrl": f"{MODEL}.mar",
        "minWorkers": 1,
        "maxWorkers": 1,
        "maxRetryTimeoutInSec": 300,
        "workers": [{"id": "9000", "status": "READY", "pid": 4242, "startTime": utc_iso(now - 1)}],
        "jobQueueStatus": {"remainingCapacity": 100, "pendingRequests": 0},
    }
    document = {
        "status": "ready",
        "schema_version": 1,
        "model": {"name": MODEL, "version": "1.0"},
        "check": {"status": "ok", "result": True, "error": None, "duration_s": 0.001},
    }
    with running() as fake:
        fake.on("/ping", (200, {"status": "Healthy"}))
        fake.on(f"/models/{MODEL}", (200, [entry]))
        fake.on(
            f"/models/{MODEL}/1.0?customized=true",
            (200, [{**entry, "customizedMetadata": document}]),
        )
        yield fake.url, fake.url, MODEL, []


@contextlib.contextmanager
def real_server(
    scratch: Path, state: Path, token_auth: bool = False
) -> Iterator[tuple[str, str, str, list[str]]]:
    """TorchServe serving ``examples/empty_model`` (HealthMixin), started and stopped here;
    with ``token_auth``, ``ts-health`` is given its ``key_file.json``."""
    from ts_health_handler.testing import serve

    store = scratch / "store"
    archive(HEALTH_MODEL, "empty_model", store)
    with serve(
        store,
        models={"empty_model": "empty_model.mar"},
        config=SERVER_CONFIG,
        env={"TS_HEALTH_STATE_DIR": str(state)},
        token_auth=token_auth,
    ) as server:
        server.wait_until_ready("empty_model", timeout=120)
        keys = ["--key-file", str(server.workdir / "key_file.json")] if token_auth else []
        yield server.inference_url, server.management_url, "empty_model", keys


def timed(command: Sequence[str], env: Mapping[str, str]) -> tuple[float, float, int, str]:
    """Run ``command``: (wall ms, CPU ms of the process, exit code, output)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        list(command), env=dict(env), capture_output=True, text=True, timeout=60, check=False
    )
    wall = (time.perf_counter() - started) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
    return wall, cpu, done.returncode, done.stdout + done.stderr


def spread(values: Sequence[float]) -> str:
    if len(values) > 1:
        q1, median, q3 = statistics.quantiles(values, n=4)
    else:
        q1 = median = q3 = values[0]
    return (
        f"median {median:6.1f} ms   quartiles {q1:6.1f} to {q3:6.1f}   "
        f"min {min(values):6.1f}   max {max(values):6.1f}"
    )


def import_costs(
    command: Sequence[str], env: Mapping[str, str], runs: int
) -> tuple[list[tuple[float, str]], int]:
    """The modules ``command`` imports, by median self time (ms), and how many there are."""
    selves: dict[str, list[float]] = {}
    counts: list[int] = []
    for _ in range(runs):
        done = subprocess.run(
            list(command),
            env={**env, "PYTHONPROFILEIMPORTTIME": "1"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        rows = [
            row[len("import time:") :].split("|")
            for row in done.stderr.splitlines()
            if row.startswith("import time:")
        ]
        rows = [row for row in rows if row[0].strip().isdigit()]  # not the header
        counts.append(len(rows))
        for self_us, _, name in rows:
            selves.setdefault(name.strip(), []).append(int(self_us) / 1000)
    ranked = sorted(((statistics.median(v), k) for k, v in selves.items()), reverse=True)
    return ranked, int(statistics.median(counts))


def instructions(command: Sequence[str], env: Mapping[str, str]) -> float:
    """Millions of instructions one run of ``command`` executes (valgrind's callgrind)."""
    with tempfile.NamedTemporaryFile(prefix="callgrind-") as out:
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out.name}", *command],
            env={**env, "PYTHONHASHSEED": "0"},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"startup: valgrind failed on {command[-1]}: {done.stderr[-500:]}")
    return int(found.group(1)) / 1e6


def measure(
    urls: tuple[str, str, str, list[str]],
    state: Path,
    env: Mapping[str, str],
    args: argparse.Namespace,
) -> int:
    inference, management, model, keys = urls
    probe = probe_command()
    connection = ["--inference-url", inference, "--management-url", management, *keys]
    ready = [*probe, "ready", model, *connection, "--state-dir", str(state)]
    # (label, command, environment); the baseline runs the same commands on other sources.
    runs: list[tuple[str, list[str], Mapping[str, str]]] = [
        ("python -c pass", [sys.executable, "-c", "pass"], env)
    ]
    versions = [("", env)]
    if args.baseline:
        versions.append((" (baseline)", {**env, "PYTHONPATH": str(args.baseline)}))
    for suffix, version_env in versions:
        runs.append((f"ts-health --help{suffix}", [*probe, "--help"], version_env))
        runs.append((f"ts-health ready {model}{suffix}", ready, version_env))
    for label, command, run_env in runs:
        _, _, code, output = timed(command, run_env)  # the warm-up; writes the byte-code cache
        if code != 0:
            print(f"startup: `{label}` exits {code}: {output.strip()}", file=sys.stderr)
            return 1
    times: dict[str, list[float]] = {label: [] for label, _, _ in runs}
    cpu: dict[str, list[float]] = {label: [] for label, _, _ in runs}
    for _ in range(args.runs):
        for label, command, run_env in runs:
            wall, used, _, _ = timed(command, run_env)
            times[label].append(wall)
            cpu[label].append(used)
    print(f"runs: {args.runs} each, interleaved; wall time")
    for label, values in times.items():
        print(f"  {label:<36} {spread(values)}")
    print("CPU time of the process (user + system; less sensitive to other load than wall time)")
    for label, values in cpu.items():
        print(f"  {label:<36} median {statistics.median(values):6.1f} ms")
    ours = [label for label, _, _ in runs[1:3]]
    met = all(statistics.median(times[label]) <= TARGET_MS for label in ours)
    print(f"  target: ts-health medians <= {TARGET_MS:.0f} ms: {'met' if met else 'NOT MET'}")
    if args.instructions:
        print("instructions of one run (valgrind --tool=callgrind, PYTHONHASHSEED=0)")
        counts = {label: instructions(command, run_env) for label, command, run_env in runs}
        bare = counts[runs[0][0]]
        for label, counted in counts.items():
            print(f"  {label:<36} {counted:7.1f} million   {counted / bare:4.2f} x python -c pass")
    for label, command, run_env in runs[1:]:
        ranked, count = import_costs(command, run_env, args.importtime_runs)
        total = sum(ms for ms, _ in ranked)
        print(
            f"\n`{label}`: {count} modules imported, {total:.1f} ms of import self time "
            f"(-X importtime, median of {args.importtime_runs} runs); the costliest:"
        )
        for ms, name in ranked[:TOP]:
            print(f"  {ms:6.2f} ms  {name}")
    print_load("\nload average at end")
    return 0 if met else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--importtime-runs", type=int, default=5)
    parser.add_argument("--real", action="store_true", help="a real TorchServe, not the fake")
    parser.add_argument(
        "--token-auth",
        action="store_true",
        help="with --real: TorchServe's token authorization on, ready reads its key file (as "
        "the token-on Deployment's exec probe does)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="SRC",
        help="also run both ts-health commands with PYTHONPATH=SRC (e.g. the src/ of an older "
        "checkout), interleaved with the others",
    )
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="compile the package on every run (PYTHONDONTWRITEBYTECODE=1)",
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count each command's instructions under valgrind (repeatable on a busy machine)",
    )
    args = parser.parse_args(argv)
    if args.instructions and shutil.which("valgrind") is None:
        parser.error("--instructions needs valgrind (apt-get install valgrind)")
    print_machine()
    with tempfile.TemporaryDirectory(prefix="startup-") as scratch:
        env = probe_env(Path(scratch) / "pyc")
        if args.no_bytecode_cache:
            env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
            env.pop("PYTHONPYCACHEPREFIX", None)
        print(f"byte-code: {'compiled on every run' if args.no_bytecode_cache else 'cached'}")
        state = Path(scratch) / "state"
        if args.token_auth and not args.real:
            parser.error("--token-auth needs --real")
        server = (
            real_server(Path(scratch), state, args.token_auth) if args.real else fake_server(state)
        )
        with server as urls:
            shown = "TorchServe 0.12" if args.real else "the fake TorchServe"
            print(f"server: {shown}{', token authorization on' if args.token_auth else ''}")
            return measure(urls, state, env, args)


if __name__ == "__main__":
    sys.exit(main())
