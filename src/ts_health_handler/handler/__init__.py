"""Inside TorchServe's Python worker: the mixin, its configuration, and what it records.

``_mixin`` is :class:`HealthMixin` (the wrappers of ``initialize``, ``handle`` and the
describe), ``_handler`` :class:`HealthHandler` (the mixin on TorchServe's ``BaseHandler``),
``_function`` :func:`with_health` for function handlers, ``_config`` the ``health:`` section
of ``model-config.yml``, ``_canary`` the optional check; the rest is the bookkeeping they
share (``_tracker``, ``_requests``, ``_serving``, ``_watchdog``, ``_describe``, ...).
Each name is imported on first access: only :class:`HealthHandler` imports torch and ts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import exports

if TYPE_CHECKING:
    from ._canary import Canary, device_info
    from ._config import Faults, HealthConfig, InitFailurePolicy
    from ._function import with_health
    from ._handler import HealthHandler
    from ._mixin import HealthMixin

__all__ = [
    "Canary",
    "Faults",
    "HealthConfig",
    "HealthHandler",
    "HealthMixin",
    "InitFailurePolicy",
    "device_info",
    "with_health",
]

_HOMES = {
    "Canary": "._canary",
    "Faults": "._config",
    "HealthConfig": "._config",
    "HealthHandler": "._handler",
    "HealthMixin": "._mixin",
    "InitFailurePolicy": "._config",
    "device_info": "._canary",
    "with_health": "._function",
}

__getattr__, __dir__ = exports(__name__, _HOMES)
