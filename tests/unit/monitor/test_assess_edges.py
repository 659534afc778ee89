"""Edges of the judgement's table cells (``ModelHealth.cells``): a describe without a job
queue."""

from __future__ import annotations

from ts_health_handler.probe import Observation, assess
from ts_health_handler.torchserve._answers import ModelEntry


def test_a_describe_without_a_job_queue_has_a_dash_for_its_queue_cell() -> None:
    described = ModelEntry.from_json(
        {
            "modelName": "m",
            "modelVersion": "1.0",
            "minWorkers": 1,
            "workers": [{"id": "9000", "status": "READY"}, {"id": "9001", "status": "LOADING"}],
        }
    )
    assert described.queue is None
    health = assess("m", "1.0", Observation(described))
    assert health.cells() == ("1/2", "-")
    assert health.cells(lambda q: "never asked") == ("1/2", "-")
