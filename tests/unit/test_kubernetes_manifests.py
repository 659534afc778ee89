"""The Kubernetes examples parse, validate, and every command they run exists as written.

``ts-health`` probes must be accepted by the probe's own parser, ``torchserve`` command lines by
TorchServe's, and the addresses the probes use must be the ones TorchServe listens on. Kubernetes
resources are validated with ``kubernetes-validate`` (strict), KServe's against KServe's CRD
schema (``tests/data/kserve-v0.15.2-crd-schemas.json.gz``: the ``openAPIV3Schema`` of each CRD
in KServe v0.15.2's ``config/crd/full``, descriptions removed). How they behave on a kubelet's
schedule: ``tests/integration/test_kubelet.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.crd import crd_schema, pruned, schema_errors
from tests.support.dockerfile import instructions, one
from ts_health_handler import cli, probe

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "kubernetes"
KSERVE_SCHEMAS = ROOT / "tests" / "data" / "kserve-v0.15.2-crd-schemas.json.gz"
MANIFESTS = sorted(EXAMPLES.glob("*.yaml"))
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")
KNOWN_ENV = {
    probe.ENV_INFERENCE_URL,
    probe.ENV_MANAGEMENT_URL,
    probe.ENV_TOKEN,
    probe.ENV_KEY_FILE,
    probe.ENV_REQUEST_TIMEOUT,
    probe.ENV_DESCRIBE_TIMEOUT,
    probe.ENV_STATE_DIR,
    # ts-entrypoint starts `ts-health serve --listen $TS_HEALTH_SERVE_LISTEN $TS_HEALTH_SERVE_ARGS`.
    "TS_HEALTH_SERVE_LISTEN",
    "TS_HEALTH_SERVE_ARGS",
}


def documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in MANIFESTS:
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document is not None:
                found.append((path.name, document))
    return found


def containers(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every container spec of a Deployment, a ServingRuntime or an InferenceService."""
    kind = document["kind"]
    spec = document.get("spec", {})
    if kind == "Deployment":
        yield from spec["template"]["spec"]["containers"]
    elif kind == "ServingRuntime":
        yield from spec["containers"]
    elif kind == "InferenceService":
        yield spec["predictor"]["model"]


def command_line(container: dict[str, Any]) -> list[str]:
    return [*container.get("command", []), *container.get("args", [])]


def all_containers() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{name}:{doc['kind']}/{doc['metadata']['name']}", container)
        for name, doc in documents()
        for container in containers(doc)
    ]


def test_there_are_manifests() -> None:
    assert {p.name for p in MANIFESTS} == {
        "deployment.yaml",
        "deployment-tokens.yaml",
        "inferenceservice.yaml",
    }
    kinds = {doc["kind"] for _, doc in documents()}
    assert {
        "Deployment",
        "ConfigMap",
        "Service",
        "NetworkPolicy",
        "ServingRuntime",
        "InferenceService",
    } <= kinds


@pytest.mark.parametrize(("name", "document"), documents(), ids=lambda v: str(v)[:40])
def test_every_document_is_well_formed(name: str, document: dict[str, Any]) -> None:
    assert isinstance(document.get("apiVersion"), str), name
    assert isinstance(document.get("kind"), str), name
    assert document["metadata"]["name"], name


def test_every_probe_command_is_accepted() -> None:
    parser = cli.build_parser()
    checked = 0
    for where, container in all_containers():
        for kind in PROBES:
            spec = container.get(kind)
            if spec is None or "exec" not in spec:
                continue
            command = spec["exec"]["command"]
            assert command[0] == "ts-health", (where, kind, command)
            assert all(isinstance(part, str) for part in command), (where, kind)
            try:
                args = parser.parse_args(command[1:])
            except SystemExit as exc:  # argparse: a usage error
                pytest.fail(f"{where} {kind}: ts-health rejects {command[1:]} (exit {exc.code})")
            # The kubelet kills the probe at timeoutSeconds: the probe must give up first.
            request = args.request_timeout or probe.DEFAULT_REQUEST_TIMEOUT
            worst = request * (2 if getattr(args, "renew_key", False) else 1)
            if args.command in ("ready", "status"):
                worst += args.describe_timeout or probe.DEFAULT_DESCRIBE_TIMEOUT
            assert worst < spec.get("timeoutSeconds", 1), (where, kind, worst)
            checked += 1
    assert checked >= 3


def serve_command(container: dict[str, Any]) -> list[str] | None:
    """The ``ts-health serve`` command line ts-entrypoint runs for this container, if any."""
    env = {item["name"]: item.get("value", "") for item in container.get("env", [])}
    if "TS_HEALTH_SERVE_LISTEN" not in env:
        return None
    return [
        "serve",
        "--listen",
        env["TS_HEALTH_SERVE_LISTEN"],
        *env["TS_HEALTH_SERVE_ARGS"].split(),
    ]


