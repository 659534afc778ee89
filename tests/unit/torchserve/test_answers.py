"""TorchServe's answers parsed once (``torchserve._answers``): describe entries with odd fields,
the status document inside ``customizedMetadata``, key files and Java instants."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.key_files import SECRET, expiring_key_file
from tests.support.records import NOW
from tests.support.status_docs import status_doc
from ts_health_handler.torchserve._answers import (
    JobQueue,
    KeyFileError,
    Keys,
    ModelEntry,
    Worker,
    count_or_none,
    model_path,
    parse_describe,
    status_from_metadata,
)

ENTRY: dict[str, Any] = {
    "modelName": "m",
    "modelVersion": "1.0",
    "minWorkers": 1,
    "maxWorkers": 2,
    "maxRetryTimeoutInSec": 300,
    "jobQueueStatus": {"remainingCapacity": 97, "pendingRequests": 3},
    "workers": [
        {"id": "9000", "status": "READY", "pid": 41, "startTime": "2025-06-15T15:06:40.000Z"},
        {"id": "9001", "status": "UNLOADING", "pid": 42},
    ],
}


# -- describe entries ------------------------------------------------------------------------


def test_an_entry_is_parsed_whole() -> None:
    entry = ModelEntry.from_json({**ENTRY, "customizedMetadata": {"status": "ready"}})
    assert entry == ModelEntry(
        name="m",
        version="1.0",
        workers=(
            Worker("READY", "9000", 41, "2025-06-15T15:06:40.000Z"),
            Worker("UNLOADING", "9001", 42, None),
        ),
        min_workers=1,
        max_workers=2,
        max_retry_timeout_s=300,
        queue=JobQueue(remaining=97, pending=3),
        customized={"status": "ready"},
    )
    assert (entry.ready_workers, entry.queue is not None and entry.queue.full) == (1, False)


@pytest.mark.parametrize(("stateful", "parsed"), [(True, True), (False, False), ("true", False)])
def test_stateful_is_taken_as_torchserve_writes_it(stateful: Any, parsed: bool) -> None:
    # TorchServe 0.12's ApiUtils writes stateful = isSequenceBatching(), a JSON boolean.
    assert ModelEntry.from_json({**ENTRY, "stateful": stateful}).stateful is parsed
    assert ModelEntry.from_json(ENTRY).stateful is False
    continuous = ModelEntry.from_json({**ENTRY, "continuousBatching": True})
    assert (continuous.continuous_batching, continuous.stateful) == (True, False)
    assert ModelEntry.from_json(ENTRY).continuous_batching is False


@pytest.mark.parametrize(
    ("version", "parsed"), [(None, "unknown"), ("", "unknown"), (2, "2"), ("2.0", "2.0")]
)
def test_a_missing_or_odd_version_is_text(version: Any, parsed: str) -> None:
    assert ModelEntry.from_json({**ENTRY, "modelVersion": version}).version == parsed


@pytest.mark.parametrize(
    ("worker", "parsed"),
    [
        ({"status": "READY"}, Worker("READY")),
        ({"status": "READY", "id": 9000, "pid": 41.9}, Worker("READY", "9000", 41)),
        ({"status": "READY", "pid": True, "startTime": 1750000000}, Worker("READY")),
        ({"status": "READY", "pid": float("nan"), "id": None}, Worker("READY")),
        ({"status": "READY", "pid": "41", "extra": [1]}, Worker("READY")),
    ],
    ids=["bare", "numbers", "bool-pid-and-numeric-start", "nan-pid", "text-pid"],
)
def test_odd_worker_fields_are_left_out_not_guessed(worker: dict[str, Any], parsed: Worker) -> None:
    assert ModelEntry.from_json({**ENTRY, "workers": [worker]}).workers == (parsed,)


@pytest.mark.parametrize(
    ("queue", "parsed"),
    [
        (None, None),
        ("full", None),
        ({}, None),
        ({"pendingRequests": 3}, None),
        ({"remainingCapacity": 0}, JobQueue(0, 0)),
        ({"remainingCapacity": 5, "pendingRequests": "x"}, JobQueue(5, 0)),
        ({"remainingCapacity": True, "pendingRequests": 1}, None),
    ],
)
def test_a_queue_without_a_usable_capacity_is_none(queue: Any, parsed: JobQueue | None) -> None:
    raw = {k: v for k, v in ENTRY.items() if k != "jobQueueStatus"}
    if queue is not None:
        raw["jobQueueStatus"] = queue
    assert ModelEntry.from_json(raw).queue == parsed


def test_counts_that_are_not_numbers_are_none() -> None:
    odd = {**ENTRY, "minWorkers": "1", "maxWorkers": None, "maxRetryTimeoutInSec": 1e400}
    entry = ModelEntry.from_json(odd)
    assert (entry.min_workers, entry.max_workers, entry.max_retry_timeout_s) == (None, None, None)


@pytest.mark.parametrize(
    ("value", "count"),
    [
        (3, 3),
        (3.9, 3),
        (0, 0),
        (True, None),
        (float("inf"), None),
        (float("nan"), None),
        ("3", None),
    ],
)
def test_count_or_none(value: Any, count: int | None) -> None:
    assert count_or_none(value) == count


@pytest.mark.parametrize(
    "raw",
    [
        [],
        "m",
        {"modelVersion": "1.0", "workers": []},
        {"modelName": 1, "workers": []},
        {"modelName": "m"},
        {"modelName": "m", "workers": {}},
        {"modelName": "m", "workers": [{"id": "9000"}]},
        {"modelName": "m", "workers": ["READY"]},
    ],
    ids=[
        "list",
        "text",
        "no-name",
        "numeric-name",
        "no-workers",
        "workers-object",
        "worker-without-status",
        "worker-not-object",
    ],
)
def test_an_entry_of_another_shape_is_refused_with_itself(raw: Any) -> None:
    with pytest.raises(ValueError, match=re.escape(str(raw))) as caught:
        ModelEntry.from_json(raw)
    assert caught.value.args == (raw,)


def test_a_describe_answer_is_a_non_empty_list_of_entries() -> None:
    assert [e.version for e in parse_describe([ENTRY, {**ENTRY, "modelVersion": "2.0"}])] == [
        "1.0",
        "2.0",
    ]
    for answer in ([], {"models": [ENTRY]}, None):
        with pytest.raises(ValueError, match=re.escape(str(answer))) as caught:
            parse_describe(answer)
        assert caught.value.args == (answer,)


@pytest.mark.parametrize(
    ("model", "version", "root", "path"),
    [
        ("m", None, "/models", "/models/m"),
        ("m", "", "/models", "/models/m"),
        ("team/m a", "1.0/b", "/models", "/models/team%2Fm%20a/1.0%2Fb"),
        ("m?x", "1.0", "/predictions", "/predictions/m%3Fx/1.0"),
    ],
)
def test_model_paths_quote_each_part(model: str, version: str | None, root: str, path: str) -> None:
    assert model_path(model, version, root=root) == path


# -- our status document in customizedMetadata ------------------------------------------------


@pytest.mark.parametrize("metadata", [None, "", {}])
def test_no_metadata_says_the_handler_reports_no_status(metadata: Any) -> None:
    assert status_from_metadata(metadata) == (
        None,
        "the handler reports no ts-health status (is HealthMixin one of its bases?)",
    )


def test_metadata_as_an_object_or_as_a_json_string_is_the_document() -> None:
    document = status_doc("degraded")
    assert status_from_metadata(document) == (document, None)
    assert status_from_metadata(json.dumps(document)) == (document, None)


@pytest.mark.parametrize(
    ("metadata", "why"),
    [
        ("{not json", "customizedMetadata is not JSON; not a ts-health status"),
        ('"ready"', "customizedMetadata is not a ts-health status (expected a JSON object, got"),
        ({"status": "Healthy"}, "customizedMetadata is not a ts-health status (field 'status'"),
        ([status_doc()], "customizedMetadata is not a ts-health status (expected a JSON object"),
    ],
)
def test_metadata_that_is_not_our_document_says_why(metadata: Any, why: str) -> None:
    document, reason = status_from_metadata(metadata)
    assert document is None
    assert reason is not None
    assert reason.startswith(why)


# -- key files and Java instants -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("2025-06-15T15:06:40Z", 1_750_000_000.0),
        ("2025-06-15T15:06:40.5Z", 1_750_000_000.5),
        ("2025-06-15T15:06:40.250Z", 1_750_000_000.25),
        ("2025-06-15T15:06:40.123456789Z", 1_750_000_000.123456789),
    ],
)
def test_java_instants_are_parsed(text: str, epoch: float) -> None:
    from ts_health_handler.torchserve._answers import parse_instant

    assert parse_instant(text) == pytest.approx(epoch, abs=1e-6)


def test_instants_count_leap_days_and_refuse_impossible_dates() -> None:
    from ts_health_handler.torchserve._answers import parse_instant

    assert parse_instant("2024-02-29T00:00:00Z") == 1_709_164_800.0
    assert parse_instant("1970-01-01T00:00:00.000000001Z") == pytest.approx(1e-9)
    with pytest.raises(ValueError, match="day is out of range"):
        parse_instant("2025-02-29T00:00:00Z")
    with pytest.raises(ValueError, match=r"hour must be in 0\.\.23"):
        parse_instant("2025-06-15T24:00:00Z")


@pytest.mark.parametrize("text", ["2025-06-15 15:06:40Z", "2025-06-15T15:06:40", "soon", ""])
def test_odd_instants_are_refused(text: str) -> None:
    from ts_health_handler.torchserve._answers import parse_instant

    with pytest.raises(ValueError, match="expected an instant like"):
        parse_instant(text)


def test_key_file_expiration_times_are_read(tmp_path: Path) -> None:
    from ts_health_handler.torchserve._answers import Keys

    path = expiring_key_file(tmp_path / "k.json", management_at=NOW + 60, inference_at=NOW + 30)
    keys = Keys.from_key_file(path)
    assert keys.management_expires_at == pytest.approx(NOW + 60, abs=1e-3)
    assert keys.inference_expires_at == pytest.approx(NOW + 30, abs=1e-3)
    assert keys.api == "api-" + SECRET
    assert SECRET not in repr(keys)


def write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_a_key_file_without_expiry_or_api_key(tmp_path: Path) -> None:
    path = write(tmp_path / "k.json", {"management": {"key": " m \n"}, "inference": {"key": "i"}})
    keys = Keys.from_key_file(path)
    assert keys == Keys(inference="i", management="m")
    assert repr(keys) == "Keys(inference=..., management=..., api=...)"


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ({"management": {"key": "m"}, "inference": {"key": ""}}, "has no inference key"),
        ({"management": "m", "inference": {"key": "i"}}, "has no management key"),
        ({"management": {"key": "a b"}, "inference": {"key": "i"}}, "the management key holds"),
        ({"management": {"key": "m"}, "inference": {"key": "i\x00"}}, "the inference key holds"),
        (
            {"management": {"key": "m"}, "inference": {"key": "i", "expiration time": 5}},
            "the inference key's expiration time 5 is not an instant like",
        ),
    ],
    ids=["empty-key", "section-not-object", "space-inside", "control-character", "numeric-time"],
)
def test_a_bad_key_file_is_named_and_its_keys_never_shown(
    tmp_path: Path, data: Any, why: str
) -> None:
    path = write(tmp_path / "k.json", data)
    with pytest.raises(KeyFileError) as caught:
        Keys.from_key_file(path)
    assert str(caught.value).startswith(f"key file {path}")
    assert why in str(caught.value)
    assert "a b" not in str(caught.value)
