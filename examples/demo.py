"""Demo: serve the empty model and a failing model on a real TorchServe and show their health.

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
import time
from pathlib import Path

from ts_health_handler.testing import archive_model, serve

EXAMPLES = Path(__file__).resolve().parent
FAILURE_WAIT_S = 60.0


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
    print(f"archived empty_model.mar and failing_model.mar into {store}")

    with serve(store, env={"TS_HEALTH_STATE_DIR": str(state_dir)}) as server:
        print(f"TorchServe pid {server.pid}: {server.inference_url} / {server.management_url}")
        server.register("empty_model.mar")
        server.register("failing_model.mar", synchronous=False)

        # Wait (bounded) until the failing model has failed at least once.
        deadline = time.monotonic() + FAILURE_WAIT_S
        while time.monotonic() < deadline:
            path = server.init_record_path("failing_model")  # this server's record file
            with contextlib.suppress(OSError, ValueError):
                if json.loads(path.read_text(encoding="utf-8"))["failures"] >= 1:
                    break
            time.sleep(0.5)

        show("TorchServe: GET /ping", server.ping())
        for name in ("empty_model", "failing_model"):
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
            "\n/ping says Healthy while failing_model cannot start; ts-health says why. "
            "Stopping TorchServe."
        )
    print("TorchServe stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
