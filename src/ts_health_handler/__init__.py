"""Honest, machine-readable health for TorchServe models.

Add :class:`HealthMixin` before your handler's base class::

    class MyHandler(HealthMixin, BaseHandler): ...

Importing this package never imports torch or ts; :class:`HealthHandler` (which subclasses
TorchServe's ``BaseHandler``) is loaded on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._config import Faults, HealthConfig, InitFailurePolicy
from ._errors import ConfigError, HealthError, InferenceError, InitializationError
from ._mixin import HealthMixin
from ._state import ErrorInfo, InitPhase, InitRecord, RecordError, StateStore, resolve_state_dir
from ._status import CheckStatus, HealthStatus
from ._version import __version__

if TYPE_CHECKING:
    from ._handler import HealthHandler

__all__ = [
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
    "StateStore",
    "__version__",
    "resolve_state_dir",
]


def __getattr__(name: str) -> Any:
    # HealthHandler subclasses ts' BaseHandler, which imports torch: load it only on demand.
    if name == "HealthHandler":
        from ._handler import HealthHandler

        return HealthHandler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
