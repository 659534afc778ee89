"""Demo: serve three example models on a real TorchServe and show their health.

- ``empty_model`` is ready;
- ``failing_model`` cannot initialize (``/ping`` still says Healthy);
- ``troubled_model`` is READY, then one request hangs in it (TorchServe still says READY).


Run through ``bash scripts/demo.sh`` (which sets everything up first), or with the venv's
python: ``.venv/bin/python examples/demo.py``. It archives both example models, starts
TorchServe on free loopback ports in a temporary directory, prints what TorchServe itself
says (``/ping``, worker status) next to what ts-health-handler says (the status document and
``ts-health status``), and stops the server it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ts_health_handler.testing import archive_model, model_config, serve

EXAMPLES = Path(__file__).resolve().parent
FAILURE_WAIT_S = 60.0
#: The troubled model calls a request stuck after this many seconds (the default is 3/4 of
#: responseTimeout, 90 s); its watchdog beats twice a second.
STUCK_AFTER_S = 3


def show(title: str, body: object) -> None:
    print(f"\n== {title}")
    print(body if isinstance(body, str) else json.dumps(body, indent=2))


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="ts-health-demo-"))
    try:
        return demo(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def demo(work: Path) -> int:
    store, state_dir = work / "model_store", work / "state"
    store.mkdir()
    for name in ("empty_model", "failing_model"):
        archive_model(
            EXAMPLES / name / "handler.py",
            name,
            store,
            config_file=EXAMPLES / name / "model-config.yml",
        )
    troubled = EXAMPLES / "troubled_model"
    archive_model(
        troubled / "handler.py",
        "troubled_model",
        store,
        config=model_config(
            troubled / "model-config.yml",
            {"health": {"heartbeat_interval_s": 0.5, "stuck_after_s": STUCK_AFTER_S}},
        ),
    )
    print(f"archived empty_model.mar, failing_model.mar and troubled_model.mar into {store}")

    with serve(store, env={"TS_HEALTH_STATE_DIR": str(state_dir)}) as server:
        print(f"TorchServe pid {server.pid}: {server.inference_url} / {server.management_url}")
        server.register("empty_model.mar")
        server.register("troubled_model.mar")
        server.register("failing_model.mar", synchronous=False)
        # One request that never returns (a deadlock, a stuck kernel), sent in the background.
        hung = threading.Thread(target=_hang, args=(server,), daemon=True)
        hung.start()

        # Wait (bounded) until the failing model has failed at least once.
        deadline = time.monotonic() + FAILURE_WAIT_S
        while time.monotonic() < deadline:
            path = server.init_record_path("failing_model")  # this server's record file
            with contextlib.suppress(OSError, ValueError):
                if json.loads(path.read_text(encoding="utf-8"))["failures"] >= 1:
                    break
            time.sleep(0.5)

        time.sleep(STUCK_AFTER_S + 1.5)  # past the threshold, and one more beat
        show("TorchServe: GET /ping", server.ping())
        for name in ("empty_model", "failing_model", "troubled_model"):
            show(f"TorchServe: workers of {name}", server.worker_statuses(name))
        show(
            "ts-health-handler: GET /models/empty_model?customized=true (customizedMetadata)",
            server.status_document("empty_model"),
        )
        probe = subprocess.run(
            [
                sys.executable,
                "-m",
                "ts_health_handler",
                "status",
                "--inference-url",
                server.inference_url,
                "--management-url",
                server.management_url,
                "--state-dir",
                str(state_dir),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "TS_HEALTH_STATE_DIR": str(state_dir)},
        )
        show(f"ts-health status (exit code {probe.returncode})", probe.stdout + probe.stderr)
        print(
            "\n/ping says Healthy while failing_model cannot start and troubled_model hangs in "
            "a request it calls READY; ts-health says which and why. Stopping TorchServe."
        )
    print("TorchServe stopped.")
    return 0


def _hang(server: Any) -> None:
    with contextlib.suppress(Exception):  # the answer comes when TorchServe stops: an error
        server.infer("troubled_model", "hang", timeout=600)


if __name__ == "__main__":
    sys.exit(main())
