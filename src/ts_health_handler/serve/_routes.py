"""Which path answers what: every answer of ``ts-health serve`` as a pure function.

``answer(request, view)`` reads only the request and a :class:`View` (the snapshot, the
options and the time), so the unit tests call it without a socket. Readiness and liveness
paths are open to anyone (kubelet sends no token); ``/status``, ``/metrics`` and ``/`` need
the bearer token when one is configured, and without it the open paths leave out reasons.

No answer shows a token or a key, whatever TorchServe answered: every body passes the
redaction of the other commands' output (:func:`~.._text.redact`), in HTML's escaping too.
"""

from __future__ import annotations

import dataclasses
import hmac
import html
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote

from .._text import REDACTED, secret_forms
from ..monitor import (
    ExitCode,
    PingResult,
    ReadinessPolicy,
    Settings,
    status_json,
    unreachable_document,
)
from ._metrics import CONTENT_TYPE, metrics_text
from ._options import ServeOptions
from ._page import page_html
from ._readiness import Readiness, liveness, model_ready, server_ready
from ._snapshot import Snapshot

__all__ = ["Answer", "Request", "View", "answer", "error_answer"]

JSON: Final = "application/json"
METHODS: Final = ("GET", "HEAD")


@dataclass(frozen=True)
class Request:
    """What routing needs of an HTTP request."""

    method: str
    target: str
    authorization: str | None = None


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status, content type, body and extra headers."""

    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class View:
    """What the answers are computed from: one snapshot, at one moment."""

    snapshot: Snapshot
    settings: Settings
    options: ServeOptions
    now: float
    wall: float
    #: Tokens and keys in use: no answer shows them.
    secrets: tuple[str, ...] = ()

    @property
    def policy(self) -> ReadinessPolicy:
        """Which states count as ready (``--allow-degraded``, ``--allow-saturated``)."""
        return self.settings.readiness


def _json(status: int, data: Any, *headers: tuple[str, str]) -> Answer:
    body = json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8") + b"\n"
    return Answer(status, JSON, body, headers)


def error_answer(status: int, message: str, *headers: tuple[str, str]) -> Answer:
    """``{"error": message}``, the error object of the Open Inference Protocol."""
    return _json(status, {"error": message}, *headers)


def _authorized(request: Request, options: ServeOptions) -> bool:
    if options.auth_token is None:
        return True
    header = request.authorization or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(token.strip().encode(), options.auth_token.encode())


def _unauthorized() -> Answer:
    return error_answer(
        401,
        "this path needs the bearer token of --auth-token-file",
        ("WWW-Authenticate", 'Bearer realm="ts-health"'),
    )


def _ready(view: View, reasons: bool) -> Answer:
    ready, reason, unready = server_ready(view.snapshot, view.options, view.policy, view.now)
    data: dict[str, Any] = {"ready": ready}
    if reasons:
        data["reason"] = reason
    data["unready"] = [v.json(reasons=reasons) for v in unready]
    return _json(200 if ready else 503, data)


def _live(view: View, reasons: bool) -> Answer:
    live = liveness(view.snapshot, view.options, view.now)
    data: dict[str, Any] = {"live": live.live}
    if reasons:
        data["reason"] = live.reason
    return _json(200 if live.live else 503, data)


def _model(view: View, reasons: bool, name: str, version: str | None) -> Answer:
    readiness: Readiness | None = model_ready(
        view.snapshot, view.options, view.policy, view.now, name, version
    )
    if readiness is None:
        what = f"model {name!r}" + (f" version {version!r}" if version else "")
        return error_answer(404, f"{what} is not registered")
    data: dict[str, Any] = {"name": name, "ready": readiness.ready}
    data.update(version=readiness.version, state=readiness.state)
    if reasons:
        data["reason"] = readiness.reason
    return _json(200 if readiness.ready else 503, data)


def _status(view: View) -> Answer:
    """``ts-health status --json`` from the snapshot: what is not known yet is not ok."""
    snapshot = view.snapshot
    ping = snapshot.ping or PingResult(error="no /ping answer yet")
    if snapshot.names is None:
        if snapshot.names_error is None:
            document = unreachable_document(
                view.settings, ping, "no observation yet", ExitCode.NOT_READY
            )
        else:
            document = unreachable_document(view.settings, ping, snapshot.names_error)
        return _json(200, document)
    complete = all(
        (seen := snapshot.models.get(name)) is not None and seen.error is None
        for name in snapshot.names
    )
    return _json(200, status_json(view.settings, ping, snapshot.healths(), complete))


def _split(path: str) -> list[str] | None:
    """The path's segments, each percent-decoded (so ``%2F`` stays inside its segment);
    ``None`` when a segment is not valid UTF-8."""
    try:
        return [unquote(part, errors="strict") for part in path.split("/")[1:]]
    except UnicodeDecodeError:
        return None


Handler = Callable[[View, bool], Answer]


#: The server-wide paths: ours and the Open Inference Protocol's answer alike.
OPEN: Final[dict[str, Handler]] = {
    "/ready": _ready,
    "/live": _live,
    "/v2/health/ready": _ready,
    "/v2/health/live": _live,
}


PROTECTED: Final[dict[str, Callable[[View], Answer]]] = {
    "/status": _status,
    "/metrics": lambda v: Answer(
        200,
        CONTENT_TYPE,
        metrics_text(v.snapshot, v.options, v.policy, v.now, v.wall),
    ),
    "/": lambda v: Answer(
        200, "text/html; charset=utf-8", page_html(v.snapshot, v.settings, v.options, v.now, v.wall)
    ),
}


def _find(path: str) -> Callable[[View, bool], Answer] | str | None:
    """The handler of ``path``; ``None`` when there is none; a string for a bad path."""
    fixed = OPEN.get(path)
    if fixed is not None:
        return fixed
    protected = PROTECTED.get(path)
    if protected is not None:
        return lambda view, _reasons: protected(view)
    parts = _split(path)
    if parts is None:
        return "the path is not valid UTF-8 once percent-decoded"
    if len(parts) in (4, 6) and parts[:2] == ["v2", "models"] and parts[-1] == "ready":
        name = parts[2]
        version = parts[4] if len(parts) == 6 else None
        if len(parts) == 6 and parts[3] != "versions":
            return None
        if not name or version == "":
            return None
        return lambda view, reasons: _model(view, reasons, name, version)
    return None


def answer(request: Request, view: View) -> Answer:
    """The answer to ``request``: 404 for an unknown path, 405 for a method other than GET
    or HEAD, 401 without the token where one is needed; any secret of the view redacted."""
    return redacted(_answer(request, view), view.secrets)


def redacted(found: Answer, secrets: tuple[str, ...]) -> Answer:
    """``found`` with every secret in its body as ``<redacted>``: as written, inside a JSON
    string (``/status``, the readiness answers, a metric's label) and HTML-escaped (``/``)."""
    body = found.body
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret:
            for form in {*secret_forms(secret), html.escape(secret, quote=True)}:
                body = body.replace(form.encode("utf-8"), REDACTED.encode("ascii"))
    return found if body == found.body else dataclasses.replace(found, body=body)


def _answer(request: Request, view: View) -> Answer:
    path = request.target.split("?", 1)[0]
    if not path.startswith("/"):
        return error_answer(400, "the request target must be a path starting with /")
    handler = _find(path)
    if isinstance(handler, str):
        return error_answer(400, handler)
    if handler is None:
        return error_answer(404, f"no such path; see {_PATHS}")
    if request.method not in METHODS:
        return error_answer(405, "only GET and HEAD", ("Allow", "GET, HEAD"))
    authorized = _authorized(request, view.options)
    if path in PROTECTED and not authorized:
        return _unauthorized()
    return handler(view, authorized)


_PATHS: Final = (
    "/live, /ready, /v2/health/live, /v2/health/ready, /v2/models/{name}/ready, "
    "/v2/models/{name}/versions/{version}/ready, /status, /metrics, /"
)
