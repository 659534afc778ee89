"""``examples/kubernetes/deployment*.yaml`` on a simulated kubelet (``tests/kubelet.py``).

No cluster here: each scenario runs one pod of the manifest users copy, with its own
``config.properties`` and environment, against a real TorchServe; the container's entrypoint
runs as PID 1 of a new PID namespace; the startup, readiness and liveness probes run on the
kubelet's schedule with the manifest's own parameters. Each scenario prints its timeline
(``pytest -s``); docs/kubernetes.md shows them. Timings are observed, never asserted, except
the grace period a stop must stay within (that is the kubelet's rule, not a goal).
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.support.dockerfile import instructions, one
from tests.support.example_archive import archive_example
from tests.support.kubelet import Image, Pod, running
from ts_health_handler.testing import wait_for
from ts_health_handler.torchserve._answers import parse_instant

# Each scenario starts a TorchServe of its own: before the shared server (conftest.py).
pytestmark = [pytest.mark.integration, pytest.mark.own_server]

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "examples" / "kubernetes"
MODEL = "my_model"  # what the manifests load


@pytest.fixture(scope="module", autouse=True)
def _pid_namespaces() -> None:
    try:
        done = subprocess.run(
            ["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, timeout=30
        )
    except OSError as exc:
        pytest.skip(f"unshare (util-linux) not available: {exc}")
    if done.returncode != 0:
        pytest.skip(f"cannot make a PID namespace here (root needed): {done.stderr!r}")


def torchserve_image(store: Path) -> Image:
    """The Dockerfile's image, as the simulation needs it: its ENTRYPOINT and CMD, and the
    files its COPY lines add (the wheel's RUN is this checkout, installed in the venv that
    the pod's PATH points to)."""
    steps = instructions(KUBERNETES / "Dockerfile")
    files: dict[str, Path] = {}
    for step in steps:
        if step.keyword != "COPY":
            continue
        _, sources, destination = step.copy_parts()
        for source in sources:
            name = source.rstrip("/")
            if name == "model-store":
                files[destination.rstrip("/")] = store
            elif name != "dist":
                files[destination] = KUBERNETES / name
    return Image(
        entrypoint=tuple(one(steps, "ENTRYPOINT").exec_form),
        cmd=tuple(one(steps, "CMD").exec_form),
        files=files,
    )


def make_pod(
    manifest: str,
    example: str,
    tmp_path: Path,
    *,
    model_changes: Mapping[str, Any] | None = None,
    config_changes: Mapping[str, str] | None = None,
) -> Pod:
    store = tmp_path / "model-store"
    archive_example(example, store, name=MODEL, changes=model_changes)
    path = KUBERNETES / manifest
    image = next(
        c["image"]
        for c in _deployment(path)["spec"]["template"]["spec"]["containers"]
        if c["name"] == "torchserve"
    )
    notes = [f"{manifest}, model {MODEL} = examples/{example}"]
    for key, value in (model_changes or {}).items():
        notes.append(f"test override: model-config.yml {key}: {value}")
    return Pod(
        path,
        images={image: torchserve_image(store)},
        bin_dirs=[Path(sys.executable).parent],
        config_changes={"my-model-torchserve": config_changes} if config_changes else None,
        notes=notes,
    )


def _deployment(path: Path) -> dict[str, Any]:
    import yaml

    return next(d for d in yaml.safe_load_all(path.read_text()) if d and d["kind"] == "Deployment")


def health_json(pod: Pod, container: Any, path: str) -> Any:
    """GET ``path`` of the pod's ts-health serve (its ``health`` port), as JSON."""
    port = pod.sandbox.port(container.port_number("health"))
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        return json.loads(connection.getresponse().read())
    finally:
        connection.close()


def show(pod: Pod, title: str) -> None:
    print("\n" + pod.timeline(title))


def test_healthy_pod_becomes_ready_and_stops_gracefully_on_sigterm(tmp_path: Path) -> None:
    pod = make_pod("deployment.yaml", "empty_model", tmp_path)
    with running(pod):
        (container,) = pod.containers
        pod.wait_for(lambda: pod.ready, timeout=120, what="Ready")
        # Readiness asks ts-health serve (started by ts-entrypoint) over HTTP.
        assert pod.seen("torchserve readiness", 'ok   GET /ready 200 { "ready": true')
        assert pod.seen("torchserve startup", "ok   GET /live 200")
        # Pod deletion: SIGTERM to PID 1 (ts-entrypoint), which stops TorchServe.
        ((took, graceful),) = pod.delete()
        show(pod, "healthy, then deleted (SIGTERM to PID 1)")
        assert graceful, f"PID 1 needed SIGKILL after {took:.1f} s"
        assert took < pod.grace
        assert container.restarts == 0
        # ts-entrypoint ran `torchserve --stop`: SIGTERM to the Java frontend (whose shutdown
        # hook stops the workers), then waited for it; nothing needed SIGKILL.
        log = (pod.sandbox.root / "torchserve.log").read_text(errors="replace")
        assert "ts-entrypoint: got SIGTERM: stopping TorchServe" in log
        assert "ts-entrypoint: TorchServe stopped after SIGTERM" in log
        assert "took too long" not in log


def test_broken_model_is_never_ready_and_liveness_restarts_it(tmp_path: Path) -> None:
    pod = make_pod(
        "deployment.yaml",
        "failing_model",
        tmp_path,
        # The production template says 60 s; 10 s keeps CI short and changes nothing else.
        model_changes={"maxRetryTimeoutInSec": 10},
    )
    with running(pod):
        (container,) = pod.containers

        # The health server names the failure (the kubelet's view of the body is clipped).
        def failure_named() -> Any:
            seen = health_json(pod, container, "/v2/models/my_model/ready")
            return seen if "InitializationError" in seen.get("reason", "") else None

        failing = wait_for(failure_named, timeout=60, what="the model's failure on serve")
        assert failing["ready"] is False
        assert failing["state"] in ("failing", "unhealthy")
        pod.wait_for(
            lambda: container.generation >= 2 and container.started,
            timeout=180,
            what="a restart by the liveness probe, and the new container started",
        )
        pod.delete()
        show(pod, "broken model (initialize() always fails)")
        assert container.restarts == 1
        assert pod.seen("torchserve", "liveness probe failed, restarting")
        assert not pod.seen("torchserve", "Ready: added")
        # Startup only waited for the frontend; the model's failure is readiness' news...
        assert pod.seen("torchserve", "started (startup probe succeeded)")
        assert pod.seen("torchserve readiness", "FAIL GET /ready 503")
        # ... until TorchServe's retry window passed and /ping said so.
        assert pod.seen("torchserve liveness", "GET /ping 500")


def test_failing_health_check_keeps_the_pod_ready_and_alive(tmp_path: Path) -> None:
    pod = make_pod("deployment.yaml", "degraded_model", tmp_path)
    with running(pod):
        (container,) = pod.containers
        pod.wait_for(lambda: pod.ready, timeout=120, what="Ready")
        ready_at = time.monotonic() - pod.begin
        # What the health server makes of the model (the kubelet only sees 200 on /ready).
        degraded = health_json(pod, container, "/v2/models/my_model/ready")
        pod.wait_for(
            lambda: len([e for e in pod.seen("torchserve liveness", "ok") if e.at > ready_at]) >= 2,
            timeout=60,
            what="two liveness probes after Ready",
        )
        pod.delete()
        show(pod, "degraded: health_check() fails")
        # Readiness policy: degraded stays in the Service; liveness never minds.
        assert pod.seen("torchserve readiness", 'ok   GET /ready 200 { "ready": true')
        assert degraded["state"] == "degraded", degraded
        assert degraded["ready"] is True, degraded
        assert not pod.seen("torchserve", "not Ready")
        # Before the first Ready a readiness probe may fail while the model loads (a loaded
        # machine); once Ready, none may.
        assert not failed_after_ready(pod)
        assert container.restarts == 0


def failed_after_ready(pod: Any) -> list[Any]:
    """Readiness probes that failed after the pod was first added to the Service."""
    added = pod.seen("torchserve", "Ready: added")
    if not added:
        return pod.seen("torchserve readiness", "FAIL")
    return [e for e in pod.seen("torchserve readiness", "FAIL") if e.at > added[0].at]


def test_token_variant_stays_live_and_ready_past_key_expiry(tmp_path: Path) -> None:
    expiry_min = 0.25
    pod = make_pod(
        "deployment-tokens.yaml",
        "empty_model",
        tmp_path,
        config_changes={"token_expiration_min": str(expiry_min)},
    )
    key_file = pod.sandbox.path("/home/model-server/key_file.json")

    def management_key() -> str | None:
        try:
            return str(json.loads(key_file.read_text())["management"]["key"])
        except (OSError, ValueError, KeyError):
            return None

    def watch_keys(stop: threading.Event) -> None:
        """Put the key file's changes on the timeline (what the kubelet cannot see)."""
        known: dict[str, str] = {}
        expired: set[str] = set()
        while not stop.wait(0.2):
            try:
                keys = json.loads(key_file.read_text())
            except (OSError, ValueError):
                continue
            for kind in ("management", "inference"):
                key, expires = keys[kind]["key"], keys[kind]["expiration time"]
                if known.get(kind) != key:
                    verb = "renewed" if kind in known else "written"
                    pod.record("key_file.json", f"{kind} key {verb}, expires {expires}")
                    known[kind] = key
                    expired.discard(kind)
                if kind not in expired and time.time() >= parse_instant(expires):
                    expired.add(kind)
                    why = " (no probe renews it: clients hold it)" if kind == "inference" else ""
                    pod.record("key_file.json", f"{kind} key expired{why}")

    stop_watching = threading.Event()
    watcher = threading.Thread(target=watch_keys, args=(stop_watching,), daemon=True)
    with running(pod):
        watcher.start()
        (container,) = pod.containers
        pod.wait_for(lambda: pod.ready, timeout=120, what="Ready")
        first = pod.wait_for(management_key, timeout=10, what="key_file.json")
        started = pod.seen("torchserve", "container started")[0].at
        # Two expiry periods of the first keys, and a renewed management key.
        pod.wait_for(
            lambda: (
                time.monotonic() - pod.begin > started + 2.5 * expiry_min * 60
                and management_key() not in (None, first)
            ),
            timeout=120,
            what="two key expiry periods and a renewal",
        )
        stop_watching.set()
        watcher.join(timeout=10)
        pod.delete()
        show(pod, f"tokens on, keys expiring every {expiry_min * 60:g} s")
        assert container.restarts == 0
        assert not pod.seen("torchserve liveness", "FAIL")
        assert not pod.seen("torchserve", "not Ready")
        assert not failed_after_ready(pod)


TOY_SERVER = """
import http.server, sys
host, port = sys.argv[2].rsplit(":", 1)
handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=sys.argv[3])
http.server.ThreadingHTTPServer((host, int(port)), handler).serve_forever()
"""

TOY_MANIFEST = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: toy}
spec:
  selector: {matchLabels: {app: toy}}
  template:
    metadata: {labels: {app: toy}}
    spec:
      terminationGracePeriodSeconds: 3
      containers:
        - name: web
          image: toy
          command: [python3, /app/server.py, --listen, "0.0.0.0:8090", /srv]
          ports: [{name: http, containerPort: 8090}]
          startupProbe: {tcpSocket: {port: http}, periodSeconds: 1, failureThreshold: 20}
          readinessProbe:
            httpGet: {path: /ok.txt, port: 8090}
            periodSeconds: 1
            successThreshold: 2
            failureThreshold: 1
          livenessProbe:
            exec: {command: [test, -f, /srv/alive]}
            initialDelaySeconds: 2
            periodSeconds: 1
            failureThreshold: 2
