"""Honest, machine-readable health for TorchServe models.

Add :class:`HealthMixin` before your handler's base class::

    class MyHandler(HealthMixin, BaseHandler): ...

Every public name is loaded on first access, so that ``import ts_health_handler`` (and the
``ts-health`` probe, which runs every few seconds) stays fast and never imports torch or ts;
:class:`HealthHandler` alone imports them, since it subclasses TorchServe's ``BaseHandler``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from ._errors import ConfigError, HealthError, InferenceError, InitializationError
    from ._lifecycle import CheckStatus, HealthStatus, InitPhase, ServingMode
    from .handler._canary import Canary, device_info
    from .handler._config import Faults, HealthConfig, InitFailurePolicy
    from .handler._function import with_health
    from .handler._handler import HealthHandler
    from .handler._mixin import HealthMixin
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
    "Canary": ".handler._canary",
    "CheckStatus": "._lifecycle",
    "ConfigError": "._errors",
    "ErrorInfo": ".record",
    "Faults": ".handler._config",
    "HealthConfig": ".handler._config",
    "HealthError": "._errors",
    "HealthHandler": ".handler._handler",
    "HealthMixin": ".handler._mixin",
    "HealthStatus": "._lifecycle",
    "InferenceError": "._errors",
    "InitFailurePolicy": ".handler._config",
    "InitPhase": "._lifecycle",
    "InitRecord": ".record",
    "InitializationError": "._errors",
    "RecordError": ".record",
    "ServingMode": "._lifecycle",
    "StateStore": ".record",
    "device_info": ".handler._canary",
    "resolve_state_dir": ".record",
    "with_health": ".handler._function",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(home, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
