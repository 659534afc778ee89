"""A model's whole life on a real TorchServe: re-registration, restarts, two servers sharing a
state directory, the CPU launcher, versions, several workers, hostile exceptions.

A record belongs to one registration of one server (docs/status.md, "Identity"); the probe
must never take another registration's failure for the current state.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.support.probe_cli import SCRIPT, ts_health
from ts_health_handler.record import StateStore, read_record
from ts_health_handler.testing import TorchServe, archive_model, serve, wait_for

pytestmark = pytest.mark.integration

REASON = "model-config.yml has no handler.answer"
#: examples/failing_model starts with this: the fixed build.
FIXED: Mapping[str, Any] = {"handler": {"answer": 42}}
#: A slow start, so that "while the fixed build loads" lasts long enough to look at.
SLOW_START: Mapping[str, Any] = {"health": {"faults": {"initialize_delay_s": 6}}}
CONFIG = {"disable_system_metrics": "true"}


@contextlib.contextmanager
def server_at(
    tmp_path: Path, label: str, store: Path, state: Path, **config: str
) -> Iterator[TorchServe]:
    # TorchServe checks and runs the CPU launcher as `python -m torch.backends.xeon.run_cpu`:
    # the `python` on PATH must be this environment's, as it is in TorchServe's images.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    with serve(
        store,
        config={**CONFIG, **config},
        env={"TS_HEALTH_STATE_DIR": str(state), "PATH": path},
        workdir=tmp_path / label,
    ) as server:
        yield server


def records(state: Path, name: str, version: str = "1.0") -> list[Any]:
    found = []
    for path in StateStore(state, name, version).files():
        with contextlib.suppress(Exception):
            found.append(read_record(path))
    return [r for r in found if r is not None]


def failures_recorded(state: Path, name: str, count: int) -> Callable[[], bool]:
    return lambda: any(r.consecutive_failures >= count for r in records(state, name))


def model_json(server: TorchServe, state: Path, *args: str) -> dict[str, Any]:
    done = ts_health(server, "status", *args, "--json", state_dir=state)
    return json.loads(done.stdout)["models"][0]


@pytest.mark.own_server
def test_a_fixed_build_registered_over_a_broken_one_loads_without_its_history(
    tmp_path: Path, build_mar: Callable[..., Path]
) -> None:
    store, state = tmp_path / "store", tmp_path / "state"
    broken = build_mar("failing_model", store, name="life", changes={"maxRetryTimeoutInSec": 1})
    with server_at(tmp_path, "server", store, state) as server:
        server.register(broken.name, synchronous=False)
        wait_for(failures_recorded(state, "life", 2), timeout=60, what="two failures")
        assert model_json(server, state, "life")["state"] == "unhealthy"

        server.unregister("life")
        build_mar("failing_model", store, name="life", changes={**FIXED, **SLOW_START})
        server.register("life.mar", synchronous=False)
        wait_for(lambda: server.describe("life")[0]["workers"], timeout=30, what="a worker")

        # While the fixed build loads: initializing, the broken build's failure as history.
        model = model_json(server, state, "life")
        assert model["state"] == "initializing", model
        previous = model["previous_initialization"] or model["initialization"]["previous"]
        assert REASON in previous["last_error"]["message"]
        # wait never gives up on another registration's failure.
        done = ts_health(server, "wait", "life", "--timeout", "90", state_dir=state)
        assert done.returncode == 0, done
        record = model_json(server, state, "life")["initialization"]
        assert (record["attempts"], record["failures"]) == (1, 0)
        assert record["previous"]["failures"] >= 2


@pytest.mark.own_server
def test_a_restart_on_the_same_state_dir_starts_as_initializing(
    tmp_path: Path, build_mar: Callable[..., Path]
) -> None:
    store, state = tmp_path / "store", tmp_path / "state"
    build_mar("failing_model", store, name="again", changes={"maxRetryTimeoutInSec": 1})
    with server_at(tmp_path, "first", store, state) as first:
        first.register("again.mar", synchronous=False)
        wait_for(failures_recorded(state, "again", 2), timeout=60, what="two failures")
    build_mar("failing_model", store, name="again", changes={**FIXED, **SLOW_START})
    with server_at(tmp_path, "second", store, state) as second:
        second.register("again.mar", synchronous=False)
        wait_for(lambda: second.describe("again")[0]["workers"], timeout=30, what="a worker")
        model = model_json(second, state, "again")
        assert model["state"] == "initializing", model
        done = ts_health(second, "wait", "again", "--timeout", "90", state_dir=state)
        assert done.returncode == 0, done
    assert len(StateStore(state, "again", "1.0").files()) == 2  # one file per server run


@pytest.mark.own_server
def test_two_servers_sharing_a_state_dir_never_mix_records(
    tmp_path: Path, build_mar: Callable[..., Path]
) -> None:
    state = tmp_path / "state"
    broken_store, fixed_store = tmp_path / "broken", tmp_path / "fixed"
    build_mar("failing_model", broken_store, name="twin")
    build_mar("failing_model", fixed_store, name="twin", changes=FIXED)
    with contextlib.ExitStack() as stack:
        broken = stack.enter_context(server_at(tmp_path, "a", broken_store, state))
        fixed = stack.enter_context(server_at(tmp_path, "b", fixed_store, state))
        broken.register("twin.mar", synchronous=False)
        fixed.register("twin.mar", synchronous=True)
        wait_for(failures_recorded(state, "twin", 3), timeout=60, what="three failures")
        good = ts_health(fixed, "ready", "twin", state_dir=state)
        assert good.returncode == 0, good
        bad = ts_health(broken, "ready", "twin", state_dir=state)
        assert bad.returncode == 1, bad
        assert bad.stdout.startswith("failing: model twin 1.0: initialization failed"), bad
        assert REASON in bad.stdout
        by_phase = sorted((r.phase.value, r.attempts) for r in records(state, "twin"))
        assert by_phase[0] == ("failed", by_phase[0][1])
        assert by_phase[1] == ("ready", 1)  # the healthy server's one attempt, never reset


@pytest.mark.own_server
def test_the_cpu_launcher_counts_attempts_like_the_default_launcher(
    tmp_path: Path, build_mar: Callable[..., Path]
) -> None:
    store, state = tmp_path / "store", tmp_path / "state"
    build_mar("failing_model", store, name="pinned")
    with server_at(tmp_path, "server", store, state, cpu_launcher_enable="true") as server:
        server.register("pinned.mar", synchronous=False)
        wait_for(failures_recorded(state, "pinned", 3), timeout=90, what="three failures")
        [record] = records(state, "pinned")
        [run] = record.workers
        assert run.attempts == record.attempts >= 3
        assert {e.type for e in record.recent_errors} == {"ts_health_handler.InitializationError"}
        done = ts_health(server, "ready", "pinned", state_dir=state)
        assert done.returncode == 1, done
        assert "times in a row" in done.stdout, done
        assert REASON in done.stdout
        # The launcher really ran each attempt (it pins the worker with taskset).
        assert "run_cpu is not available" not in server.log_tail(lines=2000)
        assert "taskset" in server.log_tail("model_log.log", 2000)


# -- on the shared server ----------------------------------------------------------------


def handler_file(directory: Path, body: str, check: str | None = None) -> Path:
    """A handler module whose ``initialize()`` runs ``body`` and whose ``health_check()`` (when
    given) runs ``check`` (one class, as TorchServe wants)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "handler.py"
    health_check = ""
    if check is not None:
        health_check = "\n    def health_check(self):\n" + textwrap.indent(
            textwrap.dedent(check), " " * 8
        )
    path.write_text(
        "from ts.torch_handler.base_handler import BaseHandler\n"
        "from ts_health_handler import HealthMixin\n\n\n"
        "class Handler(HealthMixin, BaseHandler):\n"
        "    def initialize(self, context):\n"
        + textwrap.indent(textwrap.dedent(body), " " * 8)
        + "\n        self.initialized = True\n\n"
        "    def handle(self, data, context):\n"
        "        return [{'ok': True} for _ in data]\n" + health_check + "\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def own_model(
    shared_server: TorchServe, shared_store: Path, tmp_path: Path
) -> Iterator[Callable[..., str]]:
    """``own_model(name, body, config=None, workers=1, check=None)``: registered (not waited
    for), unregistered after."""
    names: list[str] = []

    def register(
        name: str,
        body: str,
        config: Mapping[str, Any] | None = None,
        workers: int = 1,
        check: str | None = None,
    ) -> str:
        handler = handler_file(tmp_path / name, body, check)
        settings = {"minWorkers": workers, "maxWorkers": workers, **(config or {})}
        mar = archive_model(handler, name, shared_store, config=settings)
        shared_server.register(mar.name, initial_workers=workers, synchronous=False)
        names.append(name)
        return name

    yield register
    for name in names:
        shared_server.unregister(name, check=False)


