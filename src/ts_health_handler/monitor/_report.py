"""What a look at TorchServe reports to machines: the JSON of ``status --json`` and its exit code.

Shared by ``ts-health`` (probe) and ``ts-health serve`` (``/status``); pure functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._lifecycle import ModelState
from ._assess import ModelHealth
from ._exit import ExitCode
from ._observe import PingResult
from ._policy import READY_ONLY, ReadinessPolicy
from ._settings import Settings

__all__ = [
    "health_json",
    "model_exit_code",
    "model_json",
    "model_ok",
    "status_code",
    "status_json",
    "unreachable_document",
]


def health_json(health: ModelHealth, policy: ReadinessPolicy = READY_ONLY) -> dict[str, Any]:
    """One model version in ``--json`` output (fields in ``docs/probe.md``); ``ok`` as the
    readiness ``policy`` says."""
    data: dict[str, Any] = {
        "model": health.model,
        "version": health.version,
        "default": health.default,
        "state": health.state.value,
        "ok": policy.admits(health.state),
        "reason": health.reason,
        "kind": health.kind.value,
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
        heartbeats=[b.to_json() for b in seen.beats],
    )
    return data


def model_ok(health: ModelHealth, settings: Settings) -> bool:
    return settings.readiness.admits(health.state)


def model_json(health: ModelHealth, settings: Settings) -> dict[str, Any]:
    return health_json(health, settings.readiness)


def model_exit_code(health: ModelHealth, settings: Settings) -> ExitCode:
    if model_ok(health, settings):
        return ExitCode.OK
    return ExitCode.UNREACHABLE if health.state is ModelState.UNREACHABLE else ExitCode.NOT_READY


def status_code(
    ping: PingResult, results: Sequence[ModelHealth], settings: Settings, complete: bool = True
) -> int:
    """The exit code of ``status``: unreachable wins, then the worst of the others; not ready
    at least when ``results`` lack a model (not ``complete``)."""
    codes = [ping.code, *(model_exit_code(h, settings) for h in results)]
    if not complete:
        codes.append(ExitCode.NOT_READY)
    return ExitCode.UNREACHABLE if ExitCode.UNREACHABLE in codes else max(codes)


def status_json(
    settings: Settings, ping: PingResult, results: Sequence[ModelHealth], complete: bool = True
) -> dict[str, Any]:
    """The ``status --json`` document (fields in ``docs/probe.md``); ``ts-health serve``
    answers ``/status`` with it too, not ``complete`` while a watched model has not been
    observed (or its observation failed)."""
    return {
        "command": "status",
        "exit_code": status_code(ping, results, settings, complete),
        "server": {
            "inference_url": settings.inference_url,
            "management_url": settings.management_url,
            "ping": None
            if ping.status is None
            else {"healthy": ping.healthy, "status": ping.status},
            "ping_error": ping.error,
        },
        "models": [model_json(h, settings) for h in results],
    }


def unreachable_document(
    settings: Settings, ping: PingResult, error: str, code: ExitCode = ExitCode.UNREACHABLE
) -> dict[str, Any]:
    """The ``status --json`` document when the models cannot be listed: the management API
    is unreachable (``code``), or, in ``ts-health serve``, has not been asked yet."""
    return {
        "command": "status",
        "exit_code": code,
        "server": {
            "inference_url": settings.inference_url,
            "management_url": settings.management_url,
            "ping": None if ping.status is None else {"status": ping.status},
            "ping_error": ping.error,
            "management_error": error,
        },
        "models": [],
    }
