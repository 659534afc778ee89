"""The names and defaults of ``ts-health``'s options: environment variables, URLs, timeouts.

Every command's, ``serve``'s included, in this one module: the argument parser writes
``--help`` with them, ``_settings`` and ``serve._options`` resolve the options with them.
Apart from ``_settings`` (which resolves them and builds the client) so that the argument
parser, and with it ``--help``, imports nothing more than this and ``_state_dir`` (the state
directory's variable, which the worker reads too). Standard library only.
"""

from __future__ import annotations

import argparse
from typing import Final

from .._state_dir import ENV_STATE_DIR

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
    "positive_seconds",
]

ENV_INFERENCE_URL: Final = "TS_HEALTH_INFERENCE_URL"
ENV_MANAGEMENT_URL: Final = "TS_HEALTH_MANAGEMENT_URL"
ENV_TOKEN: Final = "TS_HEALTH_TOKEN"
ENV_KEY_FILE: Final = "TS_HEALTH_KEY_FILE"
ENV_REQUEST_TIMEOUT: Final = "TS_HEALTH_REQUEST_TIMEOUT"
ENV_DESCRIBE_TIMEOUT: Final = "TS_HEALTH_DESCRIBE_TIMEOUT"
#: ``ts-health serve``'s bearer token, when ``--auth-token-file`` is not given.
ENV_SERVE_TOKEN: Final = "TS_HEALTH_SERVE_TOKEN"
# ENV_STATE_DIR (imported above) is the worker's too: it lives in ``_state_dir``, below both.

DEFAULT_INFERENCE_URL: Final = "http://127.0.0.1:8080"
DEFAULT_MANAGEMENT_URL: Final = "http://127.0.0.1:8081"
DEFAULT_REQUEST_TIMEOUT: Final = 5.0
DEFAULT_DESCRIBE_TIMEOUT: Final = 2.0
#: The state directory when neither ``--state-dir`` nor ``$TS_HEALTH_STATE_DIR`` names one, as
#: ``--help`` shows it: ``record.resolve_state_dir()``'s ``ts-health`` in the system's
#: temporary directory.
DEFAULT_STATE_DIR_SHOWN: Final = "<tmp>/ts-health"
#: Seconds between two looks of ``ts-health wait``.
DEFAULT_WAIT_INTERVAL: Final = 1.0
#: Where ``ts-health serve`` listens.
DEFAULT_LISTEN: Final = "127.0.0.1:8090"
#: Seconds between two observations of ``ts-health serve`` (``serve.DEFAULT_INTERVAL``).
DEFAULT_SERVE_INTERVAL: Final = 2.0
#: Age (seconds) of an observation after which ``ts-health serve``'s readiness answers 503.
DEFAULT_STALE_AFTER: Final = 10.0


def positive_seconds(text: str) -> float:
    """An argparse type: a number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text!r}")
    return value
