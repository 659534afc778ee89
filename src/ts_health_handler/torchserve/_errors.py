"""What can go wrong when asking TorchServe: the client's exceptions, in a module of their own.

Each is a :class:`~ts_health_handler._errors.ServerError` with a one-line message naming the
server. They live apart from ``_http`` and ``_client`` so that code which only names them
(the exit codes of ``ts-health``, its ``--help``) imports neither.

The messages speak of TorchServe, never of a command's options: the client serves the
probe, ``ts-health serve`` and the test runner alike. What a command line can add (the
option that fixes the error) it reads from the attributes, e.g. :attr:`Refused.missing`
(``monitor._exit.message_for``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from .._errors import ServerError

if TYPE_CHECKING:
    from ._http import Response

__all__ = [
    "BadAnswer",
    "KeyExpired",
    "KeyFileError",
    "NotRegistered",
    "Refused",
    "Rejected",
    "Unreachable",
]


class Unreachable(ServerError):
    """No answer: connection refused or reset, timeout, unknown host."""


class BadAnswer(ServerError):
    """An answer, but not one TorchServe gives: not HTTP, not JSON, the wrong shape."""


class Rejected(ServerError):
    """TorchServe answered with an error status: it understood the request and turned it down
    (a model whose workers fail to start, a taken name, a model answering with an error).

    Attributes:
        response: TorchServe's answer; ``None`` when nothing was sent (:class:`KeyExpired`).
    """

    def __init__(self, message: str, response: Response | None = None) -> None:
        super().__init__(message)
        self.response: Final = response


class Refused(Rejected):
    """TorchServe wanted a token, or refused the one sent.

    Attributes:
        missing: no token was sent: TorchServe wants one.
    """

    def __init__(
        self, message: str, response: Response | None = None, *, missing: bool = False
    ) -> None:
        super().__init__(message, response)
        self.missing: Final = missing


class KeyExpired(Refused):
    """The key file says the key an API wants has expired; nothing was sent.

    Attributes:
        key_type: the key file's section the key is from: ``management`` or ``inference``
            (``None``: not known).
    """

    def __init__(self, message: str, *, key_type: str | None = None) -> None:
        super().__init__(message)
        self.key_type: Final = key_type


class NotRegistered(Rejected):
    """The model (or version) asked about is not registered."""


class KeyFileError(ServerError):
    """TorchServe's ``key_file.json`` is missing, not JSON, or lacks a key."""
