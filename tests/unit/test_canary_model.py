"""examples/canary_model without a server: batched inference, per-request errors, the canary in
the status document, and what it catches (weights turned NaN or changed) at its bounded rate."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ts_health_handler.testing import describe, infer

torch = pytest.importorskip("torch", reason="needs torch (2.13.0 exists for Python 3.11 only)")
pytest.importorskip("ts", reason="needs torchserve (the ts package)")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "canary_model"

pytestmark = [
    pytest.mark.usefixtures("no_real_sleep"),
    pytest.mark.filterwarnings("ignore:Failed to initialize NumPy:UserWarning"),
    pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:DeprecationWarning"),
]


@pytest.fixture(scope="module")
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("canary_model_handler", EXAMPLE / "handler.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def served(example: ModuleType, ts_context: Any, fake_time: Any) -> tuple[Any, Any]:
    """The handler, initialized on a context with the example's model-config.yml."""
    handler = fake_time(example.CanaryHandler())
    context = ts_context(
        "canary_model", model_yaml_config=EXAMPLE / "model-config.yml", batch_size=4
    )
    handler.initialize(context)
    return handler, context


def rows(count: int) -> list[list[float]]:
    generator = torch.Generator().manual_seed(7)
    return torch.randn(count, 16, generator=generator).tolist()


def expected(example: ModuleType, features: list[list[float]]) -> list[dict[str, Any]]:
    """What the same network, built here, answers for ``features`` one row at a time."""
    network = example.build_network(example.SEED)
    answers = []
    for row in features:
        with torch.no_grad():
            probabilities = torch.softmax(network(torch.tensor([row])), dim=1)[0].tolist()
        answers.append(
            {"class": probabilities.index(max(probabilities)), "probabilities": probabilities}
        )
    return answers


def assert_answers(got: list[Any], want: list[dict[str, Any]]) -> None:
    assert len(got) == len(want)
    for answer, wanted in zip(got, want):
        assert answer["class"] == wanted["class"]
        assert answer["probabilities"] == pytest.approx(wanted["probabilities"], abs=1e-5)


def test_a_batch_of_four_requests_gets_four_answers(
    example: ModuleType, served: tuple[Any, Any]
) -> None:
    handler, context = served
    features = rows(4)
    bodies = [{"body": json.dumps(row).encode()} for row in features]

    answers = infer(handler, context, bodies)

    assert_answers(answers, expected(example, features))
    assert len({tuple(a["probabilities"]) for a in answers}) == 4  # one answer per row
    assert describe(handler, context)["requests"]["total"] == 4


def test_json_already_parsed_by_torchserve_is_accepted(
    example: ModuleType, served: tuple[Any, Any]
) -> None:
    # TorchServe decodes an application/json body itself: the handler gets the list.
    handler, context = served
    features = rows(2)

    answers = infer(handler, context, [{"body": features[0]}, {"data": features[1]}])

    assert_answers(answers, expected(example, features))


def test_a_bad_request_is_answered_400_and_the_rest_of_its_batch_is_served(
    example: ModuleType, served: tuple[Any, Any]
) -> None:
    handler, context = served
    features = rows(2)
    bodies = [
        {"body": json.dumps(features[0]).encode()},
        {"body": b"[1, 2, 3]"},
        {"body": b"not json"},
        {"body": json.dumps(features[1]).encode()},
    ]

    answers = infer(handler, context, bodies)

    assert answers[1] == {"error": "expected a JSON list of 16 finite numbers"}
    assert answers[2] == {"error": "expected a JSON list of 16 numbers"}
    assert_answers([answers[0], answers[3]], expected(example, features))
    statuses = [p.get_response_status_code() for p in context.request_processor]
    assert statuses == [200, 400, 400, 200]


def test_describe_shows_the_canary_and_the_device(served: tuple[Any, Any]) -> None:
    handler, context = served
    infer(handler, context, [{"body": json.dumps(row).encode()} for row in rows(3)])

    document = describe(handler, context)

    assert document["status"] == "ready"
    assert document["worker"]["device"] == "cpu"
    result = document["check"]["result"]
    assert result["healthy"] is True
    assert result["batches"] == {"served": 1, "largest": 3}
    canary = result["canary"]
    assert canary["device"] == "cpu"
    assert "memory_allocated" not in canary
    assert canary["runs"] == 1  # the run at the end of initialize()
    assert canary["cached"] is True
    assert canary["output_shape"] == [2, 3]
    assert canary["min_interval_s"] == 30.0
    assert canary["budget_s"] == 0.5


def test_corrupt_weights_are_caught_at_the_next_run_not_before(
    served: tuple[Any, Any], clock: Any
) -> None:
    handler, context = served
    with torch.no_grad():
        handler.model[0].weight[0, 0] = float("nan")

    clock.advance(29)
    cached = describe(handler, context)
    clock.advance(1)
    caught = describe(handler, context)

    assert cached["status"] == "ready"  # the rate bound: no pass within 30 s
    assert caught["status"] == "degraded"
    assert caught["check"]["result"]["canary"]["error"] == (
        "output has 6 non-finite value(s) (NaN or infinity)"  # 2 rows x 3 classes
    )


def test_changed_weights_fail_the_reference_check(served: tuple[Any, Any], clock: Any) -> None:
    handler, context = served
    with torch.no_grad():
        handler.model[2].bias += 1.0

    clock.advance(30)
    document = describe(handler, context)

    assert document["status"] == "degraded"
    assert document["check"]["result"]["canary"]["error"] == (
        "check matches_reference rejected the output"
    )


def test_the_network_is_the_same_for_every_build(example: ModuleType) -> None:
    state = torch.get_rng_state()
    first, second = example.build_network(), example.build_network()

    for one, other in zip(first.parameters(), second.parameters()):
        assert torch.equal(one, other)
    assert torch.equal(state, torch.get_rng_state())  # the global RNG is left alone
    assert sum(p.numel() for p in first.parameters()) == 16 * 32 + 32 + 32 * 3 + 3
