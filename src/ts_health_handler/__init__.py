"""Honest, machine-readable health for TorchServe models.

Add :class:`HealthMixin` before your handler's base class::

    class MyHandler(HealthMixin, BaseHandler): ...

Every public name is loaded on first access, so that ``import ts_health_handler`` (and the
``ts-health`` probe, which runs every few seconds) stays fast and never imports torch or ts;
:class:`HealthHandler` alone imports them, since it subclasses TorchServe's ``BaseHandler``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import exports
from ._version import __version__

if TYPE_CHECKING:
    from ._errors import ConfigError, HealthError, InferenceError, InitializationError
    from ._lifecycle import CheckStatus, HealthStatus, InitPhase, ServingMode
    from .handler import (
        Canary,
        Faults,
        HealthConfig,
        HealthHandler,
        HealthMixin,
        InitFailurePolicy,
        device_info,
        with_health,
    )
    from .record import ErrorInfo, InitRecord, RecordError, StateStore, resolve_state_dir

__all__ = [
    "Canary",
    "CheckStatus",
    "ConfigError",
    "ErrorInfo",
    "Faults",
    "HealthConfig",
    "HealthError",
    "HealthHandler",
    "HealthMixin",
    "HealthStatus",
    "InferenceError",
    "InitFailurePolicy",
    "InitPhase",
    "InitRecord",
    "InitializationError",
    "RecordError",
    "ServingMode",
    "StateStore",
    "__version__",
    "device_info",
    "resolve_state_dir",
    "with_health",
]

_HOMES = {
    "Canary": ".handler",
    "CheckStatus": "._lifecycle",
    "ConfigError": "._errors",
    "ErrorInfo": ".record",
    "Faults": ".handler",
    "HealthConfig": ".handler",
    "HealthError": "._errors",
    "HealthHandler": ".handler",
    "HealthMixin": ".handler",
    "HealthStatus": "._lifecycle",
    "InferenceError": "._errors",
    "InitFailurePolicy": ".handler",
    "InitPhase": "._lifecycle",
    "InitRecord": ".record",
    "InitializationError": "._errors",
    "RecordError": ".record",
    "ServingMode": "._lifecycle",
    "StateStore": ".record",
    "device_info": ".handler",
    "resolve_state_dir": ".record",
    "with_health": ".handler",
}


__getattr__, __dir__ = exports(__name__, _HOMES)
