"""``examples/grafana/ts-health-fleet.json``: what ``examples/grafana/generate.py`` writes with
Grafana's foundation SDK, with the panels docs/fleet.md describes, and queries that name only
series ``ts-health serve`` exports or the rules record. The fleet test runs every query
against a real Prometheus (``tests/integration/test_fleet.py``)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.describes import entry
from tests.support.records import NOW, beat
from tests.support.serve_support import metrics_samples
from ts_health_handler._lifecycle import InitPhase
from ts_health_handler.monitor._assess import Observation, assess
from ts_health_handler.record import InitRecord

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "examples" / "grafana" / "ts-health-fleet.json"
GENERATOR = ROOT / "examples" / "grafana" / "generate.py"
RULES = ROOT / "examples" / "prometheus" / "ts-health-rules.yml"


def board() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text(encoding="utf-8")))


def panels() -> list[dict[str, Any]]:
    found = []
    for panel in board()["panels"]:
        found.append(panel)
        found += panel.get("panels", [])
    return found


def expressions() -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in panels()
        for target in panel.get("targets", [])
    ]


def test_the_file_is_what_the_generator_writes() -> None:
    pytest.importorskip(
        "grafana_foundation_sdk", reason="grafana-foundation-sdk not installed (test extra, 3.11+)"
    )
    spec = importlib.util.spec_from_file_location("ts_health_grafana", GENERATOR)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.text() == DASHBOARD.read_text(encoding="utf-8"), (
        "run: python examples/grafana/generate.py"
    )


def test_an_importable_dashboard_with_the_fleets_panels() -> None:
    data = board()
    assert data["uid"] == "ts-health-fleet"
    assert isinstance(data["schemaVersion"], int)
    ids = [panel["id"] for panel in panels()]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    titles = {panel["title"] for panel in panels()}
    assert {
        "Replicas ready per model version",
        "State and reason kind per pod",
        "Initialization time",
        "Initializations failed in a row",
        "Failed requests per second",
        "Worker deaths while serving",
    } <= titles
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    for panel in panels():
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"], panel["title"]
    # Every query follows the namespace and model pickers (up has no model label).
    for title, expr in expressions():
        assert 'namespace=~"$namespace"' in expr, title
        assert 'model=~"$model"' in expr or "up{" in expr, title


def exported() -> set[str]:
    """Every sample name ``/metrics`` can show: a snapshot with a record, beats and deaths."""
    record = InitRecord("m", "1.0", InitPhase.READY, last_duration_s=1.0)
    health = assess(
        "m", "1.0", Observation(entry("READY"), record=record, beats=(beat(),), now=NOW)
    )
    return {sample.name for sample in metrics_samples(health)}


def test_queries_name_only_exported_or_recorded_series() -> None:
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    recorded = {
        rule["record"] for group in rules["groups"] for rule in group["rules"] if "record" in rule
    }
    known = exported() | recorded | {"up"}
    assert "ts_health_model_init_duration_seconds" in known
    names = re.compile(r"\b(up|ts_health_[a-z_]+|[a-z_]+:ts_health_[a-z_]+:[a-z_]+)\b")
    for title, expr in expressions():
        used = set(names.findall(expr))
        assert used, (title, expr)
        assert used <= known, (title, used - known)
