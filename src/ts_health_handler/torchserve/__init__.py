"""The one way to ask TorchServe: its inference and management APIs, their answers, errors.

Standard library only. ``_http`` is the only module that speaks HTTP (over a socket of its
own), ``_api`` one API's address, keys and refusals, ``_answers`` the parsed answers (describe,
key file), ``_errors`` the named errors, ``_client`` the :class:`TorchServeClient` above them.
Each name is imported on first access: ``ts-health --help`` imports the errors and no socket.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import exports

if TYPE_CHECKING:
    from ._answers import JobQueue, Keys, ModelEntry, Worker, model_path, status_from_metadata
    from ._api import Api
    from ._client import TorchServeClient
    from ._errors import (
        BadAnswer,
        KeyExpired,
        KeyFileError,
        NotRegistered,
        Refused,
        Rejected,
        Unreachable,
    )
    from ._http import Response

__all__ = [
    "Api",
    "BadAnswer",
    "JobQueue",
    "KeyExpired",
    "KeyFileError",
    "Keys",
    "ModelEntry",
    "NotRegistered",
    "Refused",
    "Rejected",
    "Response",
    "TorchServeClient",
    "Unreachable",
    "Worker",
    "model_path",
    "status_from_metadata",
]

_HOMES = {
    "Api": "._api",
    "BadAnswer": "._errors",
    "JobQueue": "._answers",
    "KeyExpired": "._errors",
    "KeyFileError": "._errors",
    "Keys": "._answers",
    "ModelEntry": "._answers",
    "NotRegistered": "._errors",
    "Refused": "._errors",
    "Rejected": "._errors",
    "Response": "._http",
    "TorchServeClient": "._client",
    "Unreachable": "._errors",
    "Worker": "._answers",
    "model_path": "._answers",
    "status_from_metadata": "._answers",
}

__getattr__, __dir__ = exports(__name__, _HOMES)
