"""Build ``ts-health-fleet.json``, the Grafana dashboard of a fleet of TorchServe replicas.

Built with Grafana's foundation SDK (``grafana-foundation-sdk`` on PyPI, Python 3.11+; in the
project's ``test`` extra), so that every panel, query and option has the type Grafana's schema
gives it. The JSON is the classic dashboard model: import it in Grafana (Dashboards, New,
Import) or provision it from a file; pick the Prometheus that scrapes ``ts-health serve``
(``examples/kubernetes/monitoring/podmonitor.yaml``) as its data source.

    python examples/grafana/generate.py           # write ts-health-fleet.json
    python examples/grafana/generate.py --check   # exit 1 if the file differs (CI)

Every query reads the series of ``ts-health serve`` (docs/serve.md) and the recording rules of
``examples/prometheus/ts-health-rules.yml`` (docs/fleet.md); the fleet test runs each against
a real Prometheus (``tests/integration/test_fleet.py``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import (
    dashboard,
    prometheus,
    stat,
    statetimeline,
    table,
    timeseries,
)
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import prometheus as prom
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    DataTransformerConfig,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

OUTPUT = Path(__file__).resolve().parent / "ts-health-fleet.json"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
#: The selector every panel applies: the dashboard's namespace and model variables.
PICK = 'namespace=~"$namespace",model=~"$model"'


def query(expr: str, legend: str = "", ref: str = "A") -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref)


def instant_table(expr: str) -> prometheus.Dataquery:
    return (
        prometheus.Dataquery().expr(expr).instant().format(prom.PromQueryFormat.TABLE).ref_id("A")
    )


def thresholds(*steps: tuple[float | None, str]) -> dashboard.ThresholdsConfig:
    return (
        dashboard.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=value, color=color) for value, color in steps])
    )


def big_number(
    panel_id: int, title: str, description: str, expr: str, red_from: float
) -> stat.Panel:
    return (
        stat.Panel()
        .id(panel_id)
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(query(expr))
        .height(4)
        .span(6)
        .reduce_options(common_builder.ReduceDataOptions().calcs(["lastNotNull"]))
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE)
        .thresholds(thresholds((None, "green"), (red_from, "red")))
    )


def lines(
    panel_id: int,
    title: str,
    description: str,
    *targets: prometheus.Dataquery,
    unit: str = "short",
    width: int = 12,
) -> timeseries.Panel:
    return (
        timeseries.Panel()
        .id(panel_id)
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(list(targets))
        .unit(unit)
        .min(0)
        .height(8)
        .span(width)
        .line_width(2)
        .fill_opacity(10)
        .show_points(common.VisibilityMode.NEVER)
        .legend(
            common_builder.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.RIGHT)
            .show_legend(True)
            .calcs(["lastNotNull"])
        )
        .tooltip(common_builder.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI))
    )


def fleet_row() -> dashboard.Row:
    return dashboard.Row("Fleet: per model version").id(100)


def fleet_panels() -> list[stat.Panel | timeseries.Panel]:
    return [
        big_number(
            1,
            "Model versions down",
            "Model versions none of whose replicas is ready while one has failed: "
            "TorchServeModelDown fires for each after 1 minute.",
            f"count(model_version:ts_health_down_replicas:count{{{PICK}}}) or vector(0)",
            1,
        ),
        big_number(
            2,
            "Replicas not ready",
            "Replicas of the selected models whose readiness answer is 503 now.",
            f"sum(model_version:ts_health_replicas:count{{{PICK}}}) - "
            f"sum(model_version:ts_health_replicas_ready:sum{{{PICK}}})",
            1,
        ),
        big_number(
            3,
            "ts-health serve not scraped",
            "Pods whose ts-health serve Prometheus cannot scrape (TorchServeHealthDown).",
            'count(up{job="ts-health",namespace=~"$namespace"} == 0) or vector(0)',
            1,
        ),
        big_number(
            4,
            "Replicas scraped",
            "Pods whose ts-health serve answered the last scrape.",
            'sum(up{job="ts-health",namespace=~"$namespace"})',
            1e12,
        ).thresholds(thresholds((None, "red"), (1, "green"))),
        lines(
            5,
            "Replicas ready per model version",
            "Ready replicas (in their Service) against all replicas reporting the version. "
            "A rollout to a new version shows as a new pair of lines.",
            query(
                f"model_version:ts_health_replicas_ready:sum{{{PICK}}}",
                "{{model}} {{version}} ready",
            ),
            query(
                f"model_version:ts_health_replicas:count{{{PICK}}}",
                "{{model}} {{version}} replicas",
                "B",
            ),
            width=8,
        ),
        lines(
            6,
            "Replicas by state",
            "How many replicas of each version are in each state (docs/serve.md).",
            query(
                f"model_version_state:ts_health_replicas:count{{{PICK}}}",
                "{{model}} {{version}} {{state}}",
            ),
            width=8,
        ),
        lines(
            7,
            "Replicas by reason kind",
            "What the replicas' reasons are about: one bad replica is one line at 1, a bad "
            "rollout is every replica of the version on one kind.",
            query(
                f"model_version_kind:ts_health_replicas:count{{{PICK}}}",
                "{{model}} {{version}} {{state}} ({{kind}})",
            ),
            width=8,
        ),
    ]


def replica_row() -> dashboard.Row:
    return dashboard.Row("Replicas: per pod").id(101)


def replica_panels() -> list[table.Panel | statetimeline.Panel]:
    hidden = ["Time", "Value", "__name__", "job", "endpoint", "container"]
    state_table = (
        table.Panel()
        .id(8)
        .title("State and reason kind per pod")
        .description(
            "Each pod's state and what its reason is about, now. The reason in words is on the "
            "pod's ts-health serve: /status, the status page, or "
            "/v2/models/{model}/versions/{version}/ready."
        )
        .datasource(DATASOURCE)
        .with_target(instant_table(f"ts_health_model_reason{{{PICK}}}"))
        .with_transformation(
            DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": {name: True for name in hidden},
                    "indexByName": {
                        "namespace": 0,
                        "pod": 1,
                        "instance": 2,
                        "model": 3,
                        "version": 4,
                        "state": 5,
                        "kind": 6,
                    },
                },
            )
        )
        .sort_by([common_builder.TableSortByFieldState().display_name("state")])
        .height(10)
        .span(12)
    )
    readiness = (
        statetimeline.Panel()
        .id(9)
        .title("Ready per pod")
        .description("Each replica's readiness over time: 503 from /ready is red.")
        .datasource(DATASOURCE)
        .with_target(query(f"ts_health_model_ready{{{PICK}}}", "{{pod}} {{model}} {{version}}"))
        .mappings(
            [
                ValueMap(
                    options={
                        "0": ValueMappingResult(text="not ready", color="red", index=0),
                        "1": ValueMappingResult(text="ready", color="green", index=1),
                    }
                )
            ]
        )
        .show_value(common.VisibilityMode.NEVER)
        .merge_values(True)
        .height(10)
        .span(12)
    )
    return [state_table, readiness]


def history_row() -> dashboard.Row:
    return dashboard.Row("Initialization, failures, deaths").id(102)


def history_panels() -> list[timeseries.Panel]:
    per_pod = "{{pod}} {{model}} {{version}}"
    return [
        lines(
            10,
            "Initialization time",
            "Seconds the last initialize() of each replica took, whether it succeeded or "
            "failed (ts_health_model_init_duration_seconds).",
            query(f"ts_health_model_init_duration_seconds{{{PICK}}}", per_pod),
            unit="s",
        ),
        lines(
            11,
            "Initializations failed in a row",
            "Failed initialize() attempts since the last success: above 0 while a replica "
            "is failing (init_failed) or unhealthy.",
            query(f"ts_health_model_init_consecutive_failures{{{PICK}}}", per_pod),
        ),
        lines(
            12,
            "Failed requests per second",
            "Inference requests that raised, by the READY worker processes (heartbeats).",
            query(
                "sum by (namespace, pod, model, version) "
                f"(rate(ts_health_requests_failed_total{{{PICK}}}[$__rate_interval]))",
                per_pod,
            ),
            unit="reqps",
        ),
        lines(
            13,
            "Worker deaths while serving",
            "Worker processes that ended while serving, per replica since its start (the "
            "OOM killer, a crash in native code); unstable from 3 in 10 minutes by default.",
            query(f"ts_health_worker_deaths_total{{{PICK}}}", per_pod),
        ),
    ]


def build() -> dashboard.Dashboard:
    namespace = (
        dashboard.QueryVariable("namespace")
        .label("Namespace")
        .datasource(DATASOURCE)
        .query("label_values(ts_health_model_ready, namespace)")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(VariableOption(selected=True, text="All", value="$__all"))
    )
    model = (
        dashboard.QueryVariable("model")
        .label("Model")
        .datasource(DATASOURCE)
        .query('label_values(ts_health_model_ready{namespace=~"$namespace"}, model)')
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(VariableOption(selected=True, text="All", value="$__all"))
    )
    board = (
        dashboard.Dashboard("TorchServe fleet (ts-health)")
        .uid("ts-health-fleet")
        .description(
            "Replicas of TorchServe models watched by ts-health serve: ready per model "
            "version, each pod's state and reason kind, initialization, failures and deaths. "
            "Needs the recording rules of ts-health-rules.yml (the PrometheusRule)."
        )
        .tags(["torchserve", "ts-health"])
        .editable()
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .refresh("30s")
        .time("now-1h", "now")
        .timezone("browser")
        .with_variable(
            dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus")
        )
        .with_variable(namespace)
        .with_variable(model)
        .with_row(fleet_row())
    )
    for panel in fleet_panels():
        board = board.with_panel(panel)
    board = board.with_row(replica_row())
    for each in replica_panels():
        board = board.with_panel(each)
    board = board.with_row(history_row())
    for line in history_panels():
        board = board.with_panel(line)
    return board


def text() -> str:
    return JSONEncoder(sort_keys=True, indent=2).encode(build().build()) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report a differing file")
    args = parser.parse_args(argv)
    wanted = text()
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text(encoding="utf-8") != wanted:
            print(f"{OUTPUT}: differs; run examples/grafana/generate.py")
            return 1
        return 0
    OUTPUT.write_text(wanted, encoding="utf-8")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
