"""The pytest plugin's fixtures (the ``pytest11`` entry point): ``health_state_dir`` and
``ts_context``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import ts_health_handler
from tests.support.records import record_file_name
from ts_health_handler import HealthMixin
from ts_health_handler.testing import describe, mock_context


def test_health_state_dir_fixture(health_state_dir: Path, tmp_path: Path) -> None:
    assert health_state_dir.is_dir()
    assert list(health_state_dir.iterdir()) == []
    assert health_state_dir.parent == tmp_path
    assert os.environ["TS_HEALTH_STATE_DIR"] == str(health_state_dir)
    assert ts_health_handler.resolve_state_dir() == health_state_dir


def test_ts_context_fixture_records_into_the_state_dir(
    ts_context: Any, health_state_dir: Path
) -> None:
    class Ready(HealthMixin):
        def initialize(self, context: Any) -> None:
            pass

    assert ts_context is mock_context
    handler = Ready()
    handler.initialize(ts_context("fixture_model", model_version="4"))

    assert (health_state_dir / "fixture_model" / "4" / record_file_name()).is_file()


def test_ts_context_is_a_factory_that_takes_a_model_config_file(
    ts_context: Any, health_state_dir: Path, tmp_path: Path
) -> None:
    config = tmp_path / "model-config.yml"
    config.write_text("health:\n  on_init_failure: hold\n")

    context = ts_context("from_file", model_yaml_config=config)
    handler = HealthMixinOnly()
    handler.initialize(context)

    assert describe(handler, context)["initialization"]["policy"] == "hold"
    assert (health_state_dir / "from_file").is_dir()


class HealthMixinOnly(HealthMixin):
    def initialize(self, context: Any) -> None:
        self.context = context

    def handle(self, data: Any, context: Any) -> Any:
        return data
