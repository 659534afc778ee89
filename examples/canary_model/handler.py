"""A small real network (a 2-layer MLP over 16 features, 3 classes) with a canary health check.

Each request is a JSON list of 16 numbers; the answer is ``{"class": k, "probabilities":
[p0, p1, p2]}``. TorchServe batches up to ``batchSize`` (4) requests into one forward pass;
a request that is not 16 finite numbers is answered 400 on its own, the rest of its batch
is served.

The weights are built in ``initialize()`` from a fixed seed (no weight file: the ``.mar`` holds
this file and ``model-config.yml`` only), so every worker, and ``build_network(SEED)`` in a
test, computes the same function.

``health_check()`` runs :class:`ts_health_handler.Canary`: a forward pass of a stored example
(two rows) at most once per ``handler.canary_interval_s`` (30 s by default), checking that the
output is finite, of shape (2, 3) and equal to the answer recorded at ``initialize()``. On a
GPU whose CUDA context broke (a device-side assert), the canary fails and the status document
turns ``degraded`` before a user request hits the broken device.

TorchServe loads the one class *defined* in this module: the network is an ``nn.Sequential``
made by a function, not a class of its own.
"""

from __future__ import annotations

import json
import math
from typing import Any

import torch
from torch import nn
from ts.torch_handler.base_handler import BaseHandler

from ts_health_handler import Canary, HealthMixin, InitializationError

FEATURES = 16
HIDDEN = 32
CLASSES = 3
SEED = 16
#: Rows of the canary's stored example.
CANARY_ROWS = 2


def build_network(seed: int = SEED) -> nn.Sequential:
    """The MLP with weights drawn from ``seed`` (the global RNG is left alone)."""
    # Made on the meta device (no values, no draw from the global RNG), then filled.
    network = nn.Sequential(
        nn.Linear(FEATURES, HIDDEN, device="meta"),
        nn.ReLU(),
        nn.Linear(HIDDEN, CLASSES, device="meta"),
    ).to_empty(device="cpu")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in (network[0], network[2]):
            scale = 1.0 / math.sqrt(layer.in_features)
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * scale)
            layer.bias.copy_(torch.randn(layer.bias.shape, generator=generator) * 0.1)
    return network.eval()


def canary_example(seed: int = SEED) -> torch.Tensor:
    """The canary's stored input: ``CANARY_ROWS`` rows of 16 features."""
    generator = torch.Generator().manual_seed(seed + 1)
    return torch.randn(CANARY_ROWS, FEATURES, generator=generator)


def parse_features(request: Any) -> list[float]:
    """One request's 16 features; ``ValueError`` says what is wrong with it."""
    body = request.get("body", request.get("data")) if isinstance(request, dict) else request
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            raise ValueError(f"expected a JSON list of {FEATURES} numbers") from None
    if (
        not isinstance(body, list)
        or len(body) != FEATURES
        or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in body)
        or not all(math.isfinite(x) for x in body)
    ):
        raise ValueError(f"expected a JSON list of {FEATURES} finite numbers")
    return [float(x) for x in body]


class CanaryHandler(HealthMixin, BaseHandler):
    """Batched classification; ``health_check()`` is a canary forward pass."""

    def initialize(self, context: Any) -> None:
        self.context = context
        self.manifest = context.manifest
        gpu = (context.system_properties or {}).get("gpu_id")
        use_gpu = gpu is not None and torch.cuda.is_available()
        self.device = torch.device(f"cuda:{gpu}" if use_gpu else "cpu")
        self.model = build_network().to(self.device)
        settings = (context.model_yaml_config or {}).get("handler") or {}
        example = canary_example().to(self.device)
        with torch.inference_mode():
            reference = self.model(example)

        def matches_reference(output: torch.Tensor) -> bool:
            return bool(torch.allclose(output, reference, rtol=1e-4, atol=1e-5))

        self.canary = Canary(
            self.model,
            example,
            min_interval_s=float(settings.get("canary_interval_s", 30)),
            budget_s=float(settings.get("canary_budget_s", 0.5)),
            expected_shape=(CANARY_ROWS, CLASSES),
            check=matches_reference,
            clock=self.health_clock,  # tests install a fake one before initialize()
        )
        first = self.canary.run()  # a broken device fails here, before any request
        if not first["healthy"]:
            raise InitializationError(f"canary failed: {first['canary'].get('error')}")
        self.batches = 0
        self.largest_batch = 0
        self.initialized = True

    def health_check(self) -> dict[str, Any]:
        canary = getattr(self, "canary", None)
        if canary is None:
            return {"healthy": False, "canary": {"error": "initialize() has not succeeded"}}
        result = canary()
        result["batches"] = {"served": self.batches, "largest": self.largest_batch}
        return result

    def preprocess(self, data: list[Any]) -> tuple[torch.Tensor, dict[int, str], int]:
        rows: list[list[float]] = []
        errors: dict[int, str] = {}
        for index, request in enumerate(data):
            try:
                rows.append(parse_features(request))
            except ValueError as exc:
                errors[index] = str(exc)
        batch = torch.tensor(rows, dtype=torch.float32).reshape(len(rows), FEATURES)
        return batch.to(self.device), errors, len(data)

    def inference(
        self, data: tuple[torch.Tensor, dict[int, str], int], *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, dict[int, str], int]:
        batch, errors, count = data
        self.batches += 1
        self.largest_batch = max(self.largest_batch, count)
        with torch.inference_mode():
            probabilities = torch.softmax(self.model(batch), dim=1) if len(batch) else batch
        return probabilities.cpu(), errors, count

    def postprocess(self, data: tuple[torch.Tensor, dict[int, str], int]) -> list[Any]:
        probabilities, errors, count = data
        answers: list[Any] = []
        rows = iter(probabilities.tolist())
        for index in range(count):
            if index in errors:
                self.context.set_response_status(400, errors[index], index)
                answers.append({"error": errors[index]})
                continue
            row = next(rows)
            answers.append(
                {"class": row.index(max(row)), "probabilities": [round(p, 6) for p in row]}
            )
        return answers
