"""What the probe and ``ts-health serve`` share: observe a version, match its record, judge.

Standard library only. ``_observe`` gathers one look (``/ping``, describe, the customized
describe, the records and beats), ``_match`` picks the current record, ``_assess`` judges
(with ``_serving`` for after READY and ``_guard`` for when not to ask), ``_report`` writes the
JSON, ``_exit`` the exit codes, ``_policy`` which states count as ready, ``_settings`` and
``_defaults`` the command line's settings, ``_output`` how a command writes.
Each name is imported on first access: ``ts-health --help`` needs the defaults alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import exports

if TYPE_CHECKING:
    from ._assess import ModelHealth, Observation, assess
    from ._defaults import (
        DEFAULT_DESCRIBE_TIMEOUT,
        DEFAULT_INFERENCE_URL,
        DEFAULT_LISTEN,
        DEFAULT_MANAGEMENT_URL,
        DEFAULT_REQUEST_TIMEOUT,
        DEFAULT_SERVE_INTERVAL,
        DEFAULT_STALE_AFTER,
        DEFAULT_STATE_DIR_SHOWN,
        DEFAULT_WAIT_INTERVAL,
        ENV_DESCRIBE_TIMEOUT,
        ENV_INFERENCE_URL,
        ENV_KEY_FILE,
        ENV_MANAGEMENT_URL,
        ENV_REQUEST_TIMEOUT,
        ENV_SERVE_TOKEN,
        ENV_STATE_DIR,
        ENV_TOKEN,
        positive_seconds,
    )
    from ._exit import ExitCode, UsageError, exit_code_for, label_for, message_for
    from ._observe import PingResult, ask_ping, observe, observe_model
    from ._output import Io
    from ._policy import READY_ONLY, ReadinessPolicy
    from ._report import (
        health_json,
        model_exit_code,
        model_json,
        model_ok,
        status_json,
        unreachable_document,
    )
    from ._settings import Settings, client_for, resolve_settings

__all__ = [
    "DEFAULT_DESCRIBE_TIMEOUT",
    "DEFAULT_INFERENCE_URL",
    "DEFAULT_LISTEN",
    "DEFAULT_MANAGEMENT_URL",
    "DEFAULT_REQUEST_TIMEOUT",
    "DEFAULT_SERVE_INTERVAL",
    "DEFAULT_STALE_AFTER",
    "DEFAULT_STATE_DIR_SHOWN",
    "DEFAULT_WAIT_INTERVAL",
    "ENV_DESCRIBE_TIMEOUT",
    "ENV_INFERENCE_URL",
    "ENV_KEY_FILE",
    "ENV_MANAGEMENT_URL",
    "ENV_REQUEST_TIMEOUT",
    "ENV_SERVE_TOKEN",
    "ENV_STATE_DIR",
    "ENV_TOKEN",
    "READY_ONLY",
    "ExitCode",
    "Io",
    "ModelHealth",
    "Observation",
    "PingResult",
    "ReadinessPolicy",
    "Settings",
    "UsageError",
    "ask_ping",
    "assess",
    "client_for",
    "exit_code_for",
    "health_json",
    "label_for",
    "message_for",
    "model_exit_code",
    "model_json",
    "model_ok",
    "observe",
    "observe_model",
    "positive_seconds",
    "resolve_settings",
    "status_json",
    "unreachable_document",
]

_HOMES = {
    **dict.fromkeys(
        (
            "DEFAULT_DESCRIBE_TIMEOUT",
            "DEFAULT_INFERENCE_URL",
            "DEFAULT_LISTEN",
            "DEFAULT_MANAGEMENT_URL",
            "DEFAULT_REQUEST_TIMEOUT",
            "DEFAULT_SERVE_INTERVAL",
            "DEFAULT_STALE_AFTER",
            "DEFAULT_STATE_DIR_SHOWN",
            "DEFAULT_WAIT_INTERVAL",
            "ENV_DESCRIBE_TIMEOUT",
            "ENV_INFERENCE_URL",
            "ENV_KEY_FILE",
            "ENV_MANAGEMENT_URL",
            "ENV_REQUEST_TIMEOUT",
            "ENV_SERVE_TOKEN",
            "ENV_STATE_DIR",
            "ENV_TOKEN",
            "positive_seconds",
        ),
        "._defaults",
    ),
    **dict.fromkeys(("ModelHealth", "Observation", "assess"), "._assess"),
    **dict.fromkeys(
        ("ExitCode", "UsageError", "exit_code_for", "label_for", "message_for"), "._exit"
    ),
    **dict.fromkeys(("PingResult", "ask_ping", "observe", "observe_model"), "._observe"),
    "Io": "._output",
    **dict.fromkeys(("READY_ONLY", "ReadinessPolicy"), "._policy"),
    **dict.fromkeys(
        (
            "health_json",
            "model_exit_code",
            "model_json",
            "model_ok",
            "status_json",
            "unreachable_document",
        ),
        "._report",
    ),
    **dict.fromkeys(("Settings", "client_for", "resolve_settings"), "._settings"),
}

__getattr__, __dir__ = exports(__name__, _HOMES)
