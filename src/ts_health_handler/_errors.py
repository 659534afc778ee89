"""Named exceptions of ts-health-handler.

Every error of ours derives from :class:`HealthError`. Only at the ``handle()`` boundary is
an :class:`InferenceError` turned into TorchServe's ``PredictionException`` (see
``handler._mixin.to_prediction_exception``), so the rest of the library never imports ``ts``.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = [
    "ConfigError",
    "HealthError",
    "InferenceError",
    "InitializationError",
    "ServerError",
]


class HealthError(Exception):
    """Base class of every exception raised by ts-health-handler."""


class ConfigError(HealthError, ValueError):
    """A value in the ``health`` section of ``model-config.yml`` is invalid.

    Attributes:
        key: dotted key, e.g. ``health.on_init_failure``.
        value: the offending value as found.
        expected: what would have been accepted.
    """

    def __init__(self, key: str, value: Any, expected: str) -> None:
        self.key: Final = key
        self.value: Final = value
        self.expected: Final = expected
        super().__init__(f"invalid {key}: {value!r}; expected {expected}")


class InitializationError(HealthError, RuntimeError):
    """The model could not be initialized.

    Raise it from ``initialize()`` for a deliberate, clearly worded failure. Any other
    exception escaping ``initialize()`` is wrapped in one (the original is its
    ``__cause__``): TorchServe's Python worker only answers the frontend for
    ``RuntimeError``, any other exception kills the worker without a reply.
    """

    def __init__(self, message: str) -> None:
        self.message: Final = message
        super().__init__(message)


class InferenceError(HealthError):
    """A request failed in a controlled way and should be answered with ``status_code``.

    Attributes:
        message: text sent back to the client.
        status_code: HTTP status of the answer (400-599).
    """

    def __init__(self, message: str, status_code: int = 500) -> None:
        if (
            not isinstance(status_code, int)
            or isinstance(status_code, bool)
            or not (400 <= status_code <= 599)
        ):
            raise ValueError(
                f"invalid status_code: {status_code!r}; expected an int from 400 to 599"
            )
        self.message: Final = message
        self.status_code: Final = status_code
        super().__init__(message)


class ServerError(HealthError):
    """A TorchServe could not be archived for, started, reached, understood or stopped.

    The TorchServe client raises its subclasses (unreachable, an answer TorchServe would not
    give, a refused token, an unknown model); the message is one line and names the server.
    """


# Records and statuses name exception types by module; show the public one, not ``_errors``.
for _public in (HealthError, ConfigError, InitializationError, InferenceError):
    _public.__module__ = "ts_health_handler"
del _public
