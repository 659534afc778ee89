"""What ``ts-health`` imports to start: a Kubernetes exec probe starts it every few seconds.

Each command runs in a fresh interpreter; what it imports beyond the bare interpreter's modules
must leave out the heavy ones and stay within a count. Import sets, not times: the times are
``benchmarks/startup.py``'s (a shared machine would make a timing assertion flaky).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fake_torchserve import FakeTorchServe, running
from tests.support.key_files import write_key_file
from ts_health_handler.record import InitRecord, StateStore, utc_iso

#: Runs the command line in this interpreter, then reports on stderr ``sys.modules`` and every
#: expression ``compile()``d: ``typing`` compiles each string annotation of a ``NamedTuple``
#: or a ``TypedDict``, and the first ``compile()`` of a process costs about 3 ms (it builds
#: the ``ast`` module's types). ``"exec"`` is the import system compiling a module that has
#: no byte-code yet (``PYTHONDONTWRITEBYTECODE``): not counted.
RUN = """\
import builtins, sys
compiled = []
_compile = builtins.compile
def counting(source, filename, mode, *args, **kwargs):
    if mode != "exec":
        compiled.append(str(source))
    return _compile(source, filename, mode, *args, **kwargs)
builtins.compile = counting
from ts_health_handler.cli import main
code = main(sys.argv[1:])
names = sorted(sys.modules)
import json
sys.stderr.write("\\nMODULES " + json.dumps(names) + "\\n")
sys.stderr.write("COMPILED " + json.dumps(compiled) + "\\n")
"""
#: Never imported by ``--help`` nor ``ready``: heavy, or needed by another command only.
NEVER = (
    "_strptime",
    "asyncio",
    "calendar",
    "concurrent.futures",
    "dataclasses",
    "email",
    "http.client",
    "inspect",
    "prometheus_client",
    "ssl",
    "torch",
    "ts",
    "ts_health_handler.handler",
    "ts_health_handler.serve",
    "ts_health_handler.testing",
    "urllib.request",
    "yaml",
)
#: Not imported by ``--help`` either: the client, the records, the JSON and the sockets.
NOT_FOR_HELP = (
    "json",
    "socket",
    "ts_health_handler.monitor._settings",
    "ts_health_handler.probe._commands",
    "ts_health_handler.record",
    "ts_health_handler.torchserve._client",
    "ts_health_handler.torchserve._http",
)
#: Modules beyond the bare interpreter's (CPython 3.11: 46 for --help, 83 for ready; other
#: versions differ a little). Before the start-up work, both imported about 140.
BUDGET = {"help": 55, "ready": 100}


def modules(*args: str) -> set[str]:
    """The modules ``ts-health *args`` imported; asserts that it compiled no expression."""
    done = subprocess.run(
        [sys.executable, "-c", RUN, *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    names, compiled = done.stderr.rsplit("\nMODULES ", 1)[1].split("\nCOMPILED ")
    assert json.loads(compiled) == [], (
        "a module on the probe's path has a NamedTuple (or TypedDict) with string annotations: "
        "write its annotations for run time, without `from __future__ import annotations`"
    )
    return set(json.loads(names))


@pytest.fixture(scope="module")
def bare() -> set[str]:
    code = "import sys; print(' '.join(sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return set(done.stdout.split())


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[FakeTorchServe, Path]]:
    """A READY model with a status document and a record: ``ready`` reads all three."""
    now = time.time()
    state = tmp_path / "state"
    StateStore(state, "m", "1.0", server="s").update(
        lambda previous: InitRecord.started(
            previous,
            model_name="m",
            model_version="1.0",
            now=now,
            worker_pid=42,
            server="s",
            worker_id="9000",
        ).succeeded(now=now, duration_s=0.1, worker_pid=42, worker_id="9000")
    )
    entry = {
        "modelName": "m",
        "modelVersion": "1.0",
        "maxRetryTimeoutInSec": 300,
        "workers": [{"id": "9000", "status": "READY", "pid": 42, "startTime": utc_iso(now - 1)}],
        "jobQueueStatus": {"remainingCapacity": 100, "pendingRequests": 0},
    }
    document = {"status": "ready", "schema_version": 1, "check": {"status": "ok"}}
    with running() as fake:
        fake.on("/models/m", (200, [entry]))
        fake.on("/models/m/1.0?customized=true", (200, [{**entry, "customizedMetadata": document}]))
        yield fake, state


def imported(found: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in found if any(m == n or m.startswith(f"{n}.") for n in names))


def test_help_imports_only_the_parser(bare: set[str]) -> None:
    extra = modules("--help") - bare
    assert imported(extra, NEVER + NOT_FOR_HELP) == []
    assert len(extra) <= BUDGET["help"], (
        f"ts-health --help imports {len(extra)} modules beyond the bare interpreter, over its "
        f"budget of {BUDGET['help']}; import the new ones where they are used: {sorted(extra)}"
    )


def test_ready_imports_what_it_asks_and_judges_with(
    bare: set[str], served: tuple[FakeTorchServe, Path]
) -> None:
    fake, state = served
    extra = modules("ready", "m", "--management-url", fake.url, "--state-dir", str(state)) - bare
    assert fake.asked("customized=true")  # the whole path ran: describe, status, record
    assert "ts_health_handler.record._record" in extra
    assert imported(extra, NEVER) == []
    assert len(extra) <= BUDGET["ready"], (
        f"ts-health ready imports {len(extra)} modules beyond the bare interpreter, over its "
        f"budget of {BUDGET['ready']}; import the new ones where they are used: {sorted(extra)}"
    )


def test_ready_with_a_key_file_reads_its_expiration_times_without_strptime(
    bare: set[str], served: tuple[FakeTorchServe, Path], tmp_path: Path
) -> None:
    # The token-on Deployment's exec probe: the key file's two expiration times are parsed
    # on every run (datetime.strptime would import _strptime and calendar).
    fake, state = served
    keys = write_key_file(tmp_path / "key_file.json", management="right")
    fake.required["/models"] = "Bearer right"
    extra = (
        modules(
            "ready",
            "m",
            "--management-url",
            fake.url,
            "--state-dir",
            str(state),
            "--key-file",
            str(keys),
        )
        - bare
    )
    assert fake.asked("customized=true")
    assert imported(extra, NEVER) == []
