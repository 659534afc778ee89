"""The state words, in one module that the handler side and the probe both import.

Standard library only. Each enum is a ``str`` so that it compares equal to, and serialises
as, the word that the record, the status document and ``ts-health`` print.
"""

from __future__ import annotations

import enum

__all__ = [
    "CheckStatus",
    "HealthStatus",
    "InitPhase",
    "ModelState",
    "ReasonKind",
    "ServingMode",
]


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


class ServingMode(str, enum.Enum):
    """How TorchServe 0.12 hands requests to a model's handler (from ``model-config.yml``)."""

    #: One ``handle()`` call per batch, one at a time (``ts/service.py``); streaming and
    #: micro-batching are shapes of it.
    DEFAULT = "default"
    #: ``asyncCommunication: true``: ``await handle()``, many batches in flight at once
    #: (``ts/async_service.py``).
    ASYNC = "async"
    #: ``continuousBatching: true``: one request spans several ``handle()`` calls, until its
    #: ``context.stopping_criteria`` says stop.
    CONTINUOUS = "continuous"
    #: ``sequenceBatching: true``: stateful sessions; TorchServe routes no describe to them.
    SEQUENCE = "sequence"
    #: ``sequenceBatching`` and ``continuousBatching`` together.
    SEQUENCE_CONTINUOUS = "sequence_continuous"

    @property
    def routes_describe(self) -> bool:
        """Whether TorchServe 0.12 sends a customized describe to such a worker at all."""
        return self not in (ServingMode.SEQUENCE, ServingMode.SEQUENCE_CONTINUOUS)

    @property
    def spans_calls(self) -> bool:
        """Whether one request may span several ``handle()`` calls."""
        return self in (ServingMode.CONTINUOUS, ServingMode.SEQUENCE_CONTINUOUS)


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


class ReasonKind(str, enum.Enum):
    """What a verdict's reason is about, in a word from a fixed vocabulary.

    The reason is a line of live text (counts, queue sizes, exception messages); its kind
    is one of these words, so that metrics can carry it as a label without making a new
    series each time a number changes. ``docs/serve.md`` lists them with their states.
    """

    #: ``ready``: READY workers, nothing wrong.
    OK = "ok"
    #: ``initializing``: no READY worker yet and no failed attempt.
    LOADING = "loading"
    #: ``initializing``: initialized before, and a worker is starting again (after a death).
    RESTARTING = "restarting"
    #: ``failing``: initialization failed and TorchServe retries it (or the handler holds it).
    INIT_FAILED = "init_failed"
    #: ``unhealthy``: initialization kept failing for ``maxRetryTimeoutInSec``.
    RETRY_WINDOW_PASSED = "retry_window_passed"
    #: ``unhealthy``: ``/ping`` says Unhealthy while initialization fails.
    PING_UNHEALTHY = "ping_unhealthy"
    #: ``unhealthy``: no workers at all (``minWorkers`` 0).
    NO_WORKERS = "no_workers"
    #: ``stuck``: every READY worker's request has run past ``stuck_after_s``.
    REQUEST_STUCK = "request_stuck"
    #: ``stuck``: every READY worker's heartbeat stopped.
    HEARTBEAT_STOPPED = "heartbeat_stopped"
    #: ``failing``: every READY worker's last requests failed.
    REQUESTS_FAILING = "requests_failing"
    #: ``failing``: a fatal error (a CUDA device-side assert...) on every READY worker.
    FATAL_ERROR = "fatal_error"
    #: ``saturated``: the job queue is full.
    QUEUE_FULL = "queue_full"
    #: ``unstable``: workers died while serving too often lately.
    DEATHS = "deaths"
    #: ``degraded``: the user's ``health_check()`` failed, raised or timed out.
    CHECK_FAILED = "check_failed"
    #: ``unreachable``: TorchServe did not answer.
    UNREACHABLE = "unreachable"
    #: A verdict built without a kind (by hand, outside ``assess``).
    UNKNOWN = "unknown"


for _public in (InitPhase, HealthStatus, CheckStatus):
    _public.__module__ = "ts_health_handler"
del _public
