"""``/metrics``: the snapshot in Prometheus text format, through ``prometheus_client``.

Names follow Prometheus conventions (prefix ``ts_health_``, base units, ``_total`` for
counters); ``docs/serve.md`` lists them. A collector reads the snapshot it is given, so a
scrape costs no request to TorchServe.

Every label holds a bounded value: the model and version names, a state word, a reason kind
(``ReasonKind``), a kind of question. The reason's text, with its live numbers, stays in
``/status`` and the page: as a label it would make a new series whenever a count changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Final

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from .._lifecycle import ModelState
from ..monitor import ModelHealth, ReadinessPolicy
from ._history import Track
from ._options import ServeOptions
from ._readiness import Readiness, watched
from ._snapshot import ModelSeen, Snapshot

__all__ = ["CONTENT_TYPE", "metrics_text"]

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
VERSION_LABELS: Final = ["model", "version"]


class _SnapshotCollector(Collector):
    def __init__(
        self,
        snapshot: Snapshot,
        options: ServeOptions,
        policy: ReadinessPolicy,
        now: float,
        wall: float,
    ) -> None:
        self.snapshot = snapshot
        self.options = options
        self.policy = policy
        self.now = now
        self.wall = wall

    def collect(self) -> Iterator[Metric]:
        """The families of every listed model version, then those of the server."""
        snapshot, now = self.snapshot, self.now
        versions = [(seen, health) for seen in snapshot.listed() for health in seen.healths]
        by_version = {
            (v.model, v.version): v for v in watched(snapshot, self.options, self.policy, now)
        }
        yield from _state_metrics(versions, by_version)
        yield from _worker_metrics(versions)
        yield from _age_metrics(versions, snapshot.tracks, now, self.wall)
        yield from _counter_metrics(versions)
        yield from _server_metrics(snapshot, now)


#: Each model version as listed, with the model's observation it belongs to.
_Versions = list[tuple[ModelSeen, ModelHealth]]


def _state_metrics(
    versions: _Versions, by_version: Mapping[tuple[str, str | None], Readiness]
) -> Iterable[Metric]:
    """Each version's state (one sample per state word), reason kind and readiness."""
    state = GaugeMetricFamily(
        "ts_health_model_state",
        "1 for the state the model version is in, 0 for the others.",
        labels=[*VERSION_LABELS, "state"],
    )
    reason = GaugeMetricFamily(
        "ts_health_model_reason",
        "Always 1; the labels hold the state and what its reason is about (a word of a "
        "fixed vocabulary). The reason's text is in /status.",
        labels=[*VERSION_LABELS, "state", "kind"],
    )
    ready = GaugeMetricFamily(
        "ts_health_model_ready",
        "1 when /v2/models/{name}/versions/{version}/ready answers 200.",
        labels=VERSION_LABELS,
    )
    for _, health in versions:
        labels = [health.model, health.version]
        for word in ModelState:
            state.add_metric([*labels, word.value], 1.0 if word is health.state else 0.0)
        reason.add_metric([*labels, health.state.value, health.kind.value], 1.0)
        readiness = by_version.get((health.model, health.version))
        ready.add_metric(labels, 1.0 if readiness and readiness.ready else 0.0)
    return state, reason, ready


def _worker_metrics(versions: _Versions) -> Iterable[Metric]:
    """The workers and the initialization record of each version that was observed."""
    workers = GaugeMetricFamily(
        "ts_health_model_ready_workers", "Workers in state READY.", labels=VERSION_LABELS
    )
    all_workers = GaugeMetricFamily(
        "ts_health_model_workers", "Workers of any state.", labels=VERSION_LABELS
    )
    failures = GaugeMetricFamily(
        "ts_health_model_init_consecutive_failures",
        "Initializations failed in a row since the last success (persisted record).",
        labels=VERSION_LABELS,
    )
    init_time = GaugeMetricFamily(
        "ts_health_model_init_duration_seconds",
        "Seconds the last initialize() took, whether it succeeded or failed (persisted record).",
        labels=VERSION_LABELS,
    )
    for _, health in versions:
        observed = health.observation
        if observed is None:
            continue
        labels = [health.model, health.version]
        workers.add_metric(labels, float(observed.describe.ready_workers))
        all_workers.add_metric(labels, float(len(observed.describe.workers)))
        record = observed.record
        count = record.consecutive_failures if record is not None else 0
        failures.add_metric(labels, float(count))
        if record is not None and record.last_duration_s is not None:
            init_time.add_metric(labels, record.last_duration_s)
    return workers, all_workers, failures, init_time


