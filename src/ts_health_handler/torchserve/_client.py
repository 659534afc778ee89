"""The TorchServe client: the one place that asks TorchServe 0.12's REST APIs.

Standard library only, no torch, no ts: the probe imports it. The probe and the test runner
both ask TorchServe through it. Answers are parsed once into frozen types (:class:`ModelEntry`,
:class:`Worker`, :class:`JobQueue`, :class:`Keys`); every failure is a
:class:`~ts_health_handler._errors.ServerError` subclass with a one-line message:
:class:`Unreachable`, :class:`BadAnswer`, :class:`Refused` (and :class:`KeyExpired`),
:class:`NotRegistered`, :class:`KeyFileError`.

What the answers mean (and the TorchServe facts behind them) lives in ``_answers``;
this module asks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, Final, NamedTuple
from urllib.parse import quote

from .._errors import ServerError
from .._text import one_line
from ._answers import (
    JobQueue,
    Keys,
    ModelEntry,
    Worker,
    model_path,
    parse_describe,
    status_from_metadata,
)
from ._errors import BadAnswer, KeyExpired, KeyFileError, NotRegistered, Refused, Unreachable
from ._http import Response, request

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
    "TorchServeClient",
    "Unreachable",
    "Worker",
    "model_path",
]

#: TorchServe's largest page of ``GET /models``.
PAGE_SIZE: Final = 100
MAX_PAGES: Final = 1000


# -- asking ----------------------------------------------------------------------------------


class Api(NamedTuple):
    """One TorchServe API (inference or management): where it is and the token it wants.

    ``repr`` leaves the token out, so that no traceback or log line can show it.
    """

    name: str
    base: str
    token: str | None = None
    #: When ``token`` stops being accepted (epoch seconds), when the key file says so.
    expires_at: float | None = None
    #: ``management`` or ``inference``: the key file's section ``token`` comes from.
    key_type: str | None = None

    def __repr__(self) -> str:
        token = "set" if self.token else "none"
        return f"Api({self.name!r}, {self.base!r}, token={token})"

    def call(self, method: str, path: str, timeout: float, body: bytes | None = None) -> Response:
        """``method path`` (relative to :attr:`base`) within ``timeout`` seconds in total.

        Raises:
            Unreachable: no answer. BadAnswer: not HTTP.
        """
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return request(
            method,
            self.base + path,
            timeout=timeout,
            headers=headers,
            body=body,
            where=f"the {self.name} at {self.base}",
        )


class TorchServeClient:
    """Questions to one TorchServe, each bounded, all within an optional ``deadline``.

    Args:
        inference, management: the two APIs, with the tokens they want.
        token_source: where the tokens came from, named when TorchServe refuses them.
        request_timeout: seconds for each plain request.
        describe_timeout: seconds for a customized describe (it waits behind inference).
        clock, deadline: a monotonic clock and the moment (on it) every answer must be in by.
        wall: the wall clock (epoch seconds), compared with the keys' expiration times.
    """

    def __init__(
        self,
        inference: Api,
        management: Api,
        *,
        token_source: str | None = None,
        request_timeout: float = 5.0,
        describe_timeout: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        deadline: float | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.inference: Final = inference
        self.management: Final = management
        self.token_source: Final = token_source
        self.request_timeout: Final = request_timeout
        self.describe_timeout: Final = describe_timeout
        self.clock: Final = clock
        self.deadline: Final = deadline
        self.wall: Final = wall

    def get(self, api: Api, path: str, timeout: float | None = None) -> Response:
        """GET ``path``; a refused (or missing) token raises :class:`Refused`, a key that
        the key file says has expired :class:`KeyExpired` (without asking)."""
        if api.expires_at is not None and self.wall() >= api.expires_at:
            raise KeyExpired(self._expired_text(api), key_type=api.key_type)
        wanted = self.request_timeout if timeout is None else timeout
        if self.deadline is not None:
            wanted = max(0.05, min(wanted, self.deadline - self.clock()))
        response = api.call("GET", path, wanted)
        _check_refusal(api, path, response, self.token_source)
        return response

    def renew_key(self, key_type: str, api_key: str) -> None:
        """Have TorchServe replace its ``key_type`` key (``GET /token?type=...`` with the API
        key); TorchServe rewrites ``key_file.json`` before it answers.

        Renewing invalidates the old key at once, for everyone who holds it.

        Raises:
            Refused: the API key was refused. Unreachable, BadAnswer: as for any request.
        """
        api = Api("management API", self.management.base, api_key)
        path = f"/token?type={quote(key_type, safe='')}"
        response = self.get(api, path)
        if response.status != 200:
            raise _unexpected(api, path, response, "200")

    def _expired_text(self, api: Api) -> str:
        kind = api.key_type or api.name
        stamp = datetime.fromtimestamp(api.expires_at or 0.0, timezone.utc)
        command = (
            f"curl -s '{self.management.base}/token?type={kind}' "
            '-H "Authorization: Bearer <the API key in the key file>"'
        )
        if kind == "management":
            how = f"renew it with {command}"
        else:
            how = f"renewing it ({command}) gives every client of the {api.name} a new key"
        return (
            f"key expired at {stamp.strftime('%Y-%m-%dT%H:%M:%SZ')}: the {kind} key from "
            f"{self.token_source or 'the key file'} (TorchServe's token_expiration_min); {how}"
        )

    def ping(self) -> tuple[bool, str]:
        """``(healthy, status text)`` of ``/ping``: 200 is healthy, 500 is not."""
        api = self.inference
        response = self.get(api, "/ping")
        if response.status not in (200, 500):
            raise _unexpected(api, "/ping", response, "200 or 500")
        data = _json(api, "/ping", response)
        status = data.get("status") if isinstance(data, dict) else None
        if not isinstance(status, str):
            raise _shape(api, "/ping", 'an object like {"status": "Healthy"}', data)
        return response.status == 200, status

    def models(self) -> list[str]:
        """Every registered model name, following ``nextPageToken``."""
        names: list[str] = []
        token: str | None = None
        api = self.management
        expected = 'an object like {"models": [{"modelName": ...}]}'
        for _ in range(MAX_PAGES):
            path = f"/models?limit={PAGE_SIZE}"
            if token:
                path += f"&next_page_token={quote(token, safe='')}"
            response = self.get(api, path)
            if response.status != 200:
                raise _unexpected(api, path, response, "200")
            data = _json(api, path, response)
            if not isinstance(data, dict) or not isinstance(data.get("models"), list):
                raise _shape(api, path, expected, data)
            for item in data["models"]:
                if not isinstance(item, dict) or not isinstance(item.get("modelName"), str):
                    raise _shape(api, path, expected, item)
                names.append(item["modelName"])
            next_token = data.get("nextPageToken")
            if not next_token:
                return names
            token = str(next_token)
        return names

    def describe_all(
        self, model: str, version: str | None = None, *, customized: bool = False
    ) -> list[ModelEntry]:
        """Every entry of ``GET /models/{model}[/{version}][?customized=true]``.

        Raises:
            NotRegistered: TorchServe does not know the model (or version).
            BadAnswer: any other answer than a describe list.
        """
        api = self.management
        path = model_path(model, version) + ("?customized=true" if customized else "")
        response = self.get(api, path, self.describe_timeout if customized else None)
        if response.status == 404:
            kind, _ = response.error_fields()
            if kind in ("ModelNotFoundException", "ModelVersionNotFoundException"):
                what = f"model {model!r}" + (f" version {version!r}" if version else "")
                raise NotRegistered(
                    f"{what} is not registered with the {api.name} at {api.base} "
                    f"({response.error_summary()})"
                )
        if response.status != 200:
            raise _unexpected(api, path, response, "200")
        return _entries(api, path, response)

    def describe(self, model: str, version: str | None = None) -> ModelEntry:
        """The entry of ``version`` (else the first: the default version) of ``model``."""
        return _pick(self.describe_all(model, version), version)

    def status_document(self, model: str, version: str) -> tuple[dict[str, Any] | None, str | None]:
        """Our status from ``?customized=true``: ``(document, None)`` or ``(None, why not)``.

        Never raises for the answer: a busy worker, a handler without ``HealthMixin`` or a
        broken answer leaves the status unknown, which is not a failure. A refused token
        still raises :class:`Refused`: the caller must hear of it.
        """
        api = self.management
        path = model_path(model, version) + "?customized=true"
        try:
            response = self.get(api, path, self.describe_timeout)
            if response.status != 200:
                return None, f"customized describe answered {response.error_summary()}"
            entry = _pick(_entries(api, path, response), version)
        except Refused:
            raise
        except ServerError as exc:
            return None, f"customized describe failed: {exc}"
        return status_from_metadata(entry.customized)


def _pick(entries: list[ModelEntry], version: str | None) -> ModelEntry:
    for entry in entries:
        if version is None or entry.version == version:
            return entry
    return entries[0]


def _entries(api: Api, path: str, response: Response) -> list[ModelEntry]:
    try:
        return parse_describe(_json(api, path, response))
    except ValueError as exc:
        expected = 'a list of models like [{"modelName": ..., "workers": [{"status": ...}]}]'
        raise _shape(api, path, expected, exc.args[0]) from None


def _json(api: Api, path: str, response: Response) -> Any:
    try:
        return json.loads(response.body)
    except ValueError:
        snippet = one_line(response.body[:80].decode("utf-8", "replace"), 80)
        raise BadAnswer(
            f"the {api.name} at {api.base} answered GET {path} with {response.status} "
            f"and a body that is not JSON: {snippet!r}"
        ) from None


def _shape(api: Api, path: str, expected: str, got: Any) -> BadAnswer:
    shown = one_line(json.dumps(got), 80)
    return BadAnswer(
        f"the {api.name} at {api.base} answered GET {path} with {shown}; expected {expected}"
    )


def _unexpected(api: Api, path: str, response: Response, expected: str) -> BadAnswer:
    hint = ""
    if response.status == 404:
        hint = f"; is {api.base} TorchServe's {api.name} address?"
    return BadAnswer(
        f"the {api.name} at {api.base} answered GET {path} with "
        f"{one_line(response.error_summary(), 300)}; expected {expected}{hint}"
    )


def _check_refusal(api: Api, path: str, response: Response, source: str | None) -> None:
    """Raise :class:`Refused` when TorchServe refused (or wanted) a token."""
    if response.status < 400:
        return
    kind, _ = response.error_fields()
    if kind != "InvalidKeyException" and response.status not in (401, 403):
        return
    summary = one_line(response.error_summary(), 300)
    if api.token is None:
        raise Refused(
            f"the {api.name} at {api.base} wants a token for GET {path} ({summary})",
            missing=True,
        )
    raise Refused(
        f"the {api.name} at {api.base} refused the token from {source} for GET {path} "
        f"({summary}); keys change when TorchServe restarts or expire"
    )
