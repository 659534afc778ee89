"""What ``ts-health`` prints: one line or a table for people, JSON for machines."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._verdict import ModelHealth

__all__ = ["health_json", "health_line", "status_table"]


def health_line(health: ModelHealth) -> str:
    """``ready: model m 1.0: 1/1 workers READY, ...``"""
    return f"{health.state.value}: model {health.model} {health.version}: {health.reason}"


def health_json(
    health: ModelHealth, allow_degraded: bool = False, allow_saturated: bool = False
) -> dict[str, Any]:
    """One model version in ``--json`` output (fields in ``docs/probe.md``)."""
    data: dict[str, Any] = {
        "model": health.model,
        "version": health.version,
        "default": health.default,
        "state": health.state.value,
        "ok": health.ok(allow_degraded, allow_saturated),
        "reason": health.reason,
    }
    seen = health.observation
    if seen is None:
        return data
    entry = seen.describe
    queue = entry.queue
    data.update(
        workers={
            "ready": entry.ready_workers,
            "total": len(entry.workers),
            "min": entry.min_workers,
            "max": entry.max_workers,
        },
        queue=None
        if queue is None
        else {"pending": queue.pending, "remaining_capacity": queue.remaining},
        max_retry_timeout_s=entry.max_retry_timeout_s,
        status=seen.status,
        status_error=seen.status_error,
        initialization=None if seen.record is None else seen.record.to_json(),
        previous_initialization=None if seen.previous is None else seen.previous.to_json(),
        record_path=seen.record_path,
        record_error=seen.record_error,
    )
    return data


def status_table(header: str, results: Sequence[ModelHealth]) -> str:
    """``header``, then one row per model version: state, workers, queue and the reason."""
    lines = [header]
    if not results:
        lines.append("no models registered")
        return "\n".join(lines)
    rows = [("MODEL", "VERSION", "STATE", "WORKERS", "QUEUE", "REASON")]
    # Mark the default version of a model listed with several versions.
    several = {h.model for h in results if not h.default}
    for health in results:
        workers = queue = "-"
        if health.observation is not None:
            entry = health.observation.describe
            workers = f"{entry.ready_workers}/{len(entry.workers)}"
            if entry.queue is not None:
                queue = f"{entry.queue.pending}/{entry.queue.remaining + entry.queue.pending}"
        version = health.version
        if health.default and health.model in several:
            version += " (default)"
        rows.append((health.model, version, health.state.value, workers, queue, health.reason))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        cells = [row[i].ljust(widths[i]) for i in range(5)]
        lines.append("  ".join([*cells, row[5]]).rstrip())
    return "\n".join(lines)
