"""``ts-health serve``: per-model readiness over HTTP, Prometheus metrics, a status page.

A small long-running server that observes one TorchServe in the background (through the
shared client and the probe's verdict) and answers from its latest observation:
``/live``, ``/ready``, the Open Inference Protocol's health paths, ``/status`` (the document
of ``ts-health status --json``), ``/metrics`` and ``/``. See ``docs/serve.md``.

Imported only by ``ts-health serve``: the other commands stay standard-library only.
The package is split along its ideas: ``_options``, ``_observer`` (the background loop) with
``_snapshot`` and ``_history``, ``_readiness`` (pure readiness answers), ``_routes`` (pure
answers), ``_metrics``, ``_page``, ``_http_server`` (the listener) and ``_command``.
"""

from __future__ import annotations

from ._command import HealthApp, cmd_serve
from ._observer import Observer
from ._options import (
    DEFAULT_INTERVAL,
    DEFAULT_LISTEN,
    DEFAULT_STALE_AFTER,
    ENV_SERVE_TOKEN,
    ServeOptions,
)
from ._routes import Answer, Request, View, answer
from ._snapshot import ModelSeen, Snapshot

__all__ = [
    "DEFAULT_INTERVAL",
    "DEFAULT_LISTEN",
    "DEFAULT_STALE_AFTER",
    "ENV_SERVE_TOKEN",
    "Answer",
    "HealthApp",
    "ModelSeen",
    "Observer",
    "Request",
    "ServeOptions",
    "Snapshot",
    "View",
    "answer",
    "cmd_serve",
]