def test_every_version_is_listed_and_any_unready_one_fails_status(
    shared_server: TorchServe, shared_store: Path, shared_state_dir: Path, build_mar: Any
) -> None:
    build_mar("empty_model", shared_store, name="ver", version="1.0")
    shared_server.register("ver.mar", synchronous=True)
    try:
        build_mar("failing_model", shared_store, name="ver", version="2.0")
        shared_server.register("ver.mar", synchronous=False)
        wait_for(
            lambda: any(r.failures for r in records(shared_state_dir, "ver", "2.0")),
            timeout=60,
            what="2.0 failing",
        )
        done = ts_health(shared_server, "status", "ver", state_dir=shared_state_dir)
        assert done.returncode == 1, done
        rows = [line.split()[:4] for line in done.stdout.splitlines()[2:]]
        assert rows[0] == ["ver", "1.0", "(default)", "ready"], done.stdout
        assert rows[1][:3] == ["ver", "2.0", "failing"], done.stdout
        assert REASON in done.stdout
        ready = ts_health(shared_server, "ready", "ver", state_dir=shared_state_dir)
        assert ready.returncode == 0, ready  # ready MODEL: the default version
    finally:
        shared_server.unregister("ver", version="2.0", check=False)
        shared_server.unregister("ver", version="1.0", check=False)


