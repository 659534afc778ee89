"""``ts-health``: a probe that tells whether a TorchServe model is ready, and if not, why.

Standard library only; never imports torch or ts, so it starts in a few tens of
milliseconds. It merges four sources, each described in ``docs/probe.md``:

- ``GET /ping`` on the inference API (server liveness),
- ``GET /models/{name}`` on the management API (workers, job queue, ``maxRetryTimeoutInSec``),
- ``GET /models/{name}/{version}?customized=true``: our status document, asked only when a
  worker is READY and with a short timeout (TorchServe queues it behind inference),
- the initialization record that workers persist in the state directory, which still holds
  the failure reason while no worker is alive.

The package is split along its ideas: ``_settings`` (options), ``_commands`` (asking through
the shared TorchServe client), ``_verdict`` (the pure :func:`assess`), ``_render`` (text and
JSON), ``_cli`` (parsing and exit codes, :class:`ExitCode`).
"""

from __future__ import annotations

from typing import Final

from .._state import ENV_STATE_DIR
from ._cli import build_parser, main, run
from ._commands import COMMANDS, Io, observe
from ._exit import ExitCode, UsageError
from ._render import health_json, health_line, status_table
from ._settings import (
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
    Settings,
    client_for,
    resolve_settings,
)
from ._verdict import ModelHealth, Observation, State, assess

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
    "Io",
    "ModelHealth",
    "Observation",
    "Settings",
    "State",
    "UsageError",
    "assess",
    "build_parser",
    "client_for",
    "health_json",
    "health_line",
    "main",
    "observe",
    "resolve_settings",
    "run",
    "status_table",
]

EXIT_OK: Final = ExitCode.OK
EXIT_NOT_READY: Final = ExitCode.NOT_READY
EXIT_USAGE: Final = ExitCode.USAGE
EXIT_UNREACHABLE: Final = ExitCode.UNREACHABLE
EXIT_BAD_ANSWER: Final = ExitCode.BAD_ANSWER
EXIT_INTERNAL: Final = ExitCode.INTERNAL
