"""``ts-health``: a probe that tells whether a TorchServe model is ready, and if not, why.

Standard library only; never imports torch or ts, so it starts in a few tens of
milliseconds. It merges four sources, each described in ``docs/probe.md``:

- ``GET /ping`` on the inference API (server liveness),
- ``GET /models/{name}`` on the management API (workers, job queue, ``maxRetryTimeoutInSec``),
- ``GET /models/{name}/{version}?customized=true``: our status document, asked only when a
  worker is READY and with a short timeout (TorchServe queues it behind inference),
- the initialization record that workers persist in the state directory, which still holds
  the failure reason while no worker is alive.

This package holds the commands ``ping``, ``ready``, ``status`` and ``wait`` (``_commands``)
and their text (``_render``); what they observe and judge is ``ts_health_handler.monitor``,
shared with ``ts-health serve``, and the command line above both is ``ts_health_handler.cli``.
The monitor's public names are re-exported here, each loaded on first access.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any, Final

from ..monitor._defaults import (
    DEFAULT_DESCRIBE_TIMEOUT,
    DEFAULT_INFERENCE_URL,
    DEFAULT_MANAGEMENT_URL,
    DEFAULT_REQUEST_TIMEOUT,
    ENV_DESCRIBE_TIMEOUT,
    ENV_INFERENCE_URL,
    ENV_KEY_FILE,
    ENV_MANAGEMENT_URL,
    ENV_REQUEST_TIMEOUT,
    ENV_TOKEN,
)
from ..monitor._exit import ExitCode, UsageError

if TYPE_CHECKING:
    from ..monitor._assess import Kind, ModelHealth, Observation, State, assess
    from ..monitor._observe import observe
    from ..monitor._policy import ReadinessPolicy
    from ..monitor._report import health_json
    from ..monitor._settings import Settings, client_for, resolve_settings
    from ..record import ENV_STATE_DIR
    from ._commands import COMMANDS
    from ._render import health_line, status_table

__all__ = [
    "COMMANDS",
    "DEFAULT_DESCRIBE_TIMEOUT",
    "DEFAULT_INFERENCE_URL",
    "DEFAULT_MANAGEMENT_URL",
    "DEFAULT_REQUEST_TIMEOUT",
    "ENV_DESCRIBE_TIMEOUT",
    "ENV_INFERENCE_URL",
    "ENV_KEY_FILE",
    "ENV_MANAGEMENT_URL",
    "ENV_REQUEST_TIMEOUT",
    "ENV_STATE_DIR",
    "ENV_TOKEN",
    "EXIT_BAD_ANSWER",
    "EXIT_INTERNAL",
    "EXIT_NOT_READY",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "ExitCode",
    "Kind",
    "ModelHealth",
    "Observation",
    "ReadinessPolicy",
    "Settings",
    "State",
    "UsageError",
    "assess",
    "client_for",
    "health_json",
    "health_line",
    "observe",
    "resolve_settings",
    "status_table",
]

#: Where the names not imported above live; each is imported on first access, so that
#: importing this package (as ``ts-health --help`` does) loads neither the client nor the records.
_HOMES: Final = {
    "COMMANDS": "._commands",
    "ENV_STATE_DIR": "..record",
    "Kind": "..monitor._assess",
    "ModelHealth": "..monitor._assess",
    "Observation": "..monitor._assess",
    "ReadinessPolicy": "..monitor._policy",
    "Settings": "..monitor._settings",
    "State": "..monitor._assess",
    "assess": "..monitor._assess",
    "client_for": "..monitor._settings",
    "health_json": "..monitor._report",
    "health_line": "._render",
    "observe": "..monitor._observe",
    "resolve_settings": "..monitor._settings",
    "status_table": "._render",
}

EXIT_OK: Final = ExitCode.OK
EXIT_NOT_READY: Final = ExitCode.NOT_READY
EXIT_USAGE: Final = ExitCode.USAGE
EXIT_UNREACHABLE: Final = ExitCode.UNREACHABLE
EXIT_BAD_ANSWER: Final = ExitCode.BAD_ANSWER
EXIT_INTERNAL: Final = ExitCode.INTERNAL


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(home, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