def test_two_workers_one_failing_says_why(
    own_model: Callable[..., str], shared_server: TorchServe, shared_state_dir: Path
) -> None:
    # Each worker is a thread with its own id (port): fail on every other one.
    name = own_model(
        "halves",
        """
        import sys
        from ts_health_handler.handler._identity import worker_id
        if int(worker_id(sys.argv) or 0) % 2:
            raise KeyError("shard-b weights")
        """,
        workers=2,
    )
    wait_for(
        lambda: any(r.failures for r in records(shared_state_dir, name)),
        timeout=60,
        what="one failure",
    )
    shared_server.wait_until_ready(name, timeout=60)
    done = ts_health(shared_server, "status", name, state_dir=shared_state_dir)
    row = done.stdout.splitlines()[2]
    assert row.split()[2:4] == ["ready", "1/2"], done.stdout
    assert "other worker failing: KeyError: 'shard-b weights'" in row, done.stdout


def test_scaling_up_and_down_while_failing_keeps_the_failures(
    own_model: Callable[..., str], shared_server: TorchServe, shared_state_dir: Path
) -> None:
    name = own_model("rescaled", 'raise KeyError("sharded weights missing")', workers=1)
    wait_for(failures_recorded(shared_state_dir, name, 1), timeout=60, what="one failure")
    for workers in (2, 1):
        answer = shared_server.scale_workers(name, workers, workers, synchronous=False)
        assert answer.status == 202, answer
        wait_for(
            lambda n=workers: len(shared_server.describe(name)[0]["workers"]) == n,
            timeout=60,
            what=f"{workers} worker threads",
        )
        if workers == 2:  # the new thread's first attempt has failed too
            wait_for(
                lambda: any(len(r.workers) == 2 and all(w.failures for w in r.workers)
                            for r in records(shared_state_dir, name)),
                timeout=60,
                what="both threads failed",
            )  # fmt: skip
    model = model_json(shared_server, shared_state_dir, name)
    assert model["state"] in ("failing", "unhealthy"), model
    assert "sharded weights missing" in model["reason"], model
    assert model["initialization"]["failures"] >= 1, model
    assert "no initialization record" not in model["reason"]


