"""``examples/empty_model/serve.sh``: a probe from another shell finds the model's records."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ts_health_handler.testing._runner import _free_ports
from ts_health_handler.testing._runner import _stop as stop_group

pytestmark = pytest.mark.integration

SERVE_SH = Path(__file__).resolve().parents[2] / "examples" / "empty_model" / "serve.sh"


@pytest.mark.own_server
def test_serve_sh_exports_the_state_dir_it_prints(tmp_path: Path) -> None:
    inference, management, metrics, grpc_i, grpc_m = _free_ports(5)
    config = tmp_path / "config.properties"
    source = (SERVE_SH.parent / "config.properties").read_text(encoding="utf-8")
    ports = {"8080": inference, "8081": management, "8082": metrics, "7070": grpc_i}
    ports["7071"] = grpc_m
    config.write_text(re.sub(r"\b(8080|8081|8082|7070|7071)\b", lambda m: str(ports[m[1]]), source))
    work = tmp_path / "work"
    env = {**os.environ, "TS_CONFIG": str(config), "WORK_DIR": str(work)}
    env.pop("TS_HEALTH_STATE_DIR", None)
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            ["bash", str(SERVE_SH)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        probe_env = {k: v for k, v in os.environ.items() if not k.startswith("TS_HEALTH_")}
        urls = [
            "--inference-url",
            f"http://127.0.0.1:{inference}",
            "--management-url",
            f"http://127.0.0.1:{management}",
        ]
        base = [sys.executable, "-m", "ts_health_handler"]
        waited = subprocess.run(
            [*base, "wait", "empty_model", "--timeout", "150", *urls],
            env=probe_env,
            capture_output=True,
            text=True,
            timeout=200,
        )
        assert waited.returncode == 0, waited.stdout + waited.stderr + log.read_text()
        # The hint names the directory; a shell that sets it finds the record.
        hint = next(line for line in log.read_text().splitlines() if "ts-health status" in line)
        state_dir = hint.split("TS_HEALTH_STATE_DIR=", 1)[1].split()[0]
        assert Path(state_dir) == work / "health-state"
        status = subprocess.run(
            [*base, "status", "empty_model", "--json", *urls],
            env={**probe_env, "TS_HEALTH_STATE_DIR": state_dir},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert status.returncode == 0, status.stdout + status.stderr
        (model,) = json.loads(status.stdout)["models"]
        assert model["initialization"]["phase"] == "ready", model
    finally:
        stop_group(process)  # the process group started here: SIGTERM, then SIGKILL
