"""Healthy models on the shared server: /ping, worker state, the status document, the record."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ts_health_handler.record import StateStore
from ts_health_handler.testing import TorchServe

pytestmark = pytest.mark.integration


def check_ready_document(doc: dict[str, Any], name: str, state_dir: Path) -> None:
    assert doc["status"] == "ready", doc
    assert doc["schema_version"] == 1
    assert doc["model"] == {"name": name, "version": "1.0"}
    assert isinstance(doc["worker"]["pid"], int)
    assert doc["initialization"]["phase"] == "ready"
    assert doc["initialization"]["attempt"] >= 1
    # TorchServe's describe drops null fields of customizedMetadata: absent means null.
    assert doc["initialization"].get("error") is None
    history = doc["initialization"]["history"]
    assert history["attempts"] >= 1
    assert history["failures"] == 0
    assert history["attempts_to_ready"] == 1
    assert doc["check"]["status"] == "not_configured"
    assert doc["state_store"]["ok"] is True
    # One record file per server run: init.<frontend pid>-<start>.json (docs/status.md).
    [expected_path] = StateStore(state_dir, name, "1.0").files()
    assert expected_path.parent == state_dir / name / "1.0"
    assert expected_path.name.startswith("init.")
    assert expected_path.name != "init.json"
    assert Path(doc["state_store"]["path"]) == expected_path


@pytest.mark.parametrize("example", ["empty_model", "custom_handle_model"])
def test_ping_healthy_and_worker_ready(
    shared_server: TorchServe, registered: Callable[..., str], example: str
) -> None:
    name = registered(example)
    assert shared_server.ping() == (200, {"status": "Healthy"})
    assert shared_server.worker_statuses(name) == ["READY"]


def test_empty_model_answers_every_request(
    shared_server: TorchServe, registered: Callable[..., str]
) -> None:
    name = registered("empty_model")
    answer = shared_server.infer(name, b"hello", headers={"Content-Type": "text/plain"})
    assert answer.status == 200, answer.text
    assert answer.json() == {"model": name, "ok": True, "bytes": 5}


@pytest.mark.parametrize("example", ["empty_model", "custom_handle_model"])
def test_status_document_ready_with_init_record(
    shared_server: TorchServe,
    registered: Callable[..., str],
    shared_state_dir: Path,
    read_record: Callable[..., Any],
    example: str,
) -> None:
    name = registered(example)
    before = shared_server.status_document(name)
    check_ready_document(before, name, shared_state_dir)

    answer = shared_server.infer(name, b"abc", headers={"Content-Type": "text/plain"})
    assert answer.status == 200, answer.text
    after = shared_server.status_document(name)
    assert after["requests"]["total"] == before["requests"]["total"] + 1
    assert after["requests"]["failed"] == before["requests"]["failed"]
    assert after["requests"]["last_request_at"]

    record = read_record(shared_state_dir, name)
    assert record is not None, "no init.json persisted"
    assert record["phase"] == "ready"
    assert record["model_name"] == name
    assert record["model_version"] == "1.0"
    assert record["attempts"] >= 1
    assert record["failures"] == 0
    assert record["attempts_to_ready"] == 1
    assert record["worker_pid"] == after["worker"]["pid"]


def test_custom_handle_still_serves_inference(
    shared_server: TorchServe, registered: Callable[..., str]
) -> None:
    name = registered("custom_handle_model")
    answer = shared_server.infer(name, b"four", headers={"Content-Type": "text/plain"})
    assert answer.status == 200, answer.text
    assert answer.json() == {"handled_by": "custom handle()", "length": 4}


def test_describe_without_customized_has_no_status_document(
    shared_server: TorchServe, registered: Callable[..., str]
) -> None:
    name = registered("empty_model")
    entry = shared_server.describe(name)[0]
    assert entry["modelName"] == name
    assert "customizedMetadata" not in entry, json.dumps(entry)