def test_the_health_server_command_is_accepted_and_its_port_declared() -> None:
    parser = cli.build_parser()
    served = 0
    for where, container in all_containers():
        command = serve_command(container)
        if command is None:
            continue
        try:
            args = parser.parse_args(command)
        except SystemExit as exc:
            pytest.fail(f"{where}: ts-health rejects {command} (exit {exc.code})")
        port = int(args.listen.rsplit(":", 1)[1])
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["health"] == port, where
        for kind in ("startupProbe", "readinessProbe"):
            get = container[kind].get("httpGet")
            assert get is not None, (where, kind)
            assert get["port"] == "health", (where, kind)
            # answered from the last observation: well within the kubelet's timeout
            assert container[kind]["timeoutSeconds"] >= 1, (where, kind)
        served += 1
    assert served >= 1  # the production Deployment


def test_each_container_has_all_three_probes() -> None:
    for where, container in all_containers():
        if "ServingRuntime" in where:
            continue  # the InferenceService's predictor carries them
        assert all(kind in container for kind in PROBES), where


def entrypoint_line(container: dict[str, Any]) -> list[str]:
    """What runs as PID 1: the manifest's command, else the image's ENTRYPOINT, plus args."""
    if "command" in container:
        return command_line(container)
    entrypoint = one(instructions(EXAMPLES / "Dockerfile"), "ENTRYPOINT").exec_form
    return [*entrypoint, *container.get("args", [])]


def test_torchserve_command_lines_are_accepted() -> None:
    from ts.arg_parser import ArgParser

    parser = ArgParser.ts_parser()
    checked = 0
    for where, container in all_containers():
        line = command_line(container)
        if "Deployment" in where:
            line = entrypoint_line(container)
            # ts-entrypoint runs `torchserve --start --foreground "$@"`.
            assert line[0] == "/usr/local/bin/ts-entrypoint", where
            line = ["torchserve", "--start", "--foreground", *line[1:]]
        if not line or line[0] != "torchserve":
            continue
        try:
            parsed = parser.parse_args(line[1:])
        except SystemExit as exc:
            pytest.fail(f"{where}: torchserve rejects {line[1:]} (exit {exc.code})")
        assert parsed.start, where
        assert parsed.ts_config, where
        checked += 1
    assert checked == 3


def test_environment_variables_are_ours_or_torchserves() -> None:
    for where, container in all_containers():
        for item in container.get("env", []):
            name = item["name"]
            if name.startswith("TS_HEALTH_"):
                assert name in KNOWN_ENV, (where, name)


def properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs if not k.strip().startswith("#")}


def deployment(name: str) -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for file, doc in documents() if file == name}


@pytest.mark.parametrize("name", ["deployment.yaml", "deployment-tokens.yaml"])
def test_deployment_probes_use_the_addresses_torchserve_listens_on(name: str) -> None:
    docs = deployment(name)
    config = properties(docs["ConfigMap"]["data"]["config.properties"])
    (container,) = containers(docs["Deployment"])
    env = {item["name"]: item["value"] for item in container["env"]}

    def port(url: str) -> int | None:
        return urlsplit(url).port

    assert port(env[probe.ENV_INFERENCE_URL]) == port(config["inference_address"])
    assert port(env[probe.ENV_MANAGEMENT_URL]) == port(config["management_address"])
    # The management API stays on loopback; exec probes run inside the container.
    assert urlsplit(config["management_address"]).hostname == "127.0.0.1"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["inference"] == port(config["inference_address"])
    assert ports["metrics"] == port(config["metrics_address"])
    if name == "deployment.yaml":
        # The production stance: no tokens, a NetworkPolicy on the inference port.
        assert config["disable_token_authorization"] == "true"
        assert probe.ENV_KEY_FILE not in env
        policy = docs["NetworkPolicy"]["spec"]
        assert policy["podSelector"] == {"matchLabels": docs["Deployment"]["metadata"]["labels"]}
        assert ports["inference"] in [
            p["port"] for rule in policy["ingress"] for p in rule["ports"]
        ]
    else:
        # TorchServe writes key_file.json into its working directory.
        assert config["disable_token_authorization"] == "false"
        assert env[probe.ENV_KEY_FILE] == f"{container['workingDir']}/key_file.json"
    # The state directory the workers write is a volume the probes can read.
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert env[probe.ENV_STATE_DIR] in mounts
    # The config file passed to torchserve is the mounted ConfigMap.
    line = container["args"]
    config_path = line[line.index("--ts-config") + 1]
    assert str(Path(config_path).parent) in mounts
    assert (
        docs["Deployment"]["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"]
        == (docs["ConfigMap"]["metadata"]["name"])
    )


