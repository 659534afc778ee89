"""A model whose health_check() returns False: degraded in describe, still serving."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ts_health_handler.testing import TorchServe

pytestmark = pytest.mark.integration


def test_degraded_health_check_shows_in_status_document(
    shared_server: TorchServe, registered: Callable[..., str]
) -> None:
    name = registered("degraded_model")
    doc = shared_server.status_document(name)
    assert doc["status"] == "degraded", doc
    assert doc["check"]["status"] == "failed"
    assert doc["initialization"]["phase"] == "ready"
    # TorchServe itself sees nothing wrong: the model serves and /ping is healthy.
    assert shared_server.worker_statuses(name) == ["READY"]
    assert shared_server.ping() == (200, {"status": "Healthy"})
    answer = shared_server.infer(name, b"x", headers={"Content-Type": "text/plain"})
    assert answer.status == 200, answer.text
    assert answer.json() == {"degraded": True}
