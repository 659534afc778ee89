"""One TorchServe API, and what its answers mean when they are not what was asked for.

Standard library only. :class:`Api` is where an API is and the token it wants; the checks turn
an answer into the client's named exceptions: :class:`Refused` (and :class:`KeyExpired`) for a
token, :class:`NotRegistered` for an unknown model, :class:`Rejected` for any other error
status, :class:`~._http.BadAnswer` for an answer TorchServe would not give.
"""

# No `from __future__ import annotations`: typing would compile each named-tuple field's
# annotation when ts-health starts (docs/architecture.md, "Start-up").
import json
from collections.abc import Mapping
from typing import Any, Final, NamedTuple, Optional

from .._text import one_line, redact
from ._errors import BadAnswer, KeyExpired, NotRegistered, Refused, Rejected
from ._http import Response, request

__all__ = [
    "Api",
    "KeyExpired",
    "NotRegistered",
    "Refused",
    "Rejected",
    "check_done",
    "check_refusal",
    "check_registered",
    "json_body",
    "shape_error",
    "unexpected",
]

#: TorchServe's error types for an unknown model or version.
NOT_FOUND: Final = ("ModelNotFoundException", "ModelVersionNotFoundException")


class Api(NamedTuple):
    """One TorchServe API (inference or management): where it is and the token it wants.

    ``repr`` leaves the token out, so that no traceback or log line can show it.
    """

    name: str
    base: str
    token: Optional[str] = None
    #: When ``token`` stops being accepted (epoch seconds), when the key file says so.
    expires_at: Optional[float] = None
    #: ``management`` or ``inference``: the key file's section ``token`` comes from.
    key_type: Optional[str] = None

    def __repr__(self) -> str:
        token = "set" if self.token else "none"
        return f"Api({self.name!r}, {self.base!r}, token={token})"

    def auth_headers(self) -> dict[str, str]:
        """The ``Authorization`` header :attr:`token` goes in (none without a token)."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def call(
        self,
        method: str,
        path: str,
        timeout: float,
        body: Optional[bytes] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> Response:
        """``method path`` (relative to :attr:`base`) within ``timeout`` seconds in total; any
        answer, error statuses included. ``headers`` are sent too (and may replace the token's).

        Raises:
            Unreachable: no answer. BadAnswer: not HTTP.
        """
        return request(
            method,
            self.base + path,
            timeout=timeout,
            headers={**self.auth_headers(), **(headers or {})},
            body=body,
            where=f"the {self.name} at {self.base}",
        )

    def quote(self, text: str, limit: int) -> str:
        """``text`` of an answer as a message quotes it: one line of at most ``limit``
        characters, the token this API is sent as ``<redacted>`` (a server echoing the
        request shows it), replaced before the text is cut, which could split it."""
        return one_line(redact(text, self._secrets()), limit)

    def summary(self, response: Response) -> str:
        """``response``'s :meth:`~Response.error_summary`, quoted as :meth:`quote` does."""
        return self.quote(response.error_summary(self._secrets()), 300)

    def _secrets(self) -> tuple[str, ...]:
        return (self.token,) if self.token else ()


def json_body(api: Api, path: str, response: Response) -> Any:
    try:
        return json.loads(response.body)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than Python goes
        snippet = api.quote(response.text, 80)
        raise BadAnswer(
            f"the {api.name} at {api.base} answered GET {path} with {response.status} "
            f"and a body that is not JSON: {snippet!r}"
        ) from None


def shape_error(api: Api, path: str, expected: str, got: Any) -> BadAnswer:
    try:
        shown = api.quote(json.dumps(got), 80)
    except (ValueError, RecursionError):  # parsed, but nested too deep to be written again
        shown = f"a {type(got).__name__} nested too deep to show"
    return BadAnswer(
        f"the {api.name} at {api.base} answered GET {path} with {shown}; expected {expected}"
    )


def unexpected(api: Api, path: str, response: Response, expected: str) -> BadAnswer:
    hint = ""
    if response.status == 404:
        hint = f"; is {api.base} TorchServe's {api.name} address?"
    return BadAnswer(
        f"the {api.name} at {api.base} answered GET {path} with "
        f"{api.summary(response)}; expected {expected}{hint}"
    )


def check_refusal(api: Api, asked: str, response: Response, source: Optional[str]) -> None:
    """Raise :class:`Refused` when TorchServe refused (or wanted) a token for ``asked``
    (``GET /ping``)."""
    if response.status < 400:
        return
    kind, _ = response.error_fields()
    if kind != "InvalidKeyException" and response.status not in (401, 403):
        return
    summary = api.summary(response)
    if api.token is None:
        raise Refused(
            f"the {api.name} at {api.base} wants a token for {asked} ({summary})",
            response,
            missing=True,
        )
    raise Refused(
        f"the {api.name} at {api.base} refused the token from {source} for {asked} "
        f"({summary}); keys change when TorchServe restarts or expire",
        response,
    )


def check_registered(api: Api, response: Response, model: str, version: Optional[str]) -> None:
    """Raise :class:`NotRegistered` when TorchServe answered that it does not know the model."""
    if response.status != 404:
        return
    kind, _ = response.error_fields()
    if kind in NOT_FOUND:
        what = f"model {model!r}" + (f" version {version!r}" if version else "")
        raise NotRegistered(
            f"{what} is not registered with the {api.name} at {api.base} ({api.summary(response)})",
            response,
        )


def check_done(api: Api, asked: str, response: Response) -> Response:
    """``response`` when it is 2xx, else :class:`Rejected` with it."""
    if 200 <= response.status < 300:
        return response
    raise Rejected(
        f"the {api.name} at {api.base} answered {asked} with {api.summary(response)}",
        response,
    )
