"""A fleet of three replicas watched by one real Prometheus, with the shipped rules.

Three TorchServe 0.12 servers, each with its own ``ts-health serve`` (as three pods of
``examples/kubernetes/deployment.yaml``), all on loopback. One Prometheus discovers them
through ``file_sd`` with the relabelling the Prometheus Operator generates for
``examples/kubernetes/monitoring/podmonitor.yaml`` (``examples/prometheus/generate.py``): each
target carries the Kubernetes meta labels a pod would (namespace, pod name, container, port
name, the ``app`` label), and two decoys (another port, another app) must be dropped. The rules
are ``examples/prometheus/ts-health-rules.yml`` with every ``for:`` set to 0 s and 1 s
intervals, so that what production sees after a minute shows here in seconds.

Scenarios, in order, on the same fleet (``pytest -s`` prints how long each alert took):

1. healthy: every replica serves ``fleet`` 1.0; no alert, ever;
2. one bad replica: replica b's worker is poisoned (a fatal error); TorchServeModelFailing
   fires for pod b with kind ``fatal_error``, nothing for a and c, no fleet alert;
3. a bad rollout: every replica swaps to ``fleet`` 2.0, whose ``initialize()`` fails;
   TorchServeModelDown fires for 2.0 with ``init_failed`` on 3, and no per-replica alert of 2.0
   ever does;
4. every query of ``examples/grafana/ts-health-fleet.json`` returns series.

Needs Debian's ``prometheus`` (``scripts/setup.sh``): missing, the tests fail in CI and are
skipped elsewhere.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.support.processes import process_group
from tests.support.serve_support import ServeProcess, eventually
from ts_health_handler.testing import TorchServe, serve
from ts_health_handler.testing._runner import _free_ports as free_ports

# Three TorchServe servers of their own: before the shared server (conftest.py).
pytestmark = [pytest.mark.integration, pytest.mark.own_server]

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "examples" / "prometheus" / "ts-health-rules.yml"
POD_MONITOR = ROOT / "examples" / "kubernetes" / "monitoring" / "podmonitor.yaml"
DASHBOARD = ROOT / "examples" / "grafana" / "ts-health-fleet.json"
MODEL = "fleet"
NAMESPACE = "fleet"
PODS = ("my-model-a", "my-model-b", "my-model-c")
#: No system-metrics subprocess (conftest's TEST_SERVER_CONFIG).
SERVER_CONFIG = {"disable_system_metrics": "true"}
#: The troubled model: fast beats, a fatal error reported (not restarted), as in production.
TROUBLED = {
    "responseTimeout": 60,
    "health": {"heartbeat_interval_s": 0.5, "on_fatal_error": "report"},
}
#: The rollout's model: initialize() raises; TorchServe retries for longer than the test.
BROKEN = {"maxRetryTimeoutInSec": 600}
#: Per-replica alerts, each held back while its version is down.
REPLICA_ALERTS = (
    "TorchServeModelFailing",
    "TorchServeModelUnhealthy",
    "TorchServeModelStuck",
    "TorchServeModelUnstable",
    "TorchServeModelSaturated",
    "TorchServeModelDegraded",
)


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        message = f"{tool} not found: scripts/setup.sh installs it (apt-get install {tool})"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "ts_health_generate", ROOT / "examples" / "prometheus" / "generate.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Replica:
    """One pod: a TorchServe and its ts-health serve."""

    pod: str
    server: TorchServe
    store: Path
    state: Path
    health: ServeProcess | None = None

    @property
    def target(self) -> str:
        assert self.health is not None
        return self.health.url.split("//", 1)[1]


@dataclass
class Prometheus:
    port: int
    log: Path

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        url = f"http://127.0.0.1:{self.port}{path}{query}"
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:
                return json.loads(answer.read())["data"]
        except OSError:
            return None

    def instant(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("/api/v1/query", query=expr)
        return [] if data is None else list(data["result"])

    def over(self, expr: str, since: float) -> list[dict[str, Any]]:
        """``expr`` at every second from ``since`` (epoch) to now."""
        now = time.time()
        data = self.api(
            "/api/v1/query_range", query=expr, start=f"{since:.3f}", end=f"{now:.3f}", step="1"
        )
        assert data is not None, f"query_range {expr} failed ({self.log})"
        return list(data["result"])

    def firing(self, name: str, **labels: str) -> dict[str, Any] | None:
        data = self.api("/api/v1/alerts") or {}
        for alert in data.get("alerts", []):
            if (
                alert["labels"].get("alertname") == name
                and alert["state"] == "firing"
                and all(alert["labels"].get(k) == v for k, v in labels.items())
            ):
                return dict(alert)
        return None


@dataclass
class Fleet:
    replicas: list[Replica]
    prometheus: Prometheus
    started: float
    timings: dict[str, float] = field(default_factory=dict)

    def replica(self, pod: str) -> Replica:
        return next(r for r in self.replicas if r.pod == pod)


def start_servers(
    stack: contextlib.ExitStack, stores: list[Path], states: list[Path], workdirs: list[Path]
) -> list[TorchServe]:
    """The three TorchServe servers, started side by side (each takes a JVM's start)."""
    managers = [
        serve(
            store,
            models={MODEL: f"{MODEL}.mar"},
            config=SERVER_CONFIG,
            env={"TS_HEALTH_STATE_DIR": str(state)},
            workdir=workdir,
            startup_timeout=180,
        )
        for store, state, workdir in zip(stores, states, workdirs)
    ]
    started: list[TorchServe | BaseException | None] = [None] * len(managers)

    def enter(index: int) -> None:
        try:
            started[index] = managers[index].__enter__()
        except BaseException as exc:  # reported below, in this thread
            started[index] = exc

    threads = [threading.Thread(target=enter, args=(i,)) for i in range(len(managers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    servers = []
    for manager, server in zip(managers, started):
        if isinstance(server, TorchServe):
            stack.push(manager.__exit__)
            servers.append(server)
    for server in started:
        if not isinstance(server, TorchServe):
            raise AssertionError(f"a TorchServe did not start: {server!r}")
    return servers


def file_sd(replicas: list[Replica]) -> list[dict[str, Any]]:
    """What Kubernetes discovery would give for the three pods, plus two decoys."""

    def pod(name: str, address: str, port_name: str, app: str) -> dict[str, Any]:
        return {
            "targets": [address],
            "labels": {
                "__meta_kubernetes_namespace": NAMESPACE,
                "__meta_kubernetes_pod_name": name,
                "__meta_kubernetes_pod_phase": "Running",
                "__meta_kubernetes_pod_container_name": "torchserve",
                "__meta_kubernetes_pod_container_port_name": port_name,
                "__meta_kubernetes_pod_label_app": app,
                "__meta_kubernetes_pod_labelpresent_app": "true",
            },
        }

    groups = [pod(r.pod, r.target, "health", "my-model") for r in replicas]
    first = replicas[0]
    metrics = first.server.inference_url.rsplit(":", 1)[0].split("//", 1)[1]
    groups.append(pod(first.pod, f"{metrics}:1", "metrics", "my-model"))  # another port
    groups.append(pod("other-app-0", first.target, "health", "other"))  # another app
    return groups


def prometheus_config(tmp: Path, replicas: list[Replica]) -> Path:
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    for group in rules["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            if "alert" in rule:
                rule["for"] = "0s"  # the shipped waits are for production
    (tmp / "rules.yml").write_text(yaml.safe_dump(rules), encoding="utf-8")
    (tmp / "pods.json").write_text(json.dumps(file_sd(replicas)), encoding="utf-8")
    monitor = yaml.safe_load(POD_MONITOR.read_text(encoding="utf-8"))
    job = generator().pod_monitor_job(monitor, namespace=NAMESPACE)
    assert job.pop("kubernetes_sd_configs") == [
        {"role": "pod", "namespaces": {"names": [NAMESPACE]}}
    ]
    job["file_sd_configs"] = [{"files": [str(tmp / "pods.json")], "refresh_interval": "1s"}]
    job["scrape_interval"], job["scrape_timeout"] = "1s", "1s"
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(tmp / "rules.yml")],
        "scrape_configs": [job],
    }
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory, build_mar: Callable[..., Path]
) -> Iterator[Fleet]:
    prometheus_bin = need("prometheus")
    tmp = tmp_path_factory.mktemp("fleet")
    stores = [tmp / pod / "model-store" for pod in PODS]
    states = [tmp / pod / "state" for pod in PODS]
    workdirs = [tmp / pod / "server" for pod in PODS]
    for store in stores:
        build_mar("troubled_model", store, name=MODEL, changes=TROUBLED)
    with contextlib.ExitStack() as stack:
        servers = start_servers(stack, stores, states, workdirs)
        replicas = [
            Replica(pod, server, store, state)
            for pod, server, store, state in zip(PODS, servers, stores, states)
        ]
        for replica in replicas:
            replica.server.wait_until_ready(MODEL, timeout=180)
            replica.health = ServeProcess(
                [
                    "--inference-url",
                    replica.server.inference_url,
                    "--management-url",
                    replica.server.management_url,
                    "--state-dir",
                    str(replica.state),
                    "--model",
                    MODEL,
                    "--interval",
                    "0.5",
                    "--stale-after",
                    "5",
                    # the production Deployment's readiness policy
                    "--allow-degraded",
                    "--allow-saturated",
                ],
                {},
            )
            stack.callback(replica.health.stop)
        config = prometheus_config(tmp, replicas)
        [port] = free_ports(1)
        log = tmp / "prometheus.log"
        command = [
            prometheus_bin,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
        started = time.time()
        stack.enter_context(process_group(command, log))
        prometheus = Prometheus(port, log)
        eventually(
            lambda: prometheus.instant(
                f'model_version:ts_health_replicas_ready:sum{{model="{MODEL}",version="1.0"}} == 3'
            ),
            60,
            f"Prometheus to see three ready replicas ({log})",
        )
        fleet = Fleet(replicas, prometheus, started)
        yield fleet
        if fleet.timings:
            print(
                "\nfleet timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in fleet.timings.items())
            )


def test_a_healthy_fleet_fires_nothing(fleet: Fleet) -> None:
    prometheus = fleet.prometheus
    targets = prometheus.api("/api/v1/targets")
    active = targets["activeTargets"]
    assert sorted(t["labels"]["pod"] for t in active) == list(PODS)
    for target in active:
        assert target["health"] == "up", target
        labels = target["labels"]
        assert labels["job"] == "ts-health", labels
        assert labels["namespace"] == NAMESPACE
        assert labels["container"] == "torchserve"
        assert labels["endpoint"] == "health"
    # The relabelling drops the other port and the other app, as the Operator's would.
    assert len(targets["droppedTargets"]) == 2
    # Several evaluations of a healthy fleet, and not one alert since Prometheus started.
    time.sleep(5)
    assert prometheus.over("ALERTS", fleet.started) == []
    ready = prometheus.instant(f'ts_health_model_reason{{model="{MODEL}"}}')
    assert {(r["metric"]["pod"], r["metric"]["state"], r["metric"]["kind"]) for r in ready} == {
        (pod, "ready", "ok") for pod in PODS
    }


def test_one_bad_replica_alerts_with_its_pod_and_kind(fleet: Fleet) -> None:
    prometheus = fleet.prometheus
    bad = fleet.replica("my-model-b")
    began = time.time()
    answer = bad.server.infer(MODEL, "poison")
    assert answer.status >= 400, answer  # the poisoning request fails, as it would
    alert = eventually(
        lambda: prometheus.firing("TorchServeModelFailing", pod=bad.pod),
        60,
        f"TorchServeModelFailing for {bad.pod} ({prometheus.log})",
    )
    fleet.timings["one bad replica: TorchServeModelFailing"] = time.time() - began
    labels = alert["labels"]
    assert labels | {"alertname": "", "instance": ""} == {
        "alertname": "",
        "instance": "",
        "severity": "critical",
        "job": "ts-health",
        "namespace": NAMESPACE,
        "pod": bad.pod,
        "container": "torchserve",
        "endpoint": "health",
        "model": MODEL,
        "version": "1.0",
        "state": "failing",
        "kind": "fatal_error",
    }
    assert labels["instance"] == bad.target
    assert alert["annotations"]["summary"] == (
        f"{MODEL} 1.0 is failing on {NAMESPACE}/{bad.pod} (fatal_error)"
    )
    assert fleet.timings["one bad replica: TorchServeModelFailing"] < 30
    # The others serve: no alert names them, and the model is not down.
    time.sleep(3)
    assert prometheus.over('ALERTS{pod=~"my-model-a|my-model-c"}', began) == []
    assert prometheus.over('ALERTS{alertname="TorchServeModelDown"}', began) == []
    assert [a["labels"]["pod"] for a in (prometheus.api("/api/v1/alerts") or {})["alerts"]] == [
        bad.pod
    ]
    [ready] = prometheus.instant(f'model_version:ts_health_replicas_ready:sum{{model="{MODEL}"}}')
    assert ready["value"][1] == "2"
    kinds = prometheus.instant(f'model_version_kind:ts_health_replicas:count{{model="{MODEL}"}}')
    assert {(k["metric"]["kind"], k["value"][1]) for k in kinds} == {
        ("ok", "2"),
        ("fatal_error", "1"),
    }


def test_a_bad_rollout_is_one_alert_for_the_model_version(
    fleet: Fleet, build_mar: Callable[..., Path], tmp_path: Path
) -> None:
    prometheus = fleet.prometheus
    mar = build_mar("failing_model", tmp_path, name=MODEL, version="2.0", changes=BROKEN)
    began = time.time()
    for replica in fleet.replicas:  # as a rolling update would: one pod after the other
        shutil.copy(mar, replica.store / "fleet-2.0.mar")
        replica.server.unregister(MODEL, check=False)
        replica.server.register("fleet-2.0.mar", synchronous=False)
    alert = eventually(
        lambda: prometheus.firing("TorchServeModelDown", model=MODEL, version="2.0"),
        120,
        f"TorchServeModelDown for {MODEL} 2.0 ({prometheus.log})",
    )
    fleet.timings["bad rollout: TorchServeModelDown"] = time.time() - began
    assert alert["labels"] == {
        "alertname": "TorchServeModelDown",
        "severity": "critical",
        "namespace": NAMESPACE,
        "model": MODEL,
        "version": "2.0",
    }

    def all_three_failing() -> dict[str, Any] | None:
        found = prometheus.firing("TorchServeModelDown", model=MODEL, version="2.0")
        if found and "failing (init_failed) on 3;" in found["annotations"]["description"]:
            return found
        return None

    alert = eventually(all_three_failing, 60, "init_failed on all three replicas")
    fleet.timings["bad rollout: init_failed on all three"] = time.time() - began
    assert alert["annotations"]["summary"] == (
        f"{MODEL} 2.0 is down: none of its 3 replicas is ready"
    )
    assert fleet.timings["bad rollout: TorchServeModelDown"] < 90
    time.sleep(3)
    # One alert for the version: not one per pod, not even for an evaluation.
    per_replica = "|".join(REPLICA_ALERTS)
    assert prometheus.over(f'ALERTS{{alertname=~"{per_replica}",version="2.0"}}', began) == []
    # Version 1.0 is gone from every replica: its alerts have ended.
    assert prometheus.firing("TorchServeModelFailing", pod="my-model-b") is None


def test_every_dashboard_query_returns_series(fleet: Fleet) -> None:
    prometheus = fleet.prometheus
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    everything = {"$namespace": ".*", "$model": ".*", "$__rate_interval": "1m"}

    def resolved(text: str) -> str:
        for name, value in everything.items():
            text = text.replace(name, value)
        return text

    checked = 0
    for panel in [p for top in board["panels"] for p in (top, *top.get("panels", []))]:
        for target in panel.get("targets", []):
            expr = resolved(target["expr"])
            if target.get("instant"):
                result = prometheus.instant(expr)
            else:
                result = prometheus.over(expr, fleet.started)
            assert result, f"{panel['title']}: {expr} returned no series"
            checked += 1
    assert checked >= 12
    # The template variables (Grafana's label_values) have values too.
    for variable in board["templating"]["list"]:
        if variable["type"] != "query":
            continue
        selector, label = variable["query"][len("label_values(") : -1].rsplit(", ", 1)
        values = prometheus.api(f"/api/v1/label/{label}/values", **{"match[]": resolved(selector)})
        assert values, variable["name"]
    # Initialization time and deaths have a sample per replica and version seen.
    times = prometheus.over(
        f'ts_health_model_init_duration_seconds{{model="{MODEL}"}}', fleet.started
    )
    assert {t["metric"]["pod"] for t in times} == set(PODS)
