"""The fleet's monitoring resources: the PodMonitor and the PrometheusRule agree with the
Deployment and with the plain Prometheus rules, and validate against the Operator's CRDs.

``examples/prometheus/generate.py`` writes the PrometheusRule from
``examples/prometheus/ts-health-rules.yml`` and ``prometheus-kubernetes.yml`` from the
PodMonitor; a file that differs from what it writes fails here. The schemas are the
``openAPIV3Schema`` of the Prometheus Operator v0.93.0's PodMonitor and PrometheusRule CRDs
(``tests/data/prometheus-operator-v0.93.0-crd-schemas.json.gz``, descriptions removed); a
field the schema does not know (which the API server would drop silently) fails too.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.support.crd import crd_schema, pruned, schema_errors
from ts_health_handler import cli

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
MONITORING = EXAMPLES / "kubernetes" / "monitoring"
DEPLOYMENT = EXAMPLES / "kubernetes" / "deployment.yaml"
RULES = EXAMPLES / "prometheus" / "ts-health-rules.yml"
SCHEMAS = ROOT / "tests" / "data" / "prometheus-operator-v0.93.0-crd-schemas.json.gz"
DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "ts_health_generate", EXAMPLES / "prometheus" / "generate.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def monitoring() -> list[tuple[str, dict[str, Any]]]:
    return [
        (path.name, document)
        for path in sorted(MONITORING.glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if document
    ]


def kinds() -> dict[str, dict[str, Any]]:
    return {document["kind"]: document for _, document in monitoring()}


def deployment() -> dict[str, dict[str, Any]]:
    documents = yaml.safe_load_all(DEPLOYMENT.read_text(encoding="utf-8"))
    return {d["kind"]: d for d in documents if d}


def schema(document: dict[str, Any]) -> dict[str, Any]:
    return crd_schema(SCHEMAS, document)


def test_there_is_a_pod_monitor_and_a_prometheus_rule() -> None:
    assert sorted(kinds()) == ["PodMonitor", "PrometheusRule"]


def test_the_generated_files_are_what_the_generator_writes() -> None:
    assert generator().stale() == [], "run: python examples/prometheus/generate.py"


def test_the_prometheus_rule_has_the_rule_files_groups_exactly() -> None:
    rule = kinds()["PrometheusRule"]
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]


def test_a_changed_rule_file_is_seen() -> None:
    text = RULES.read_text(encoding="utf-8").replace("for: 1m", "for: 2m", 1)
    assert generator().prometheus_rule(text) != (MONITORING / "prometheusrule.yaml").read_text()


@pytest.mark.parametrize(("name", "document"), monitoring(), ids=lambda v: str(v)[:30])
def test_validates_against_the_operators_crd_schema(name: str, document: dict[str, Any]) -> None:
    pytest.importorskip("jsonschema")
    crd = schema(document)
    errors = schema_errors(document, crd)
    assert not errors, [f"{name} {error}" for error in errors]
    assert pruned(document, crd) == []
    metadata = document["metadata"]
    assert set(metadata) <= {"name", "labels", "annotations"}, name
    assert DNS_1123.match(metadata["name"]), name
    assert all(isinstance(v, str) for v in metadata.get("labels", {}).values()), name


def test_the_schema_check_sees_a_misspelt_field() -> None:
    monitor = json.loads(json.dumps(kinds()["PodMonitor"]))
    monitor["spec"]["podMetricsEndpoints"][0]["intervall"] = "15s"
    assert pruned(monitor, schema(monitor)) == [".spec.podMetricsEndpoints[0].intervall"]


def serve_arguments(container: dict[str, Any]) -> list[str]:
    """The ``ts-health serve`` command line ts-entrypoint runs in ``container``."""
    env = {item["name"]: item.get("value", "") for item in container["env"]}
    return [
        "serve",
        "--listen",
        env["TS_HEALTH_SERVE_LISTEN"],
        *env.get("TS_HEALTH_SERVE_ARGS", "").split(),
    ]


def test_the_pod_monitor_scrapes_each_pods_health_server() -> None:
    docs = deployment()
    template = docs["Deployment"]["spec"]["template"]
    (container,) = template["spec"]["containers"]
    monitor = kinds()["PodMonitor"]["spec"]
    # It selects the Deployment's pods...
    assert monitor["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    (endpoint,) = monitor["podMetricsEndpoints"]
    # ... on the port ts-health serve listens on, at /metrics.
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    args = cli.build_parser().parse_args(serve_arguments(container))
    assert ports[endpoint["port"]] == int(args.listen.rsplit(":", 1)[1])
    assert endpoint["path"] == "/metrics"
    # The rules select job="ts-health".
    assert {"targetLabel": "job", "replacement": "ts-health"} in endpoint["relabelings"]
    # A scrape must end before the next one starts.
    seconds = {"s": 1, "m": 60}
    interval = int(endpoint["interval"][:-1]) * seconds[endpoint["interval"][-1]]
    timeout = int(endpoint["scrapeTimeout"][:-1]) * seconds[endpoint["scrapeTimeout"][-1]]
    assert timeout < interval


def test_the_network_policy_admits_the_monitoring_namespace_to_that_port() -> None:
    docs = deployment()
    (container,) = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    (endpoint,) = kinds()["PodMonitor"]["spec"]["podMetricsEndpoints"]
    monitoring = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    }
    admitted = [
        port["port"]
        for rule in docs["NetworkPolicy"]["spec"]["ingress"]
        if monitoring in rule["from"]
        for port in rule["ports"]
    ]
    assert ports[endpoint["port"]] in admitted
    assert ports["metrics"] in admitted  # TorchServe's own metrics, as before


def test_the_token_story_is_one_or_the_other() -> None:
    """The production Deployment runs ts-health serve without a token (the NetworkPolicy
    decides who reads /metrics; docs/fleet.md says why); a token on one side only would make
    every scrape fail (401) or send a secret for nothing."""
    (container,) = deployment()["Deployment"]["spec"]["template"]["spec"]["containers"]
    args = cli.build_parser().parse_args(serve_arguments(container))
    env = {item["name"] for item in container["env"]}
    token_on_serve = args.auth_token_file is not None or "TS_HEALTH_SERVE_TOKEN" in env
    (endpoint,) = kinds()["PodMonitor"]["spec"]["podMetricsEndpoints"]
    token_on_monitor = "authorization" in endpoint or "bearerTokenSecret" in endpoint
    assert token_on_serve == token_on_monitor
    assert not token_on_serve  # the documented decision


def test_the_operator_relabelling_names_pod_namespace_and_job() -> None:
    job = generator().pod_monitor_job(kinds()["PodMonitor"], namespace="ml")
    assert job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": ["ml"]}}]
    targets = [r.get("target_label") for r in job["relabel_configs"]]
    assert {"namespace", "pod", "container", "endpoint"} <= set(targets)
    # The monitor's own relabelling comes after the Operator's default job name.
    assert targets.index("job") < len(targets) - 1
    assert job["relabel_configs"][-1] == {"target_label": "job", "replacement": "ts-health"}
    with pytest.raises(ValueError, match="does not translate"):
        generator().pod_monitor_job({"metadata": {"name": "x"}, "spec": {"selector": {},
            "podMetricsEndpoints": [{"port": "p", "tlsConfig": {}}]}})  # fmt: skip


def test_the_plain_kubernetes_config_passes_promtool(tmp_path: Path) -> None:
    """Debian's Prometheus is built without Kubernetes discovery: the job is checked with
    file discovery in its place (the fleet test scrapes that way), the rest as written."""
    promtool = shutil.which("promtool")
    if promtool is None:
        message = "promtool not found: scripts/setup.sh installs it (apt-get install prometheus)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    config = yaml.safe_load((EXAMPLES / "prometheus" / "prometheus-kubernetes.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job.pop("kubernetes_sd_configs") == [{"role": "pod"}]
    job["file_sd_configs"] = [{"files": [str(tmp_path / "pods.json")]}]
    config["rule_files"] = [str(RULES)]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    done = subprocess.run(
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
