"""What ``ts-health`` prints: one line or a table for people, JSON for machines."""

from __future__ import annotations

from collections.abc import Sequence

from ..monitor import ModelHealth
from ..torchserve import JobQueue

__all__ = ["health_line", "status_table"]


def health_line(health: ModelHealth) -> str:
    """``ready: model m 1.0: 1/1 workers READY, ...``"""
    return f"{health.state.value}: model {health.model} {health.version}: {health.reason}"


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
        workers, queue = health.cells(_queue_fill)
        version = health.version
        if health.default and health.model in several:
            version += " (default)"
        rows.append((health.model, version, health.state.value, workers, queue, health.reason))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        cells = [row[i].ljust(widths[i]) for i in range(5)]
        lines.append("  ".join([*cells, row[5]]).rstrip())
    return "\n".join(lines)


def _queue_fill(queue: JobQueue) -> str:
    """Requests waiting of the queue's size: ``3/100``."""
    return f"{queue.pending}/{queue.remaining + queue.pending}"
