"""A running TorchServe, as tests and demos see it: its addresses, keys, logs and REST helpers.

Standard library only; nothing of torch or ts is imported. :func:`~._runner.serve` starts
the server and yields a :class:`TorchServe`; its REST helpers ask through the shared
:class:`~ts_health_handler.torchserve._client.TorchServeClient`, so the runner and the probe
ask TorchServe, and read its answers, alike::

    from ts_health_handler.testing import archive_model, serve

    mar = archive_model(Path("handler.py"), "my_model", store, config_file=Path("model-config.yml"))
    with serve(store) as server:
        server.register(mar.name)
        assert server.ping() == (200, {"status": "Healthy"})
        status = server.status_document("my_model")

TorchServe 0.12.0 facts the helpers rely on (checked against the real server):

- ``POST /models?synchronous=true`` for a model whose ``initialize()`` fails answers 500
  ``Failed to start workers`` at once and leaves the model registered with no worker and no
  retries. Register failing models with ``synchronous=False`` to watch TorchServe's retries.
- A failing worker is restarted after 1, 1, 2, 3, 5, 8, 13, ... s (Fibonacci, capped at
  1597 s). ``/ping`` stays ``200 {"status": "Healthy"}`` while every model has at least
  ``minWorkers`` workers that are alive or within ``maxRetryTimeoutInSec`` (model-config.yml,
  default 300) of their first failure; after that it answers ``500 {"status": "Unhealthy"}``
  and TorchServe stops restarting that worker.
- Keys expire after ``token_expiration_min`` (default 60) minutes. Every inference-port
  request, ``/ping`` included, needs ``Authorization: Bearer <inference key>`` (without it:
  400 ``InvalidKeyException``); the management port needs the management key; the metrics
  port needs none.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar, cast
from urllib.parse import urlsplit

from .._errors import ServerError
from .._text import clip
from ..record import StateStore
from ..torchserve import (
    Api,
    Keys,
    ModelEntry,
    Rejected,
    Response,
    TorchServeClient,
    status_from_metadata,
)

__all__ = [
    "HttpResponse",
    "ServerError",
    "Tokens",
    "TorchServe",
    "WaitTimeout",
    "tail",
    "wait_for",
]

_T = TypeVar("_T")

#: Lines of a log kept in an error message.
TAIL_LINES: Final = 40
LOG_FILE: Final = "ts_log.log"
CONSOLE_FILE: Final = "torchserve-console.log"
KEY_FILE: Final = "key_file.json"

#: The keys of a server started with token authorization (from ``key_file.json``).
Tokens = Keys
#: A status, headers and body; HTTP errors are answers too, not exceptions.
HttpResponse = Response


class WaitTimeout(ServerError, TimeoutError):
    """:func:`wait_for` gave up; the message says what was awaited and what was last seen."""


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of a text file, or a note saying why there are none."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return f"<{path}: {exc.strerror or exc}>"
    kept = text.splitlines()[-lines:]
    return "\n".join(kept) if kept else f"<{path} is empty>"


def wait_for(
    condition: Callable[[], _T | None],
    *,
    timeout: float,
    interval: float = 0.25,
    what: str = "condition",
) -> _T:
    """Call ``condition`` until it returns something truthy, and return that.

    Polls every ``interval`` seconds for at most ``timeout`` seconds; exceptions raised by
    ``condition`` count as "not yet" (the last one is reported).

    Raises:
        WaitTimeout: naming ``what`` and the last value or exception seen.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            value = condition()
        except Exception as exc:  # "not yet": e.g. connection refused while starting
            last = f"{type(exc).__name__}: {exc}"
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:g} s waiting for {what}; last: {last!r}")
        time.sleep(interval)


