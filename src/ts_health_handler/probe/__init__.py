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
The monitor's public names are re-exported here; each name is imported on first access, so
that importing this package (as ``ts-health --help`` does) loads neither the client nor the
records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import exports

if TYPE_CHECKING:
    from .._lifecycle import ModelState, ReasonKind
    from ..monitor import (
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
        ExitCode,
        ModelHealth,
        Observation,
        ReadinessPolicy,
        Settings,
        UsageError,
        assess,
        client_for,
        health_json,
        observe,
        observe_model,
        resolve_settings,
    )
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
    "ExitCode",
    "ModelHealth",
    "ModelState",
    "Observation",
    "ReadinessPolicy",
    "ReasonKind",
    "Settings",
    "UsageError",
    "assess",
    "client_for",
    "health_json",
    "health_line",
    "observe",
    "observe_model",
    "resolve_settings",
    "status_table",
]

_HOMES = {
    **dict.fromkeys(
        (
            "DEFAULT_DESCRIBE_TIMEOUT",
            "DEFAULT_INFERENCE_URL",
            "DEFAULT_MANAGEMENT_URL",
            "DEFAULT_REQUEST_TIMEOUT",
            "ENV_DESCRIBE_TIMEOUT",
            "ENV_INFERENCE_URL",
            "ENV_KEY_FILE",
            "ENV_MANAGEMENT_URL",
            "ENV_REQUEST_TIMEOUT",
            "ENV_TOKEN",
            "ExitCode",
            "ModelHealth",
            "Observation",
            "ReadinessPolicy",
            "Settings",
            "UsageError",
            "assess",
            "client_for",
            "health_json",
            "observe",
            "observe_model",
            "resolve_settings",
        ),
        "..monitor",
    ),
    "ENV_STATE_DIR": "..record",
    "ModelState": ".._lifecycle",
    "ReasonKind": ".._lifecycle",
    "COMMANDS": "._commands",
    "health_line": "._render",
    "status_table": "._render",
}

__getattr__, __dir__ = exports(__name__, _HOMES)
