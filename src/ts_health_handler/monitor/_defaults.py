"""The names and defaults of ``ts-health``'s options: environment variables, URLs, timeouts.

Apart from ``_settings`` (which resolves them and builds the client) so that the argument
parser, and with it ``--help``, imports nothing more than this. Standard library only.
"""

from __future__ import annotations

import argparse
from typing import Final

__all__ = [
    "DEFAULT_DESCRIBE_TIMEOUT",
    "DEFAULT_INFERENCE_URL",
    "DEFAULT_MANAGEMENT_URL",
    "DEFAULT_REQUEST_TIMEOUT",
    "DEFAULT_WAIT_INTERVAL",
    "ENV_DESCRIBE_TIMEOUT",
    "ENV_INFERENCE_URL",
    "ENV_KEY_FILE",
    "ENV_MANAGEMENT_URL",
    "ENV_REQUEST_TIMEOUT",
    "ENV_TOKEN",
    "positive_seconds",
]

ENV_INFERENCE_URL: Final = "TS_HEALTH_INFERENCE_URL"
ENV_MANAGEMENT_URL: Final = "TS_HEALTH_MANAGEMENT_URL"
ENV_TOKEN: Final = "TS_HEALTH_TOKEN"
ENV_KEY_FILE: Final = "TS_HEALTH_KEY_FILE"
ENV_REQUEST_TIMEOUT: Final = "TS_HEALTH_REQUEST_TIMEOUT"
ENV_DESCRIBE_TIMEOUT: Final = "TS_HEALTH_DESCRIBE_TIMEOUT"

DEFAULT_INFERENCE_URL: Final = "http://127.0.0.1:8080"
DEFAULT_MANAGEMENT_URL: Final = "http://127.0.0.1:8081"
DEFAULT_REQUEST_TIMEOUT: Final = 5.0
DEFAULT_DESCRIBE_TIMEOUT: Final = 2.0
#: Seconds between two looks of ``ts-health wait``.
DEFAULT_WAIT_INTERVAL: Final = 1.0


def positive_seconds(text: str) -> float:
    """An argparse type: a number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text!r}")
    return value
