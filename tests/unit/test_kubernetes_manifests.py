"""The Kubernetes examples parse, and every command they run exists as written.

``ts-health`` probes must be accepted by the probe's own parser, ``torchserve`` command lines by
TorchServe's, and the addresses the probes use must be the ones TorchServe listens on.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from ts_health_handler import probe

yaml = pytest.importorskip("yaml")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "kubernetes"
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
    assert {p.name for p in MANIFESTS} == {"deployment.yaml", "inferenceservice.yaml"}
    kinds = {doc["kind"] for _, doc in documents()}
    assert {"Deployment", "ConfigMap", "Service", "ServingRuntime", "InferenceService"} <= kinds


@pytest.mark.parametrize(("name", "document"), documents(), ids=lambda v: str(v)[:40])
def test_every_document_is_well_formed(name: str, document: dict[str, Any]) -> None:
    assert isinstance(document.get("apiVersion"), str), name
    assert isinstance(document.get("kind"), str), name
    assert document["metadata"]["name"], name


def test_every_probe_command_is_accepted() -> None:
    parser = probe.build_parser()
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
            worst = (args.request_timeout or probe.DEFAULT_REQUEST_TIMEOUT) + (
                (args.describe_timeout or probe.DEFAULT_DESCRIBE_TIMEOUT)
                if args.command in ("ready", "status")
                else 0
            )
            assert worst < spec.get("timeoutSeconds", 1), (where, kind, worst)
            checked += 1
    assert checked >= 5


def test_each_container_has_all_three_probes() -> None:
    for where, container in all_containers():
        if "ServingRuntime" in where:
            continue  # the InferenceService's predictor carries them
        assert all(kind in container for kind in PROBES), where


def test_torchserve_command_lines_are_accepted() -> None:
    from ts.arg_parser import ArgParser

    parser = ArgParser.ts_parser()
    checked = 0
    for where, container in all_containers():
        line = command_line(container)
        if not line or line[0] != "torchserve":
            continue
        try:
            parsed = parser.parse_args(line[1:])
        except SystemExit as exc:
            pytest.fail(f"{where}: torchserve rejects {line[1:]} (exit {exc.code})")
        assert parsed.start, where
        assert parsed.ts_config, where
        checked += 1
    assert checked == 2


def test_environment_variables_are_ours_or_torchserves() -> None:
    for where, container in all_containers():
        for item in container.get("env", []):
            name = item["name"]
            if name.startswith("TS_HEALTH_"):
                assert name in KNOWN_ENV, (where, name)


def properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs if not k.strip().startswith("#")}


def test_deployment_probes_use_the_addresses_torchserve_listens_on() -> None:
    docs = {doc["kind"]: doc for name, doc in documents() if name == "deployment.yaml"}
    config = properties(docs["ConfigMap"]["data"]["config.properties"])
    (container,) = containers(docs["Deployment"])
    env = {item["name"]: item["value"] for item in container["env"]}

    def port(url: str) -> int | None:
        return urlsplit(url).port

    assert port(env[probe.ENV_INFERENCE_URL]) == port(config["inference_address"])
    assert port(env[probe.ENV_MANAGEMENT_URL]) == port(config["management_address"])
    # The management API stays on loopback; exec probes run inside the container.
    assert urlsplit(config["management_address"]).hostname == "127.0.0.1"
    # Token auth on: TorchServe writes key_file.json into its working directory.
    assert config["disable_token_authorization"] == "false"
    assert env[probe.ENV_KEY_FILE] == f"{container['workingDir']}/key_file.json"
    # The state directory the workers write is a volume the probes can read.
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert env[probe.ENV_STATE_DIR] in mounts
    # The config file passed to torchserve is the mounted ConfigMap.
    line = command_line(container)
    config_path = line[line.index("--ts-config") + 1]
    assert str(Path(config_path).parent) in mounts
    assert (
        docs["Deployment"]["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"]
        == (docs["ConfigMap"]["metadata"]["name"])
    )


def test_kserve_liveness_port_is_the_inference_port() -> None:
    docs = {doc["kind"]: doc for name, doc in documents() if name == "inferenceservice.yaml"}
    (runtime,) = containers(docs["ServingRuntime"])
    env = {item["name"]: item["value"] for item in runtime["env"]}
    model = docs["InferenceService"]["spec"]["predictor"]["model"]
    assert model["runtime"] == docs["ServingRuntime"]["metadata"]["name"]
    assert model["livenessProbe"]["httpGet"]["port"] == urlsplit(env[probe.ENV_INFERENCE_URL]).port
