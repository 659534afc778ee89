"""Fault: the record is corrupted or truncated, or its directory becomes unwritable, mid-run.

The handler keeps serving; the status document says the record is unavailable (``history``
null, ``state_store.ok`` false, ``state_store.error`` naming the file); the probe reports it.

Tests run as root, where ``chmod`` does not stop writes: "unwritable" is made by replacing
the model's record directory with a regular file.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.reliability_support import ProbeRun, record_path
from ts_health_handler.testing import TorchServe

pytestmark = pytest.mark.integration

#: How each case damages a valid init.json.
DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "garbage": lambda valid: b"\x00\xffnot a record\n",
    "truncated": lambda valid: valid[: len(valid) // 2],
    "empty": lambda valid: b"",
    "wrong-type": lambda valid: valid.replace(b'"attempts": ', b'"attempts": "three", "x": ', 1),
}
#: What the reader says about each: RecordError's reason.
REASON = {
    "garbage": "not JSON",
    "truncated": "not JSON",
    "empty": "not JSON",
    "wrong-type": "field 'attempts'",
}


def _infer_ok(server: TorchServe, name: str) -> None:
    answer = server.infer(name, b"ok?", headers={"Content-Type": "text/plain"}, timeout=30)
    assert answer.status == 200, answer.text
    assert answer.json()["ok"] is True


def _probe_json(run: ProbeRun) -> dict[str, Any]:
    assert "Traceback" not in run.output, run.output
    return json.loads(run.stdout)


@pytest.fixture(scope="module")
def record_model(rel_model: Callable[..., str]) -> str:
    return rel_model("empty_model", "record_model", {"minWorkers": 1, "maxWorkers": 1})


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_corrupt_record_mid_run(
    rel_server: TorchServe,
    record_model: str,
    rel_state_dir: Path,
    probe: Callable[..., ProbeRun],
    damage: str,
) -> None:
    name = record_model
    path = record_path(rel_state_dir, name)
    valid = path.read_bytes()
    json.loads(valid)  # the worker wrote a valid record
    _infer_ok(rel_server, name)
    before = rel_server.status_document(name)
    assert before["state_store"]["ok"] is True

    path.write_bytes(DAMAGE[damage](valid))
    try:
        # The handler keeps serving and counting.
        _infer_ok(rel_server, name)
        document = rel_server.status_document(name)
        assert document["status"] == "ready", document
        assert document["requests"]["total"] == before["requests"]["total"] + 1
        # TorchServe drops null fields of customizedMetadata: absent means null.
        assert document["initialization"].get("history") is None, document["initialization"]
        store = document["state_store"]
        assert store["ok"] is False, store
        assert str(path) in store["error"], store
        assert REASON[damage] in store["error"], store
        assert "\n" not in store["error"]

        # The probe: still ready (a worker serves), the record's problem in the JSON...
        run = probe("status", name, "--json")
        assert run.code == 0, run.output
        model = _probe_json(run)["models"][0]
        assert model["state"] == "ready"
        assert model["initialization"] is None
        assert str(path) in model["record_error"], model
        assert REASON[damage] in model["record_error"], model
        assert model["status"]["state_store"]["ok"] is False
        # ... and one line in `ready` that a person reads.
        run = probe("ready", name)
        assert run.code == 0, run.output
        assert "Traceback" not in run.output
        assert len(run.stdout.splitlines()) == 1, run.stdout
    finally:
        path.write_bytes(valid)
    document = rel_server.status_document(name)
    assert document["state_store"]["ok"] is True
    assert document["initialization"]["history"]["attempts"] >= 1


def test_corrupt_record_is_named_in_the_probes_text_output(
    rel_server: TorchServe,
    record_model: str,
    rel_state_dir: Path,
    probe: Callable[..., ProbeRun],
) -> None:
    path = record_path(rel_state_dir, record_model)
    valid = path.read_bytes()
    path.write_bytes(b"{ truncated")
    try:
        status = probe("status", record_model)
        ready = probe("ready", record_model)
    finally:
        path.write_bytes(valid)
    for run in (status, ready):
        assert "Traceback" not in run.output
        assert str(path) in run.stdout, run.stdout


def test_record_directory_replaced_by_a_file_mid_run(
    rel_server: TorchServe,
    rel_model: Callable[..., str],
    rel_state_dir: Path,
    probe: Callable[..., ProbeRun],
) -> None:
    # maxWorkers 2: a second worker is started below, after the damage, so that a worker's
    # initialize() has to write the record into the broken directory.
    name = rel_model("empty_model", "unwritable_model", {"minWorkers": 1, "maxWorkers": 2})
    path = record_path(rel_state_dir, name)
    directory = path.parent
    assert path.is_file()
    _infer_ok(rel_server, name)
    (first_pid,) = (w["pid"] for w in rel_server.describe(name)[0]["workers"])
    moved = directory.with_name(directory.name + ".moved")
    directory.rename(moved)
    directory.write_text("not a directory\n", encoding="utf-8")
    try:
        # Reading: the serving worker keeps serving and says why the record is unavailable.
        _infer_ok(rel_server, name)
        document = rel_server.status_document(name)
        assert document["status"] == "ready"
        store = document["state_store"]
        assert store["ok"] is False, store
        assert str(path) in store["error"], store
        assert "NotADirectoryError" in store["error"], store

        # Writing: a new worker initializes; its record cannot be written. It still becomes
        # READY and serves, and its status says why the record is unavailable.
        scaled = rel_server.request(
            "PUT",
            f"{rel_server.management_url}/models/{name}?min_worker=2&synchronous=true",
            timeout=120,
        )
        assert scaled.status == 200, scaled.text
        rel_server.wait_until_ready(name, workers=2, timeout=120)
        documents = _documents(rel_server, name, 2)
        assert len(documents) == 2, documents
        new = [d for pid, d in documents.items() if pid != first_pid]
        assert len(new) == 1, documents
        assert new[0]["status"] == "ready"
        assert new[0]["state_store"]["ok"] is False
        assert str(directory) in new[0]["state_store"]["error"], new[0]["state_store"]
        assert new[0]["state_store"]["path"] == str(path)
        # docs/status.md: with an unwritable state directory, history is this worker's own
        # view (it could not read the others' attempts), flagged by state_store.ok false.
        assert new[0]["initialization"]["history"]["attempts"] == 1
        for _ in range(4):
            _infer_ok(rel_server, name)

        run = probe("status", name, "--json")
        assert run.code == 0, run.output
        model = _probe_json(run)["models"][0]
        assert model["state"] == "ready"
        assert model["record_error"], model
        assert str(directory) in model["record_error"], model
        assert "Not a directory" in model["record_error"], model
    finally:
        directory.unlink()
        moved.rename(directory)
    assert rel_server.status_document(name)["status"] == "ready"


def _documents(server: TorchServe, name: str, workers: int) -> dict[int, dict[str, Any]]:
    seen: dict[int, dict[str, Any]] = {}
    for _ in range(40):
        document = server.status_document(name, timeout=10)
        seen[document["worker"]["pid"]] = document
        if len(seen) == workers:
            break
    return seen


def test_record_directory_removed_mid_run(
    rel_server: TorchServe,
    record_model: str,
    rel_state_dir: Path,
    probe: Callable[..., ProbeRun],
) -> None:
    name = record_model
    path = record_path(rel_state_dir, name)
    backup = path.parent.with_name("backup")
    shutil.copytree(path.parent, backup)
    shutil.rmtree(path.parent)
    try:
        _infer_ok(rel_server, name)
        document = rel_server.status_document(name)
        assert document["status"] == "ready"
        assert document["state_store"]["ok"] is False
        assert "record missing" in document["state_store"]["error"]
        assert str(path) in document["state_store"]["error"]
        run = probe("status", name, "--json")
        assert run.code == 0, run.output
        model = _probe_json(run)["models"][0]
        assert model["state"] == "ready"
        assert model["initialization"] is None
        # No record file at all: the path shown is the directory the records are looked for in.
        assert model["record_path"] == str(path.parent)
    finally:
        shutil.rmtree(path.parent, ignore_errors=True)
        backup.rename(path.parent)
