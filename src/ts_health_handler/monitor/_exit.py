"""Exit codes of ``ts-health`` and the one mapping from an error to its code."""

from __future__ import annotations

import enum
from typing import Final

from .._errors import HealthError
from ..torchserve import BadAnswer, KeyExpired, Refused, Unreachable

__all__ = ["ExitCode", "UsageError", "exit_code_for", "label_for", "message_for"]


class ExitCode(enum.IntEnum):
    """What ``ts-health`` returns; the same list is in ``--help`` and ``docs/probe.md``."""

    OK = 0
    #: The model (or server) answered and is not ready, unhealthy, or ``wait`` gave up.
    NOT_READY = 1
    #: Bad arguments or configuration: unknown option, bad URL, unreadable key file, token
    #: refused, unknown model.
    USAGE = 2
    #: No answer: connection refused or reset, timeout, unknown host.
    UNREACHABLE = 3
    #: An answer, but not one TorchServe gives: not HTTP, not JSON, wrong shape, odd status.
    BAD_ANSWER = 4
    #: A bug in the probe; the message says what went wrong.
    INTERNAL = 5
    INTERRUPTED = 130


class UsageError(HealthError):
    """A bad option, environment variable or combination of them."""


_LABELS: Final = {
    ExitCode.USAGE: "error",
    ExitCode.UNREACHABLE: "unreachable",
    ExitCode.BAD_ANSWER: "bad answer",
}


def exit_code_for(error: HealthError) -> ExitCode:
    """The exit code of an error: unreachable 3, a bad answer 4, anything else usage 2.

    Usage covers our own :class:`UsageError` and what the client raises when the fix is in
    the caller's hands: a refused token, an unreadable key file, a model not registered.
    """
    if isinstance(error, Unreachable):
        return ExitCode.UNREACHABLE
    if isinstance(error, BadAnswer):
        return ExitCode.BAD_ANSWER
    return ExitCode.USAGE


def message_for(error: HealthError) -> str:
    """The error's message as ``ts-health`` prints it: the client's words, then the option
    that fixes the error where there is one (the client itself names no option: the test
    runner uses it too)."""
    text = str(error)
    if isinstance(error, KeyExpired):
        return f"{text}, or pass --renew-key" if error.key_type == "management" else text
    if isinstance(error, Refused) and error.missing:
        return (
            f"{text}; pass --key-file with TorchServe's key_file.json (written in its working "
            "directory) or --token"
        )
    return text


def label_for(code: ExitCode) -> str:
    """The word before an error message on stderr."""
    return _LABELS.get(code, "error")