@dataclass(frozen=True)
class TorchServe:
    """A running server started by :func:`serve`, with helpers for its REST APIs."""

    inference_url: str
    management_url: str
    metrics_url: str
    log_dir: Path
    model_store: Path
    #: Pid of the ``torchserve`` process started, also the id of its process group (the Java
    #: frontend and the Python workers belong to it).
    pid: int
    token: Tokens | None = None
    workdir: Path = Path()
    temp_dir: Path = Path()
    config_file: Path = Path()
    #: ``$TS_HEALTH_STATE_DIR`` of the server's workers: where handlers without
    #: ``health.state_dir`` persist their ``init.json``.
    state_dir: Path = Path()

    def init_record_path(self, name: str, version: str = "1.0") -> Path:
        """The record file of a model version under :attr:`state_dir`: the newest of the
        version's ``init.<server>.json`` files (this server's, unless another server shares
        the state directory and wrote later); ``init.json`` when there is none yet."""
        store = StateStore(self.state_dir, name, version)
        files = store.files()
        return files[0] if files else store.path

    # -- HTTP ---------------------------------------------------------------------------------

    @property
    def client(self) -> TorchServeClient:
        """The TorchServe client of this server, with its keys (the helpers ask through it)."""
        return TorchServeClient(
            self._api(self.inference_url),
            self._api(self.management_url),
            token_source=f"key file {self.workdir / KEY_FILE}" if self.token else None,
        )

    def _api(self, url: str, auth: bool = True) -> Api:
        """The API ``url`` belongs to, with the key it needs (none for metrics)."""
        token = self.token if auth else None
        if url.startswith(self.management_url):
            key = token.management if token else None
            return Api("management API", self.management_url, key, key_type="management")
        if url.startswith(self.inference_url):
            key = token.inference if token else None
            return Api("inference API", self.inference_url, key, key_type="inference")
        if url.startswith(self.metrics_url):
            return Api("metrics API", self.metrics_url)
        parts = urlsplit(url)
        return Api("server", f"{parts.scheme}://{parts.netloc}")

    def auth_headers(self, url: str) -> dict[str, str]:
        """The ``Authorization`` header ``url`` needs (none for metrics or without tokens)."""
        return self._api(url).auth_headers()

    def request(
        self,
        method: str,
        url: str,
        *,
        data: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        auth: bool = True,
    ) -> Response:
        """Send one request; the Bearer token is added when the server needs one.

        Args:
            url: a full URL (e.g. ``server.inference_url + "/ping"``).
            auth: ``False`` sends no token (to see what an unauthenticated client gets).

        Raises:
            ServerError: no HTTP answer (connection refused, reset, timed out), or not HTTP.
        """
        body = data.encode("utf-8") if isinstance(data, str) else data
        api = self._api(url, auth)
        return api.call(method, url[len(api.base) :], timeout, body=body, headers=headers)

    # -- inference API -------------------------------------------------------------------------

    def ping(self, *, timeout: float = 10.0) -> tuple[int, Any]:
        """``GET /ping``: ``(status, parsed body)``, e.g. ``(200, {"status": "Healthy"})``."""
        answer = self.request("GET", f"{self.inference_url}/ping", timeout=timeout)
        try:
            return answer.status, json.loads(answer.body)
        except ValueError:
            return answer.status, answer.text

    def infer(
        self,
        name: str,
        data: bytes | str = b"",
        *,
        version: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> Response:
        """``POST /predictions/{name}[/{version}]`` with ``data`` as the body: the answer,
        whatever its status."""
        body = data.encode("utf-8") if isinstance(data, str) else data
        return _answer(
            lambda: self.client.infer(name, body, version=version, headers=headers, timeout=timeout)
        )

    # -- management API ------------------------------------------------------------------------

    def register(
        self,
        mar_name: str,
        *,
        initial_workers: int = 1,
        synchronous: bool = True,
        timeout: float = 180.0,
        check: bool = True,
        **params: str | int | float | bool,
    ) -> Response:
        """``POST /models?url=<mar_name>&initial_workers=...&synchronous=...``.

        ``mar_name`` is a file in the model store (or a URL). Extra keyword arguments become
        query parameters (``model_name``, ``batch_size``, ``response_timeout``, ...).

        TorchServe 0.12 answers a synchronous registration of a model whose ``initialize()``
        fails with 500 at once and then does not retry that worker; use ``synchronous=False``
        for failing models.

        Raises:
            ServerError: with ``check`` (the default), when the answer is not 2xx.
        """
        return _answer(
            lambda: self.client.register(
                mar_name,
                initial_workers=initial_workers,
                synchronous=synchronous,
                timeout=timeout,
                **params,
            ),
            check,
            lambda answer: (
                f"registering {mar_name} failed: HTTP {answer.status} "
                f"{answer.text.strip()}\n--- {LOG_FILE} (tail) ---\n{self.log_tail()}"
            ),
        )

    def unregister(
        self,
        name: str,
        *,
        version: str | None = None,
        timeout: float = 120.0,
        check: bool = True,
    ) -> Response:
        """``DELETE /models/{name}[/{version}]``.

        Raises:
            ServerError: with ``check`` (the default), when the answer is not 2xx.
        """
        return _answer(
            lambda: self.client.unregister(name, version, timeout=timeout),
            check,
            lambda answer: f"unregistering {name} failed: HTTP {answer.status} {answer.text}",
        )

    def scale_workers(
        self,
        name: str,
        min_workers: int,
        max_workers: int | None = None,
        *,
        version: str | None = None,
        synchronous: bool = True,
        timeout: float = 120.0,
        check: bool = True,
    ) -> Response:
        """``PUT /models/{name}[/{version}]?min_worker=...&max_worker=...&synchronous=...``
        (without ``max_workers`` TorchServe takes ``min_workers``): 200 once scaled, 202 when
        accepted (``synchronous=False``).

        Raises:
            ServerError: with ``check`` (the default), when the answer is not 2xx.
        """
        return _answer(
            lambda: self.client.scale_workers(
                name,
                min_workers,
                max_workers,
                version=version,
                synchronous=synchronous,
                timeout=timeout,
            ),
            check,
            lambda answer: f"scaling {name} failed: HTTP {answer.status} {answer.text.strip()}",
        )

    def describe(
        self,
        name: str,
        *,
        version: str | None = None,
        customized: bool = False,
        timeout: float = 30.0,
    ) -> list[dict[str, Any]]:
        """``GET /models/{name}[/{version}][?customized=true]``, parsed (a list, one per version).

        A customized describe goes through the model's worker and never answers while no worker
        is alive: ``timeout`` bounds the wait.

        Raises:
            ServerError: no answer within ``timeout``, a non-200 answer or no JSON list.
        """
        return self.client.describe_json(name, version, customized=customized, timeout=timeout)

    def status_document(
        self, name: str, *, version: str | None = None, timeout: float = 30.0
    ) -> dict[str, Any]:
        """The handler's status document: ``customizedMetadata`` of a customized describe.

        Accepts both the JSON object TorchServe 0.12 sends and the JSON string of older ones.

        Raises:
            ServerError: as :meth:`describe`, or when there is no JSON object to return.
        """
        entry = self.client.describe(name, version, customized=True, timeout=timeout)
        metadata = entry.customized
        document, why = status_from_metadata(metadata)
        if document is None:
            raise ServerError(f"{name}: {why}: {clip(repr(metadata), 500)}")
        return cast("dict[str, Any]", document)

    def worker_statuses(self, name: str, *, version: str | None = None) -> list[str]:
        """The ``status`` of each worker of the model (``READY``, ``UNLOADING``, ...)."""
        entry = self.client.describe(name, version, timeout=30.0)
        return [w.status for w in entry.workers]

    def wait_until_ready(
        self, name: str, *, version: str | None = None, workers: int = 1, timeout: float = 120.0
    ) -> list[dict[str, Any]]:
        """Poll describe until ``workers`` workers of the model are ``READY``; return describe.

        Raises:
            WaitTimeout: not ready in time (the message holds the tail of ``ts_log.log``).
        """

        def ready() -> list[dict[str, Any]] | None:
            entries = self.describe(name, version=version)
            entry = ModelEntry.from_json(entries[0]) if entries else None
            return entries if entry is not None and entry.ready_workers >= workers else None

        try:
            return wait_for(ready, timeout=timeout, what=f"{workers} READY worker(s) of {name}")
        except WaitTimeout as exc:
            raise WaitTimeout(f"{exc}\n--- {LOG_FILE} (tail) ---\n{self.log_tail()}") from None

    # -- logs ---------------------------------------------------------------------------------

    def log_tail(self, name: str = LOG_FILE, lines: int = TAIL_LINES) -> str:
        """The last ``lines`` lines of a log in :attr:`log_dir` (``model_log.log``, ...)."""
        return tail(self.log_dir / name, lines)


def _answer(
    call: Callable[[], Response],
    check: bool = False,
    failed: Callable[[Response], str] | None = None,
) -> Response:
    """The answer of a client ``call``, also when TorchServe turned the request down; with
    ``check``, a turned-down request raises the client's exception again, worded by ``failed``.
    """
    try:
        return call()
    except Rejected as exc:
        if exc.response is None:
            raise
        if not check:
            return exc.response
        message = failed(exc.response) if failed is not None else str(exc)
        raise type(exc)(message, exc.response) from None