def test_system_exit_in_initialize_is_the_recorded_cause(
    own_model: Callable[..., str], shared_state_dir: Path, shared_server: TorchServe
) -> None:
    name = own_model("quits", 'raise SystemExit("no GPU visible to this worker")')
    wait_for(
        lambda: any(r.failures for r in records(shared_state_dir, name)),
        timeout=60,
        what="a recorded exit",
    )
    [record] = records(shared_state_dir, name)
    assert record.last_error is not None
    assert (record.last_error.type, record.last_error.message) == (
        "SystemExit",
        "no GPU visible to this worker",
    )
    done = ts_health(shared_server, "ready", name, state_dir=shared_state_dir)
    assert done.returncode == 1, done
    assert "SystemExit: no GPU visible to this worker" in done.stdout, done
    assert "WorkerDied" not in done.stdout


def test_hostile_exception_text_on_a_strict_utf8_stdout(
    own_model: Callable[..., str], shared_state_dir: Path, shared_server: TorchServe, tmp_path: Path
) -> None:
    log = tmp_path / "termination-log"
    name = own_model(
        "hostile",
        r"""
        bad = b"\xff\xfe".decode("utf-8", "surrogateescape")
        raise ValueError(
            "boom \x1b[2J\x1b]0;pwned\x07 \x9b31m \u202eevil " + bad + " " + "x" * 1_000_000
            + " THE END"
        )
        """,
        config={"health": {"termination_log": str(log)}},
    )
    wait_for(
        lambda: any(r.failures for r in records(shared_state_dir, name)),
        timeout=60,
        what="a recorded failure",
    )
    env = {
        **os.environ,
        "PYTHONIOENCODING": "utf-8:strict",
        "LC_ALL": "C",
        "TS_HEALTH_INFERENCE_URL": shared_server.inference_url,
        "TS_HEALTH_MANAGEMENT_URL": shared_server.management_url,
        "TS_HEALTH_STATE_DIR": str(shared_state_dir),
    }
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "ts_health_handler"]
    for args in (["ready", name], ["status", name], ["ready", name, "--json"]):
        done = subprocess.run([*command, *args], env=env, capture_output=True, timeout=120)
        assert done.returncode == 1, done
        text = done.stdout.decode("utf-8")  # strict
        for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
            assert raw not in text
        assert b"Traceback" not in done.stderr
        if "--json" not in args:
            # Head and tail of the million-character message, the cut between them.
            assert "boom \\x1b[2J\\x1b]0;pwned\\x07" in text, text[:400]
            assert "THE END" in text, text[-400:]
    written = log.read_bytes()
    assert 0 < len(written) <= 4096
    message = written.decode("utf-8")  # strict: valid UTF-8
    assert "boom" in message
    assert message.endswith("THE END")


def test_a_hanging_health_check_makes_a_fresh_worker_degraded_with_default_timeouts(
    own_model: Callable[..., str], shared_server: TorchServe, shared_state_dir: Path
) -> None:
    # Default check_timeout_s (1 s) and default --describe-timeout (2 s): the probe hears
    # the check's verdict instead of giving up first and calling the model ready.
    name = own_model("hangs", "pass", check="import time\ntime.sleep(60)\nreturn True")
    shared_server.wait_until_ready(name, timeout=60)
    done = ts_health(shared_server, "ready", name, state_dir=shared_state_dir)
    assert done.returncode == 1, done
    assert done.stdout.startswith(f"degraded: model {name} 1.0: health check timeout"), done


def test_records_are_readable_by_other_users(
    own_model: Callable[..., str], shared_state_dir: Path
) -> None:
    name = own_model("shared_read", "pass")
    wait_for(lambda: records(shared_state_dir, name), timeout=60, what="a record")
    [path] = StateStore(shared_state_dir, name, "1.0").files()
    assert path.stat().st_mode & 0o777 == 0o644