"""


def test_the_simulator_runs_any_container_with_every_kind_of_probe(tmp_path: Path) -> None:
    """Not TorchServe: a small HTTP server (as a sidecar's would be), with tcpSocket, httpGet
    and exec probes; and what PID 1 without a SIGTERM handler does."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "server.py").write_text(TOY_SERVER)
    (tmp_path / "srv").mkdir()
    (tmp_path / "manifest.yaml").write_text(TOY_MANIFEST)
    pod = Pod(
        tmp_path / "manifest.yaml",
        images={"toy": Image(files={"/app": tmp_path / "app", "/srv": tmp_path / "srv"})},
        bin_dirs=[Path(sys.executable).parent],
    )
    srv = pod.sandbox.path("/srv")
    (srv / "ok.txt").write_text("ok")
    (srv / "alive").write_text("")
    with running(pod):
        (web,) = pod.containers
        pod.wait_for(lambda: pod.ready, timeout=30, what="Ready")
        assert len(pod.seen("web readiness", "ok   GET /ok.txt 200")) >= 2  # successThreshold
        (srv / "ok.txt").unlink()
        pod.wait_for(lambda: not pod.ready, timeout=30, what="not Ready")
        (srv / "alive").unlink()
        pod.wait_for(lambda: web.restarts == 1, timeout=60, what="a liveness restart")
        show(pod, "the simulator itself: a plain HTTP server as PID 1")
    assert pod.seen("web startup", "tcp http connected")
    assert pod.seen("web liveness", "FAIL exit 1")
    # Python as PID 1 installs no SIGTERM handler: the kernel drops the signal, the grace
    # period runs out and only SIGKILL stops it. ts-entrypoint exists for this.
    assert pod.seen("web", "grace period over after 3 s: SIGKILL to PID 1")
