"""The TorchServe client: the one place that asks TorchServe 0.12's REST APIs.

Standard library only, no torch, no ts: the probe imports it. The probe, ``serve`` and the
test runner all ask TorchServe through it: the probe's questions (ping, models, describe, the
customized describe) and the runner's changes (register, unregister, scale workers, infer).
Answers are parsed once into frozen types (:class:`ModelEntry`, :class:`Worker`,
:class:`JobQueue`, :class:`Keys`); every failure is a
:class:`~ts_health_handler._errors.ServerError` subclass with a one-line message:
:class:`Unreachable`, :class:`BadAnswer`, :class:`Rejected` (and its :class:`Refused`,
:class:`KeyExpired`, :class:`NotRegistered`), :class:`KeyFileError`.

What the answers mean (and the TorchServe facts behind them) lives in ``_answers``, the API
and its error answers as named exceptions in ``_api``; this module asks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, Final, Union
from urllib.parse import quote, urlencode

from .._document import StatusDoc
from .._errors import ServerError
from ._answers import (
    JobQueue,
    Keys,
    ModelEntry,
    Worker,
    model_path,
    parse_describe,
    status_from_metadata,
)
from ._api import (
    Api,
    check_done,
    check_refusal,
    check_registered,
    json_body,
    shape_error,
    unexpected,
)
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
]

#: TorchServe's largest page of ``GET /models``.
PAGE_SIZE: Final = 100
MAX_PAGES: Final = 1000
#: A query parameter's value; booleans are sent as ``true`` and ``false``.
Param = Union[str, int, float, bool]


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

    def send(
        self,
        api: Api,
        method: str,
        path: str,
        *,
        timeout: float | None = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """``method path`` on ``api`` (within ``timeout``, default :attr:`request_timeout`,
        and the deadline); any answer but a refused (or missing) token, which raises
        :class:`Refused`. A key the key file says has expired raises :class:`KeyExpired`
        without asking."""
        if api.expires_at is not None and self.wall() >= api.expires_at:
            raise KeyExpired(self._expired_text(api), key_type=api.key_type)
        wanted = self.request_timeout if timeout is None else timeout
        if self.deadline is not None:
            wanted = max(0.05, min(wanted, self.deadline - self.clock()))
        response = api.call(method, path, wanted, body=body, headers=headers)
        check_refusal(api, f"{method} {path}", response, self.token_source)
        return response

    def get(self, api: Api, path: str, timeout: float | None = None) -> Response:
        """GET ``path``, as :meth:`send`."""
        return self.send(api, "GET", path, timeout=timeout)

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
            raise unexpected(api, path, response, "200")

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
            raise unexpected(api, "/ping", response, "200 or 500")
        data = json_body(api, "/ping", response)
        status = data.get("status") if isinstance(data, dict) else None
        if not isinstance(status, str):
            raise shape_error(api, "/ping", 'an object like {"status": "Healthy"}', data)
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
                raise unexpected(api, path, response, "200")
            data = json_body(api, path, response)
            if not isinstance(data, dict) or not isinstance(data.get("models"), list):
                raise shape_error(api, path, expected, data)
            for item in data["models"]:
                if not isinstance(item, dict) or not isinstance(item.get("modelName"), str):
                    raise shape_error(api, path, expected, item)
                names.append(item["modelName"])
            next_token = data.get("nextPageToken")
            if not next_token:
                return names
            token = str(next_token)
        return names

    def describe_json(
        self,
        model: str,
        version: str | None = None,
        *,
        customized: bool = False,
        timeout: float | None = None,
    ) -> list[Any]:
        """``GET /models/{model}[/{version}][?customized=true]`` as TorchServe wrote it: a JSON
        list, one entry per version. ``timeout`` defaults to :attr:`describe_timeout` for a
        customized describe (it waits behind inference), else to :attr:`request_timeout`.

        Raises:
            NotRegistered: TorchServe does not know the model (or version).
            BadAnswer: any other answer than a JSON list.
        """
        api = self.management
        path = _describe_path(model, version, customized)
        if timeout is None and customized:
            timeout = self.describe_timeout
        response = self.get(api, path, timeout)
        check_registered(api, response, model, version)
        if response.status != 200:
            raise unexpected(api, path, response, "200")
        data = json_body(api, path, response)
        if not isinstance(data, list):
            raise shape_error(api, path, _DESCRIBE_SHAPE, data)
        return data

    def describe_all(
        self,
        model: str,
        version: str | None = None,
        *,
        customized: bool = False,
        timeout: float | None = None,
    ) -> list[ModelEntry]:
        """Every entry of :meth:`describe_json`, parsed.

        Raises:
            NotRegistered: TorchServe does not know the model (or version).
            BadAnswer: any other answer than a describe list.
        """
        data = self.describe_json(model, version, customized=customized, timeout=timeout)
        return _parsed(self.management, _describe_path(model, version, customized), data)

    def describe(
        self,
        model: str,
        version: str | None = None,
        *,
        customized: bool = False,
        timeout: float | None = None,
    ) -> ModelEntry:
        """The entry of ``version`` (else the first: the default version) of ``model``."""
        entries = self.describe_all(model, version, customized=customized, timeout=timeout)
        return _pick(entries, version)

    def customized_status(self, model: str, version: str) -> tuple[StatusDoc | None, str | None]:
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
                return None, f"customized describe answered {api.summary(response)}"
            entry = _pick(_entries(api, path, response), version)
        except Refused:
            raise
        except ServerError as exc:
            return None, f"customized describe failed: {exc}"
        return status_from_metadata(entry.customized)

    # -- changing what is served, and inference -------------------------------------------------

    def register(
        self,
        url: str,
        *,
        initial_workers: int = 1,
        synchronous: bool = True,
        timeout: float | None = None,
        **params: Param,
    ) -> Response:
        """``POST /models?url=<url>&initial_workers=...&synchronous=...``; ``params`` are more
        query parameters (``model_name``, ``batch_size``, ``response_timeout``, ...).

        ``url`` is a ``.mar`` file in the model store, or a URL.

        Returns:
            TorchServe's 2xx answer.

        Raises:
            Rejected: any other answer, which it holds (500 ``Failed to start workers`` for a
                synchronous registration whose ``initialize()`` fails, 409 for a taken name).
        """
        query = {
            "url": url,
            "initial_workers": initial_workers,
            "synchronous": synchronous,
            **params,
        }
        return self._change("POST", f"/models?{_query(query)}", timeout)

    def unregister(
        self, model: str, version: str | None = None, *, timeout: float | None = None
    ) -> Response:
        """``DELETE /models/{model}[/{version}]``.

        Raises:
            NotRegistered: TorchServe does not know the model (or version).
            Rejected: any other answer than 2xx.
        """
        return self._change("DELETE", model_path(model, version), timeout, model, version)

    def scale_workers(
        self,
        model: str,
        min_workers: int,
        max_workers: int | None = None,
        *,
        version: str | None = None,
        synchronous: bool = True,
        timeout: float | None = None,
    ) -> Response:
        """``PUT /models/{model}[/{version}]?min_worker=...&max_worker=...&synchronous=...``
        (without ``max_workers`` TorchServe takes ``min_workers``).

        Returns:
            TorchServe's answer: 200 when scaled (synchronous), 202 when accepted.

        Raises:
            NotRegistered: TorchServe does not know the model (or version).
            Rejected: any other answer than 2xx.
        """
        query: dict[str, Param] = {"min_worker": min_workers}
        if max_workers is not None:
            query["max_worker"] = max_workers
        query["synchronous"] = synchronous
        path = f"{model_path(model, version)}?{_query(query)}"
        return self._change("PUT", path, timeout, model, version)

    def infer(
        self,
        model: str,
        body: bytes = b"",
        *,
        version: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Response:
        """``POST /predictions/{model}[/{version}]`` with ``body`` (and ``headers``).

        Returns:
            The model's 2xx answer.

        Raises:
            NotRegistered: TorchServe does not know the model (or version).
            Rejected: any other answer, which it holds (the handler's error, 503 while no
                worker is ready, 507 when the job queue is full).
        """
        api = self.inference
        path = model_path(model, version, root="/predictions")
        response = self.send(api, "POST", path, timeout=timeout, body=body, headers=headers)
        check_registered(api, response, model, version)
        return check_done(api, f"POST {path}", response)

    def _change(
        self,
        method: str,
        path: str,
        timeout: float | None,
        model: str | None = None,
        version: str | None = None,
    ) -> Response:
        api = self.management
        response = self.send(api, method, path, timeout=timeout)
        if model is not None:
            check_registered(api, response, model, version)
        return check_done(api, f"{method} {path}", response)


def _pick(entries: list[ModelEntry], version: str | None) -> ModelEntry:
    for entry in entries:
        if version is None or entry.version == version:
            return entry
    return entries[0]


_DESCRIBE_SHAPE: Final = 'a list of models like [{"modelName": ..., "workers": [{"status": ...}]}]'


def _describe_path(model: str, version: str | None, customized: bool) -> str:
    return model_path(model, version) + ("?customized=true" if customized else "")


def _entries(api: Api, path: str, response: Response) -> list[ModelEntry]:
    return _parsed(api, path, json_body(api, path, response))


def _parsed(api: Api, path: str, data: Any) -> list[ModelEntry]:
    try:
        return parse_describe(data)
    except ValueError as exc:
        raise shape_error(api, path, _DESCRIBE_SHAPE, exc.args[0]) from None


def _query(params: Mapping[str, Param]) -> str:
    """``a=1&b=true``: each value URL-quoted, booleans as ``true`` and ``false``."""
    return urlencode(
        {key: str(v).lower() if isinstance(v, bool) else str(v) for key, v in params.items()}
    )
