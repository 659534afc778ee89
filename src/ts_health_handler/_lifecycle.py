"""The state words, in one module that the handler side and the probe both import.

Standard library only. Each enum is a ``str`` so that it compares equal to, and serialises
as, the word that the record, the status document and ``ts-health`` print.
"""

from __future__ import annotations

import enum

__all__ = ["CheckStatus", "HealthStatus", "InitPhase", "ModelState"]


class InitPhase(str, enum.Enum):
    """Where a model's initialization stands (the record's ``phase``)."""

    INITIALIZING = "initializing"
    READY = "ready"
    FAILED = "failed"


class HealthStatus(str, enum.Enum):
    """The first field of the status document."""

    READY = "ready"
    DEGRADED = "degraded"
    FAILED = "failed"


class CheckStatus(str, enum.Enum):
    """Outcome of the user's ``health_check()``."""

    OK = "ok"
    FAILED = "failed"
    ERROR = "error"
    TIMEOUT = "timeout"
    NOT_CONFIGURED = "not_configured"


class ModelState(str, enum.Enum):
    """The one word ``ts-health`` gives a model version; ``docs/probe.md`` has the order."""

    READY = "ready"
    INITIALIZING = "initializing"
    FAILING = "failing"
    UNHEALTHY = "unhealthy"
    #: READY to TorchServe, but every READY worker's request has run past the threshold,
    #: or its heartbeat has stopped.
    STUCK = "stuck"
    SATURATED = "saturated"
    #: Serving, but its workers died while serving too often lately (a crash loop).
    UNSTABLE = "unstable"
    DEGRADED = "degraded"
    UNREACHABLE = "unreachable"


for _public in (InitPhase, HealthStatus, CheckStatus):
    _public.__module__ = "ts_health_handler"
del _public
