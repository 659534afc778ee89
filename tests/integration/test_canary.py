"""examples/canary_model on a real TorchServe: batched inference of a real (small) network, the
canary and the device in the status document, and ``ts-health status`` saying ready."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.support.probe_cli import ts_health
from ts_health_handler.testing import TorchServe

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:Failed to initialize NumPy:UserWarning"),
    pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:DeprecationWarning"),
]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "canary_model"
NAME = "canary_batched"
#: Long enough that four requests sent together always meet in one batch.
BATCH_DELAY_MS = 2000


@pytest.fixture(scope="module")
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("canary_model_handler", EXAMPLE / "handler.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def canary_model(
    shared_server: TorchServe, shared_store: Path, build_mar: Callable[..., Path]
) -> Iterator[str]:
    mar = build_mar(
        "canary_model", shared_store, name=NAME, changes={"maxBatchDelay": BATCH_DELAY_MS}
    )
    shared_server.register(mar.name, initial_workers=1, synchronous=True)
    try:
        shared_server.wait_until_ready(NAME, timeout=120)
        yield NAME
    finally:
        shared_server.unregister(NAME, check=False)


def local_answers(example: ModuleType, features: list[list[float]]) -> list[dict[str, Any]]:
    """What the same network, built in this process from the seed, answers row by row."""
    import torch

    network = example.build_network(example.SEED)
    answers = []
    for row in features:
        with torch.no_grad():
            probabilities = torch.softmax(network(torch.tensor([row])), dim=1)[0].tolist()
        answers.append(
            {"class": probabilities.index(max(probabilities)), "probabilities": probabilities}
        )
    return answers


def test_batched_inference_the_canary_and_the_probe(
    shared_server: TorchServe,
    shared_state_dir: Path,
    canary_model: str,
    example: ModuleType,
) -> None:
    entry = shared_server.describe(canary_model)[0]
    assert (entry["batchSize"], entry["maxBatchDelay"]) == (4, BATCH_DELAY_MS)

    features = [[(row + 1) * (col - 7.5) / 10 for col in range(16)] for row in range(4)]
    headers = {"Content-Type": "application/json"}

    def send(row: list[float]) -> Any:
        return shared_server.infer(canary_model, json.dumps(row), headers=headers, timeout=60)

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(send, features))

    assert [a.status for a in answers] == [200] * 4, [a.text for a in answers]
    for answer, wanted in zip(answers, local_answers(example, features)):
        got = answer.json()
        assert got["class"] == wanted["class"]
        assert got["probabilities"] == pytest.approx(wanted["probabilities"], abs=1e-5)

    bad = shared_server.infer(canary_model, "[1, 2]", headers=headers, timeout=60)
    assert bad.status == 400, bad.text
    assert "expected a JSON list of 16 finite numbers" in bad.text

    document = shared_server.status_document(canary_model)
    assert document["status"] == "ready", document
    assert document["worker"]["device"] == "cpu"
    result = document["check"]["result"]
    assert document["check"]["status"] == "ok", document["check"]
    assert result["batches"]["largest"] == 4  # the four requests were one forward pass
    canary = result["canary"]
    assert result["healthy"] is True
    assert canary["device"] == "cpu"
    assert not {"memory_allocated", "memory_reserved", "max_memory_allocated"} & set(canary)
    assert canary["runs"] >= 1
    assert canary["failures"] == 0
    assert canary["output_shape"] == [2, 3]
    assert 0 <= canary["duration_s"] < canary["budget_s"]

    done = ts_health(shared_server, "status", canary_model, state_dir=shared_state_dir)
    assert done.returncode == 0, done
    row = next(line.split() for line in done.stdout.splitlines() if line.startswith(NAME))
    assert row[1:3] == ["1.0", "ready"], done.stdout