def probe_question(spec: dict[str, Any]) -> str:
    """``ping``, ``ready``, ``metrics`` or ``tcp``: what a probe asks (ts-health serve's
    ``/live`` is TorchServe's ``/ping``, its ``/ready`` is ``ts-health ready``)."""
    if "exec" in spec:
        return str(spec["exec"]["command"][1])
    if "httpGet" in spec:
        paths = {"/ping": "ping", "/metrics": "metrics", "/live": "ping", "/ready": "ready"}
        return paths[spec["httpGet"]["path"]]
    return "tcp"


def readiness_options(container: dict[str, Any]) -> list[str]:
    """The options the readiness probe's verdict is given: its exec command, or the health
    server's when it is an httpGet of ``/ready``."""
    spec = container["readinessProbe"]
    if "exec" in spec:
        return list(spec["exec"]["command"])
    command = serve_command(container)
    assert command is not None
    assert spec["httpGet"]["path"] == "/ready"
    return ["ts-health", "ready", *command[3:]]


def test_readiness_policy_and_startup_budget() -> None:
    """docs/kubernetes.md, "Readiness policy" and "Startup budget and maxRetryTimeoutInSec"."""
    for where, container in all_containers():
        if "ServingRuntime" in where:
            continue
        readiness = readiness_options(container)
        # Out of the Service only when the pod cannot serve: degraded and saturated stay in.
        assert readiness[1] == "ready", where
        assert "--allow-degraded" in readiness, where
        assert "--allow-saturated" in readiness, where
        # Startup waits for TorchServe's frontend, not for the model: a model that never
        # loads is TorchServe's to retry (maxRetryTimeoutInSec) and then liveness' to restart.
        assert probe_question(container["startupProbe"]) == "ping", where
        startup = container["startupProbe"]
        assert startup["failureThreshold"] * startup["periodSeconds"] >= 60, where
        assert probe_question(container["livenessProbe"]) in ("ping", "metrics"), where


def test_the_token_variant_survives_key_expiry() -> None:
    (container,) = containers(deployment("deployment-tokens.yaml")["Deployment"])
    # Liveness must not need a key: keys expire after token_expiration_min.
    assert probe_question(container["livenessProbe"]) == "metrics"
    # Readiness renews the management key; nothing renews the inference key.
    assert "--renew-key" in container["readinessProbe"]["exec"]["command"]
    for kind in PROBES:
        spec = container[kind]
        if "exec" in spec and spec["exec"]["command"][1] == "ping":
            assert kind == "startupProbe", "only start-up may use the inference key"


def kubernetes_resources() -> list[tuple[str, dict[str, Any]]]:
    return [(n, d) for n, d in documents() if "kserve.io" not in d["apiVersion"]]


@pytest.mark.parametrize(("name", "document"), kubernetes_resources(), ids=lambda v: str(v)[:40])
def test_kubernetes_resources_validate(name: str, document: dict[str, Any]) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    version = kubernetes_validate.latest_version()
    try:
        kubernetes_validate.validate(document, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{name} {document['kind']}: {exc.message} at {list(exc.path)}")


def kserve_schema(document: dict[str, Any]) -> dict[str, Any]:
    return crd_schema(KSERVE_SCHEMAS, document)


@pytest.mark.parametrize(
    ("name", "document"),
    [(n, d) for n, d in documents() if "kserve.io" in d["apiVersion"]],
    ids=lambda v: str(v)[:40],
)
def test_kserve_resources_validate_against_kserves_crd_schema(
    name: str, document: dict[str, Any]
) -> None:
    pytest.importorskip("jsonschema")
    schema = kserve_schema(document)
    errors = schema_errors(document, schema)
    assert not errors, errors
    assert pruned(document, schema) == []


def test_the_crd_check_sees_a_misspelt_field() -> None:
    docs = {d["kind"]: d for n, d in documents() if n == "inferenceservice.yaml"}
    service = json_copy(docs["InferenceService"])
    service["spec"]["predictor"]["model"]["readinesProbe"] = {"tcpSocket": {"port": 8085}}
    assert pruned(service, kserve_schema(service)) == [".spec.predictor.model.readinesProbe"]


def json_copy(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value))


def test_kserve_liveness_port_is_the_inference_port() -> None:
    docs = {doc["kind"]: doc for name, doc in documents() if name == "inferenceservice.yaml"}
    (runtime,) = containers(docs["ServingRuntime"])
    env = {item["name"]: item["value"] for item in runtime["env"]}
    model = docs["InferenceService"]["spec"]["predictor"]["model"]
    assert model["runtime"] == docs["ServingRuntime"]["metadata"]["name"]
    assert model["livenessProbe"]["httpGet"]["port"] == urlsplit(env[probe.ENV_INFERENCE_URL]).port
