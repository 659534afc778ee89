"""``ts-health serve`` against a real TorchServe 0.12 with token authorization on.

One server holds every scenario (ready, initializing, failing, unhealthy, saturated,
degraded; a model with two versions); ``ts-health serve`` runs as its command line would,
with the key file, a bearer token of its own, and short intervals. Then TorchServe stops.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.support.serve_support import TOKEN, Reply, ServeProcess, eventually
from ts_health_handler.testing import TorchServe

pytestmark = pytest.mark.integration

REASON = "model-config.yml has no handler.answer"
INTERVAL, STALE_AFTER = 0.5, 4.0


def two_versions(build_mar: Callable[..., Path], store: Path) -> tuple[str, str]:
    """``two`` 1.0 (ready, the default: registered first) and 2.0 (initializing)."""
    names = []
    for version, changes in (
        ("1.0", None),
        ("2.0", {"startupTimeout": 600, "health": {"faults": {"initialize_delay_s": 600}}}),
    ):
        mar = build_mar("empty_model", store, name="two", version=version, changes=changes)
        renamed = mar.with_name(f"two-{version}.mar")
        mar.rename(renamed)
        names.append(renamed.name)
    return names[0], names[1]


def state_of(reply: Reply) -> tuple[int, str, bool]:
    body = reply.json()
    return reply.status, body["state"], body["ready"]


@pytest.mark.own_server
def test_every_endpoint_against_a_real_torchserve(
    tmp_path: Path,
    build_mar: Callable[..., Path],
    serve_own: Callable[..., Any],
    serve_process: Callable[..., ServeProcess],
) -> None:
    store, state = tmp_path / "store", tmp_path / "state"
    token_file = tmp_path / "serve-token"
    token_file.write_text(TOKEN + "\n")
    build_mar("empty_model", store, name="ready_m")
    build_mar("empty_model", store, name="idle_m")
    build_mar("failing_model", store, name="failing_m", changes={"maxRetryTimeoutInSec": 600})
    build_mar("degraded_model", store, name="degraded_m")
    build_mar("slow_model", store, name="slow_m")
    first, second = two_versions(build_mar, store)
    with serve_own(store, state_dir=state, token_auth=True) as server:
        assert isinstance(server, TorchServe)
        for mar in ("ready_m.mar", "degraded_m.mar", "slow_m.mar", first):
            server.register(mar)
        server.register(second, synchronous=False)
        server.register("failing_m.mar", synchronous=False)
        server.register("idle_m.mar")
        # Scaled to no workers: unhealthy (the model-config's minWorkers applies at register).
        scaled = server.request(
            "PUT",
            f"{server.management_url}/models/idle_m?min_worker=0&max_worker=0&synchronous=true",
        )
        assert scaled.status < 300, scaled.text
        key_file = server.workdir / "key_file.json"
        app = serve_process(
            [
                "--inference-url",
                server.inference_url,
                "--management-url",
                server.management_url,
                "--key-file",
                str(key_file),
                "--interval",
                str(INTERVAL),
                "--stale-after",
                str(STALE_AFTER),
                "--describe-timeout",
                "1",
                "--auth-token-file",
                str(token_file),
            ],
            {"TS_HEALTH_STATE_DIR": str(state)},
        )
        check_models(app)
        check_status_and_metrics(app, server, key_file, state)
        check_saturated(app, server)
        assert app.get("/live").status == 200
    # TorchServe stopped: liveness fails at the next /ping, readiness within --stale-after.
    live = eventually(lambda: (r := app.get("/live", token=True)).status == 503 and r, 10)
    assert "/ping failed" in live.json()["reason"]
    eventually(lambda: app.get("/ready").status == 503, STALE_AFTER + 5, "ready 503")
    gone = eventually(
        lambda: (r := app.get("/v2/models/ready_m/ready", token=True)).status == 503 and r,
        STALE_AFTER + 5,
        "ready_m unreachable",
    )
    assert gone.json()["state"] == "unreachable"
    code, err = app.stop()
    assert code == 0
    assert err == "ts-health serve: stopped (SIGTERM)\n"


def check_models(app: ServeProcess) -> None:
    eventually(lambda: app.get("/v2/models/ready_m/ready").status == 200, 60, "ready_m")
    failing = eventually(
        lambda: (
            (r := app.get("/v2/models/failing_m/ready", token=True)).json()["state"] == "failing"
            and r
        ),
        120,
        "failing_m failing",
    )
    assert failing.status == 503
    assert REASON in failing.json()["reason"]
    eventually(lambda: app.get("/v2/models/degraded_m/ready").json()["state"] == "degraded", 60)
    assert state_of(app.get("/v2/models/degraded_m/ready")) == (503, "degraded", False)
    assert state_of(app.get("/v2/models/idle_m/ready")) == (503, "unhealthy", False)
    two = eventually(
        lambda: (r := app.get("/v2/models/two/ready", token=True)).status == 200 and r, 30, "two"
    )
    assert state_of(two) == (200, "ready", True), two.json()
    assert state_of(app.get("/v2/models/two/versions/1.0/ready")) == (200, "ready", True)
    assert state_of(app.get("/v2/models/two/versions/2.0/ready")) == (503, "initializing", False)
    assert app.get("/v2/models/two/versions/3.0/ready").status == 404
    assert app.get("/v2/models/nope/ready").status == 404
    # Anonymous callers see states; the reasons need the token.
    anonymous = app.get("/ready")
    assert anonymous.status == 503
    assert "reason" not in json.dumps(anonymous.json())
    ready = app.get("/v2/health/ready", token=True)
    unready = {(u["model"], u["version"]): u for u in ready.json()["unready"]}
    assert {k: u["state"] for k, u in unready.items()} == {
        ("failing_m", "1.0"): "failing",
        ("degraded_m", "1.0"): "degraded",
        ("idle_m", "1.0"): "unhealthy",
        ("two", "2.0"): "initializing",
    }
    assert REASON in unready[("failing_m", "1.0")]["reason"]
    assert app.get("/v2/health/live").json() == {"live": True}
    for path in ("/status", "/metrics", "/"):
        assert app.get(path).status == 401


def check_status_and_metrics(
    app: ServeProcess, server: TorchServe, key_file: Path, state: Path
) -> None:
    served = app.get("/status", token=True).json()
    probe = subprocess.run(
        [
            sys.executable,
            "-m",
            "ts_health_handler",
            "status",
            "--json",
            "--inference-url",
            server.inference_url,
            "--management-url",
            server.management_url,
            "--key-file",
            str(key_file),
            "--state-dir",
            str(state),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    direct = json.loads(probe.stdout)
    assert set(served) == set(direct)
    assert served["server"] == direct["server"]

    def states(document: dict[str, Any]) -> dict[tuple[str, str], str]:
        return {(m["model"], m["version"]): m["state"] for m in document["models"]}

    assert states(served) == states(direct)
    assert [set(m) for m in served["models"]] == [set(m) for m in direct["models"]]
    text = app.get("/metrics", token=True).text
    assert 'ts_health_model_state{model="failing_m",state="failing",version="1.0"} 1.0' in text
    assert 'ts_health_model_ready_workers{model="ready_m",version="1.0"} 1.0' in text
    assert "ts_health_torchserve_up 1.0" in text
    page = app.get("/", token=True)
    assert page.status == 200
    assert REASON in page.text


def check_saturated(app: ServeProcess, server: TorchServe) -> None:
    stop = threading.Event()

    def burst(_: int) -> None:
        while not stop.is_set():
            server.infer("slow_m", b"x", headers={"Content-Type": "text/plain"}, timeout=60)

    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = [pool.submit(burst, i) for i in range(6)]
        try:
            saturated = eventually(
                lambda: (
                    (r := app.get("/v2/models/slow_m/ready", token=True)).json()["state"]
                    == "saturated"
                    and r
                ),
                30,
                "slow_m saturated",
            )
            assert saturated.status == 503
            assert "job queue full" in saturated.json()["reason"]
            # The customized describe of slow_m waits behind inference: the others stay fresh.
            assert app.get("/v2/models/ready_m/ready").status == 200
        finally:
            stop.set()
            for future in futures:
                future.result(timeout=120)