def _age_metrics(
    versions: _Versions, tracks: Mapping[tuple[str, str], Track], now: float, wall: float
) -> Iterable[Metric]:
    """How long each version has been in its state, and since it was last observed."""
    since = GaugeMetricFamily(
        "ts_health_model_state_age_seconds",
        "Seconds since the model version entered its state (as seen by ts-health serve).",
        labels=VERSION_LABELS,
    )
    age = GaugeMetricFamily(
        "ts_health_model_observation_age_seconds",
        "Seconds since the model version was last observed.",
        labels=VERSION_LABELS,
    )
    for seen, health in versions:
        labels = [health.model, health.version]
        track = tracks.get((health.model, health.version))
        if track is not None:
            since.add_metric(labels, max(0.0, wall - track.since))
        age.add_metric(labels, max(0.0, now - seen.at))
    return since, age


def _counter_metrics(versions: _Versions) -> Iterable[Metric]:
    """Worker deaths (record) and requests (heartbeats) of each version that was observed."""
    deaths = CounterMetricFamily(
        "ts_health_worker_deaths",
        "Worker processes that ended while serving (found by their successor; record).",
        labels=VERSION_LABELS,
    )
    requests = CounterMetricFamily(
        "ts_health_requests",
        "Inference requests seen by the READY worker processes (heartbeats; restarts at 0 "
        "with a new process).",
        labels=VERSION_LABELS,
    )
    failed = CounterMetricFamily(
        "ts_health_requests_failed",
        "Inference requests that raised, by the READY worker processes (heartbeats).",
        labels=VERSION_LABELS,
    )
    for _, health in versions:
        observed = health.observation
        if observed is None:
            continue
        labels = [health.model, health.version]
        record = observed.record
        died = record.deaths_total if record is not None else 0
        deaths.add_metric(labels, float(died))
        requests.add_metric(labels, float(sum(b.requests for b in observed.beats)))
        failed.add_metric(labels, float(sum(b.failed for b in observed.beats)))
    return deaths, requests, failed


def _server_metrics(snapshot: Snapshot, now: float) -> Iterable[Metric]:
    up = GaugeMetricFamily(
        "ts_health_torchserve_up", "1 when TorchServe's /ping last answered 200 Healthy."
    )
    ping = snapshot.ping
    up.add_metric([], 1.0 if ping is not None and ping.healthy else 0.0)
    yield up
    ping_age = GaugeMetricFamily(
        "ts_health_ping_observation_age_seconds", "Seconds since /ping last answered."
    )
    answered = snapshot.ping_at if snapshot.ping_at is not None else snapshot.started
    ping_age.add_metric([], max(0.0, now - answered))
    yield ping_age
    listing_age = GaugeMetricFamily(
        "ts_health_models_observation_age_seconds",
        "Seconds since the model list was last read (or since start, before the first).",
    )
    listed = snapshot.names_at if snapshot.names_at is not None else snapshot.started
    listing_age.add_metric([], max(0.0, now - listed))
    yield listing_age
    observations = CounterMetricFamily(
        "ts_health_observations",
        "Questions to TorchServe answered, by kind (ping, models, model).",
        labels=["kind"],
    )
    errors = CounterMetricFamily(
        "ts_health_observation_errors",
        "Questions to TorchServe that failed, by kind.",
        labels=["kind"],
    )
    for kind in ("ping", "models", "model"):
        observations.add_metric([kind], float(snapshot.observations.get(kind, 0)))
        errors.add_metric([kind], float(snapshot.errors.get(kind, 0)))
    yield observations
    yield errors


def metrics_text(
    snapshot: Snapshot, options: ServeOptions, policy: ReadinessPolicy, now: float, wall: float
) -> bytes:
    """The Prometheus exposition of ``snapshot`` at monotonic ``now`` (epoch ``wall``)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(snapshot, options, policy, now, wall))
    return generate_latest(registry)
