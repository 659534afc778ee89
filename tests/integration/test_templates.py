"""The model-config templates are accepted by TorchServe 0.12 and by the health section parser."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from ts_health_handler.testing import TorchServe

pytestmark = pytest.mark.integration

TEMPLATES = Path(__file__).resolve().parents[2] / "examples" / "templates"
#: TorchServe keys of the templates and how describe names them.
DESCRIBED = (
    "minWorkers",
    "maxWorkers",
    "batchSize",
    "maxBatchDelay",
    "responseTimeout",
    "startupTimeout",
    "maxRetryTimeoutInSec",
)


@pytest.mark.parametrize("template", ["model-config.dev.yml", "model-config.prod.yml"])
def test_template_serves_with_its_settings(
    shared_server: TorchServe,
    registered: Callable[..., str],
    shared_state_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    template: str,
) -> None:
    path = TEMPLATES / template
    settings: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    # Paths of the prod template point at a container's file system: redirect them here.
    termination = tmp_path_factory.mktemp("termination") / "termination-log"
    changes = {"health": {"state_dir": str(shared_state_dir), "termination_log": str(termination)}}
    name = registered(
        "empty_model", name=path.stem.replace(".", "_"), base_config=path, changes=changes
    )
    entry = shared_server.describe(name)[0]
    for key in DESCRIBED:
        assert entry[key] == settings[key], key
    assert entry["jobQueueStatus"]["remainingCapacity"] == settings["jobQueueSize"]
    doc = shared_server.status_document(name)
    assert doc["status"] == "ready", doc
    assert doc["faults"] == {}
