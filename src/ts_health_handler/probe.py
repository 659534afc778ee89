"""``ts-health``: a probe that tells whether a TorchServe model is ready, and if not, why.

Standard library only; never imports torch or ts, so it starts in a few tens of
milliseconds. It merges four sources, each described in ``docs/probe.md``:

- ``GET /ping`` on the inference API (server liveness),
- ``GET /models/{name}`` on the management API (workers, job queue, ``maxRetryTimeoutInSec``),
- ``GET /models/{name}/{version}?customized=true``: our status document, asked only when a
  worker is READY and with a short timeout (TorchServe queues it behind inference),
- the initialization record that workers persist in the state directory, which still holds
  the failure reason while no worker is alive.

Exit codes: 0 ok, 1 not ready, 2 usage or configuration error, 3 unreachable, 4 an answer
TorchServe would not give, 5 internal error.
"""

from __future__ import annotations

import argparse
import enum
import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final
from urllib.parse import quote

from ._http import (
    EXIT_BAD_ANSWER,
    EXIT_NOT_READY,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    Api,
    ProbeError,
    Response,
    check_base_url,
)
from ._state import (
    ENV_STATE_DIR,
    InitRecord,
    RecordError,
    StateStore,
    parse_iso,
    resolve_state_dir,
)

__all__ = [
    "EXIT_BAD_ANSWER",
    "EXIT_INTERNAL",
    "EXIT_NOT_READY",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "ModelHealth",
    "Observation",
    "State",
    "assess",
    "build_parser",
    "main",
    "run",
]

#: A bug in the probe; the message says what went wrong.
EXIT_INTERNAL: Final = 5

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
DEFAULT_WAIT_INTERVAL: Final = 1.0
#: TorchServe's largest page of ``GET /models``.
PAGE_SIZE: Final = 100
MAX_PAGES: Final = 1000
#: Longest error message shown in a one-line reason (JSON keeps it whole).
REASON_MESSAGE_LIMIT: Final = 300


class State(str, enum.Enum):
    """The one word ``ts-health`` gives a model; see ``docs/probe.md`` for the order."""

    READY = "ready"
    INITIALIZING = "initializing"
    FAILING = "failing"
    UNHEALTHY = "unhealthy"
    SATURATED = "saturated"
    DEGRADED = "degraded"
    UNREACHABLE = "unreachable"


# -- merging: a pure function of what was observed ----------------------------------------


@dataclass(frozen=True)
class Observation:
    """Everything the probe saw about one model version, as plain data.

    Attributes:
        describe: the model's entry of ``GET /models/{name}`` (already shape-checked).
        status: our status document from ``customizedMetadata``, or ``None``.
        status_error: why ``status`` is ``None`` (not asked, timed out, not ours...).
        record: the persisted initialization record, or ``None``.
        record_path: where the record was looked for.
        record_error: why an existing record could not be read.
        ping_healthy: ``/ping`` answered 200 (True), 500 (False), or was not asked (None).
        now: wall-clock epoch seconds, to compare with the record's timestamps.
    """

    describe: Mapping[str, Any]
    status: Mapping[str, Any] | None = None
    status_error: str | None = None
    record: InitRecord | None = None
    record_path: str | None = None
    record_error: str | None = None
    ping_healthy: bool | None = None
    now: float = 0.0


@dataclass(frozen=True)
class ModelHealth:
    """The verdict on one model version: a :class:`State`, a one-line reason, the evidence."""

    model: str
    version: str
    state: State
    reason: str
    observation: Observation | None = None

    def ok(self, allow_degraded: bool = False) -> bool:
        """True when the model should receive traffic."""
        return self.state is State.READY or (allow_degraded and self.state is State.DEGRADED)

    def line(self) -> str:
        return f"{self.state.value}: model {self.model} {self.version}: {self.reason}"

    def to_json(self, allow_degraded: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "model": self.model,
            "version": self.version,
            "state": self.state.value,
            "ok": self.ok(allow_degraded),
            "reason": self.reason,
        }
        seen = self.observation
        if seen is None:
            return data
        entry = seen.describe
        workers = _workers(entry)
        queue = _queue(entry)
        data.update(
            workers={
                "ready": sum(1 for w in workers if w == "READY"),
                "total": len(workers),
                "min": _int_or_none(entry.get("minWorkers")),
                "max": _int_or_none(entry.get("maxWorkers")),
            },
            queue=None if queue is None else {"pending": queue[1], "remaining_capacity": queue[0]},
            max_retry_timeout_s=_int_or_none(entry.get("maxRetryTimeoutInSec")),
            status=seen.status,
            status_error=seen.status_error,
            initialization=None if seen.record is None else seen.record.to_json(),
            record_path=seen.record_path,
            record_error=seen.record_error,
        )
        return data


def assess(model: str, version: str, seen: Observation) -> ModelHealth:
    """Give one model version its :class:`State` and a one-line reason.

    With no READY worker: ``unhealthy`` when initialization keeps failing and either
    ``/ping`` says Unhealthy or the first failure of the streak is older than
    ``maxRetryTimeoutInSec``; ``failing`` while it fails within that time; otherwise
    ``initializing``. With a READY worker: ``failing`` when our status says ``failed`` (the
    hold policy), then ``saturated`` when the job queue is full, then ``degraded`` when the
    user check fails, else ``ready``.
    """

    def verdict(state: State, reason: str) -> ModelHealth:
        return ModelHealth(model, version, state, reason, seen)

    entry = seen.describe
    workers = _workers(entry)
    ready = sum(1 for w in workers if w == "READY")
    worker_text = f"{ready}/{len(workers)} workers READY"
    record = seen.record
    if ready == 0:
        if record is not None and record.consecutive_failures > 0:
            error = _error_text(record)
            limit = _int_or_none(entry.get("maxRetryTimeoutInSec"))
            since = _since(record.first_failure_at, seen.now)
            if since is not None and limit is not None and since >= limit:
                return verdict(
                    State.UNHEALTHY,
                    f"initialization failed {_times(record.consecutive_failures)} in a row "
                    f"over {since:.0f} s, past maxRetryTimeoutInSec={limit}: {error}",
                )
            if seen.ping_healthy is False:
                return verdict(
                    State.UNHEALTHY,
                    f"/ping reports Unhealthy; initialization failed "
                    f"{_times(record.consecutive_failures)} in a row: {error}",
                )
            retry = "TorchServe is retrying"
            if record.phase.value == "initializing":
                retry = f"attempt {record.attempts} in progress"
            return verdict(
                State.FAILING,
                f"initialization failed {_times(record.consecutive_failures)} in a row "
                f"({worker_text}; {retry}): {error}",
            )
        if not workers and _int_or_none(entry.get("minWorkers")) == 0:
            return verdict(
                State.UNHEALTHY,
                "no workers (minWorkers is 0): scale the model with "
                "PUT /models/{name}?min_worker=1",
            )
        return verdict(State.INITIALIZING, _initializing_text(worker_text, seen))
    status = seen.status or {}
    if status.get("status") == "failed":
        return verdict(State.FAILING, f"initialization failed and is held; {_held_text(status)}")
    queue = _queue(entry)
    if queue is not None and queue[0] <= 0:
        return verdict(
            State.SATURATED,
            f"job queue full: {queue[1]} pending, 0 free ({worker_text})",
        )
    if status.get("status") == "degraded":
        return verdict(State.DEGRADED, f"{_check_text(status)} ({worker_text})")
    reason = worker_text
    if queue is not None:
        reason += f", {queue[1]} pending, {queue[0]} free in the job queue"
    if seen.status_error:
        reason += f"; health status unknown: {seen.status_error}"
    if seen.record_error:
        reason += f"; initialization record unavailable: {seen.record_error}"
    return verdict(State.READY, reason)


def _workers(entry: Mapping[str, Any]) -> list[str]:
    return [str(w.get("status")) for w in entry.get("workers") or [] if isinstance(w, Mapping)]


def _queue(entry: Mapping[str, Any]) -> tuple[int, int] | None:
    """``(remainingCapacity, pendingRequests)``, or ``None`` on TorchServe versions without it."""
    queue = entry.get("jobQueueStatus")
    if not isinstance(queue, Mapping):
        return None
    remaining = _int_or_none(queue.get("remainingCapacity"))
    pending = _int_or_none(queue.get("pendingRequests"))
    if remaining is None:
        return None
    return remaining, pending or 0


def _int_or_none(value: Any) -> int | None:
    # JSON may carry NaN, Infinity or 1e400: not a count TorchServe would give, so no count.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return int(value)


def _since(stamp: str | None, now: float) -> float | None:
    if not stamp:
        return None
    try:
        return max(0.0, now - parse_iso(stamp))
    except ValueError:
        return None


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


def _one_line(text: str, limit: int = REASON_MESSAGE_LIMIT) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _short_type(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _error_text(record: InitRecord) -> str:
    error = record.last_error
    if error is None:
        return "no error recorded"
    return f"{_short_type(error.type)}: {_one_line(error.message)}"


def _initializing_text(worker_text: str, seen: Observation) -> str:
    record = seen.record
    if record is None:
        where = f" in {seen.record_path}" if seen.record_path else ""
        detail = seen.record_error or f"no initialization record{where}"
        return f"no READY worker yet ({worker_text}; {detail})"
    if record.phase.value == "ready":
        return (
            f"no READY worker ({worker_text}); the last initialization succeeded at "
            f"{record.last_finished_at}, a worker is restarting"
        )
    return (
        f"no READY worker yet ({worker_text}); attempt {record.attempts} started at "
        f"{record.last_started_at}"
    )


def _held_text(status: Mapping[str, Any]) -> str:
    init = status.get("initialization")
    error = init.get("error") if isinstance(init, Mapping) else None
    if isinstance(error, Mapping):
        kind = _short_type(str(error.get("type", "Error")))
        text = f"{kind}: {_one_line(str(error.get('message', '')))}"
    else:
        text = "no error reported"
    return f"TorchServe will not retry (health.on_init_failure: hold): {text}"


def _check_text(status: Mapping[str, Any]) -> str:
    check = status.get("check")
    if not isinstance(check, Mapping):
        return "the health check fails"
    text = f"health check {check.get('status', 'failed')}"
    if check.get("error"):
        text += f": {_one_line(str(check['error']))}"
    return text


# -- talking to TorchServe --------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Resolved options: command line first, then environment, then defaults."""

    inference_url: str
    management_url: str
    token: str | None
    token_source: str | None
    key_file: str | None
    request_timeout: float
    describe_timeout: float
    state_dir: Path
    json: bool
    allow_degraded: bool

    def __repr__(self) -> str:  # never show the token
        return f"Settings({self.inference_url!r}, {self.management_url!r}, ...)"


class Client:
    """One round of questions to one TorchServe, bounded by ``deadline`` (monotonic)."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.monotonic,
        deadline: float | None = None,
    ) -> None:
        self.settings: Final = settings
        self.clock: Final = clock
        self.deadline: Final = deadline
        management_token, inference_token, source = _tokens(settings)
        self.inference: Final = Api("inference API", settings.inference_url, inference_token)
        self.management: Final = Api("management API", settings.management_url, management_token)
        self.token_source: Final = source

    def _timeout(self, wanted: float) -> float:
        if self.deadline is None:
            return wanted
        return max(0.05, min(wanted, self.deadline - self.clock()))

    def _get(self, api: Api, path: str, timeout: float) -> Response:
        response = api.get(path, self._timeout(timeout))
        refused = _refusal(api, path, response, self.token_source)
        if refused is not None:
            raise refused
        return response

    def ping(self) -> tuple[bool, str]:
        """``(healthy, status text)`` of ``/ping``."""
        response = self._get(self.inference, "/ping", self.settings.request_timeout)
        if response.status not in (200, 500):
            raise _unexpected(self.inference, "/ping", response, "200 or 500")
        data = _json(self.inference, "/ping", response)
        status = data.get("status") if isinstance(data, dict) else None
        if not isinstance(status, str):
            raise _shape(self.inference, "/ping", 'an object like {"status": "Healthy"}', data)
        return response.status == 200, status

    def models(self) -> list[str]:
        """Every registered model name, following ``nextPageToken``."""
        names: list[str] = []
        token: str | None = None
        for _ in range(MAX_PAGES):
            path = f"/models?limit={PAGE_SIZE}"
            if token:
                path += f"&next_page_token={quote(token, safe='')}"
            response = self._get(self.management, path, self.settings.request_timeout)
            if response.status != 200:
                raise _unexpected(self.management, path, response, "200")
            data = _json(self.management, path, response)
            expected = 'an object like {"models": [{"modelName": ...}]}'
            if not isinstance(data, dict) or not isinstance(data.get("models"), list):
                raise _shape(self.management, path, expected, data)
            for item in data["models"]:
                if not isinstance(item, dict) or not isinstance(item.get("modelName"), str):
                    raise _shape(self.management, path, expected, item)
                names.append(item["modelName"])
            next_token = data.get("nextPageToken")
            if not next_token:
                return names
            token = str(next_token)
        return names

    def describe(self, model: str, version: str | None) -> dict[str, Any]:
        """The model's entry of ``GET /models/{model}[/{version}]``."""
        path = _model_path(model, version)
        response = self._get(self.management, path, self.settings.request_timeout)
        if response.status == 404:
            kind, _ = response.error_fields()
            if kind in ("ModelNotFoundException", "ModelVersionNotFoundException"):
                what = f"model {model!r}" + (f" version {version!r}" if version else "")
                raise ProbeError(
                    f"{what} is not registered with the {self.management.name} at "
                    f"{self.management.base} ({response.error_summary()})",
                    EXIT_USAGE,
                )
        if response.status != 200:
            raise _unexpected(self.management, path, response, "200")
        return _entry(self.management, path, _json(self.management, path, response), version)

    def status_document(self, model: str, version: str) -> tuple[dict[str, Any] | None, str | None]:
        """Our status from ``?customized=true``: ``(document, None)`` or ``(None, why not)``.

        Never raises for the answer: a busy worker, a handler without ``HealthMixin`` or a
        broken answer leaves the status unknown, which is not a failure.
        """
        path = _model_path(model, version) + "?customized=true"
        try:
            response = self._get(self.management, path, self.settings.describe_timeout)
            if response.status != 200:
                return None, f"customized describe answered {response.error_summary()}"
            data = _json(self.management, path, response)
            entry = _entry(self.management, path, data, version)
        except ProbeError as exc:
            if exc.exit_code == EXIT_USAGE:  # a refused token: the caller must hear of it
                raise
            return None, f"customized describe failed: {exc.message}"
        return _status_from_metadata(entry.get("customizedMetadata"))

    def record(self, model: str, version: str) -> tuple[InitRecord | None, str, str | None]:
        """``(record, path, error)`` of the persisted initialization record."""
        store = StateStore(self.settings.state_dir, model, version)
        try:
            return store.read(), str(store.path), None
        except RecordError as exc:
            return None, str(store.path), str(exc)
        except OSError as exc:
            return None, str(store.path), f"cannot read {store.path}: {exc.strerror or exc}"

    def observe(
        self, model: str, version: str | None, *, ping_healthy: bool | None, now: float
    ) -> ModelHealth:
        """Describe, maybe customized describe, read the record, and :func:`assess`."""
        try:
            entry = self.describe(model, version)
        except ProbeError as exc:
            if exc.exit_code != EXIT_UNREACHABLE:
                raise
            return ModelHealth(model, version or "?", State.UNREACHABLE, exc.message)
        name = str(entry.get("modelName") or model)
        resolved = str(entry.get("modelVersion") or "unknown")
        status: dict[str, Any] | None = None
        status_error: str | None = "not asked: no READY worker"
        if "READY" in _workers(entry):
            status, status_error = self.status_document(name, resolved)
        record, record_path, record_error = self.record(name, resolved)
        seen = Observation(
            describe=entry,
            status=status,
            status_error=status_error,
            record=record,
            record_path=record_path,
            record_error=record_error,
            ping_healthy=ping_healthy,
            now=now,
        )
        return assess(name, resolved, seen)


def _model_path(model: str, version: str | None) -> str:
    path = f"/models/{quote(model, safe='')}"
    return path + f"/{quote(version, safe='')}" if version else path


def _json(api: Api, path: str, response: Response) -> Any:
    try:
        return json.loads(response.body)
    except ValueError:
        snippet = _one_line(response.body[:80].decode("utf-8", "replace"), 80)
        raise ProbeError(
            f"the {api.name} at {api.base} answered GET {path} with {response.status} "
            f"and a body that is not JSON: {snippet!r}",
            EXIT_BAD_ANSWER,
        ) from None


def _shape(api: Api, path: str, expected: str, got: Any) -> ProbeError:
    shown = _one_line(json.dumps(got), 80)
    return ProbeError(
        f"the {api.name} at {api.base} answered GET {path} with {shown}; expected {expected}",
        EXIT_BAD_ANSWER,
    )


def _unexpected(api: Api, path: str, response: Response, expected: str) -> ProbeError:
    hint = ""
    if response.status == 404:
        hint = f"; is {api.base} TorchServe's {api.name} address?"
    return ProbeError(
        f"the {api.name} at {api.base} answered GET {path} with "
        f"{_one_line(response.error_summary())}; expected {expected}{hint}",
        EXIT_BAD_ANSWER,
    )


def _entry(api: Api, path: str, data: Any, version: str | None) -> dict[str, Any]:
    """Check a describe answer's shape; pick the entry of ``version`` (else the first)."""
    expected = 'a list of models like [{"modelName": ..., "workers": [{"status": ...}]}]'
    if not isinstance(data, list) or not data:
        raise _shape(api, path, expected, data)
    for entry in data:
        workers = entry.get("workers") if isinstance(entry, dict) else None
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("modelName"), str)
            or not isinstance(workers, list)
            or not all(isinstance(w, dict) and isinstance(w.get("status"), str) for w in workers)
        ):
            raise _shape(api, path, expected, entry)
    for entry in data:
        if version is None or entry.get("modelVersion") == version:
            return dict(entry)
    return dict(data[0])


def _status_from_metadata(metadata: Any) -> tuple[dict[str, Any] | None, str | None]:
    """Our status document from ``customizedMetadata`` (a JSON object or a JSON string)."""
    if metadata is None or metadata == "" or metadata == {}:
        return None, "the handler reports no ts-health status (is HealthMixin one of its bases?)"
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError:
            return None, "customizedMetadata is not JSON; not a ts-health status"
    if not isinstance(metadata, dict) or metadata.get("status") not in (
        "ready",
        "degraded",
        "failed",
    ):
        return (
            None,
            "customizedMetadata is not a ts-health status (no status ready/degraded/failed)",
        )
    return metadata, None


def _refusal(api: Api, path: str, response: Response, source: str | None) -> ProbeError | None:
    """A usage error when TorchServe refused (or wanted) a token, else ``None``."""
    if response.status < 400:
        return None
    kind, _ = response.error_fields()
    if kind != "InvalidKeyException" and response.status not in (401, 403):
        return None
    summary = _one_line(response.error_summary())
    if api.token is None:
        return ProbeError(
            f"the {api.name} at {api.base} wants a token for GET {path} ({summary}); pass "
            "--key-file with TorchServe's key_file.json (written in its working directory) "
            "or --token",
            EXIT_USAGE,
        )
    return ProbeError(
        f"the {api.name} at {api.base} refused the token from {source} for GET {path} "
        f"({summary}); keys change when TorchServe restarts or expire",
        EXIT_USAGE,
    )


def _tokens(settings: Settings) -> tuple[str | None, str | None, str | None]:
    """``(management token, inference token, where they came from)``."""
    if settings.token:
        return settings.token, settings.token, settings.token_source
    if not settings.key_file:
        return None, None, None
    path = settings.key_file
    expected = (
        'expected TorchServe\'s key_file.json: {"management": {"key": ...}, '
        '"inference": {"key": ...}}'
    )
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ProbeError(
            f"cannot read key file {path}: {exc.strerror or exc}", EXIT_USAGE
        ) from None
    try:
        data = json.loads(text)
    except ValueError:
        raise ProbeError(f"key file {path} is not JSON; {expected}", EXIT_USAGE) from None
    keys: list[str] = []
    for name in ("management", "inference"):
        section = data.get(name) if isinstance(data, dict) else None
        key = section.get("key") if isinstance(section, dict) else None
        if not isinstance(key, str) or not key:
            raise ProbeError(f"key file {path} has no {name} key; {expected}", EXIT_USAGE)
        keys.append(key)
    return keys[0], keys[1], f"key file {path}"


# -- commands ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Io:
    """Where output goes, and the clocks; replaced by tests."""

    stdout: IO[str]
    stderr: IO[str]
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep

    def emit(self, settings: Settings, text: str, document: dict[str, Any]) -> None:
        if settings.json:
            self.stdout.write(json.dumps(document, indent=2) + "\n")
        else:
            self.stdout.write(text + "\n")


def _exit_code(health: ModelHealth, allow_degraded: bool) -> int:
    if health.ok(allow_degraded):
        return EXIT_OK
    return EXIT_UNREACHABLE if health.state is State.UNREACHABLE else EXIT_NOT_READY


def cmd_ping(settings: Settings, args: argparse.Namespace, io: Io) -> int:
    client = Client(settings, clock=io.clock)
    healthy, status = client.ping()
    code = EXIT_OK if healthy else EXIT_NOT_READY
    word = "alive" if healthy else "unhealthy"
    io.emit(
        settings,
        f"{word}: the inference API at {settings.inference_url} answered /ping: {status}",
        {"command": "ping", "exit_code": code, "healthy": healthy, "status": status},
    )
    return code


def cmd_ready(settings: Settings, args: argparse.Namespace, io: Io) -> int:
    client = Client(settings, clock=io.clock)
    health = client.observe(args.model, args.version, ping_healthy=None, now=io.wall())
    code = _exit_code(health, settings.allow_degraded)
    document = {
        "command": "ready",
        "exit_code": code,
        "model": health.to_json(settings.allow_degraded),
    }
    io.emit(settings, health.line(), document)
    return code


def cmd_status(settings: Settings, args: argparse.Namespace, io: Io) -> int:
    if args.model is None and args.version is not None:
        raise ProbeError("--version needs a MODEL: ts-health status MODEL --version V", EXIT_USAGE)
    client = Client(settings, clock=io.clock)
    ping_healthy: bool | None = None
    ping_status: str | None = None
    ping_error: str | None = None
    ping_code = EXIT_OK
    try:
        ping_healthy, ping_status = client.ping()
        if not ping_healthy:
            ping_code = EXIT_NOT_READY
    except ProbeError as exc:
        if exc.exit_code == EXIT_USAGE:
            raise
        ping_error, ping_code = exc.message, exc.exit_code
    if args.model is not None:
        names: list[str] = [args.model]
    else:
        try:
            names = client.models()
        except ProbeError as exc:
            if exc.exit_code != EXIT_UNREACHABLE:
                raise
            return _status_unreachable(settings, io, exc, ping_status, ping_error)
    now = io.wall()
    version = args.version if args.model is not None else None

    def observe(name: str) -> ModelHealth:
        return client.observe(name, version, ping_healthy=ping_healthy, now=now)

    if len(names) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(8, len(names))) as pool:
            results = list(pool.map(observe, names))
    else:
        results = [observe(n) for n in names]
    codes = [ping_code, *(_exit_code(h, settings.allow_degraded) for h in results)]
    code = EXIT_UNREACHABLE if EXIT_UNREACHABLE in codes else max(codes)
    document = {
        "command": "status",
        "exit_code": code,
        "server": {
            "inference_url": settings.inference_url,
            "management_url": settings.management_url,
            "ping": None
            if ping_status is None
            else {"healthy": ping_healthy, "status": ping_status},
            "ping_error": ping_error,
        },
        "models": [h.to_json(settings.allow_degraded) for h in results],
    }
    io.emit(settings, _table(settings, ping_status, ping_error, results), document)
    return code


def _status_unreachable(
    settings: Settings, io: Io, exc: ProbeError, ping_status: str | None, ping_error: str | None
) -> int:
    document = {
        "command": "status",
        "exit_code": EXIT_UNREACHABLE,
        "server": {
            "inference_url": settings.inference_url,
            "management_url": settings.management_url,
            "ping": None if ping_status is None else {"status": ping_status},
            "ping_error": ping_error,
            "management_error": exc.message,
        },
        "models": [],
    }
    io.emit(settings, f"unreachable: {exc.message}", document)
    return EXIT_UNREACHABLE


def _table(
    settings: Settings, ping_status: str | None, ping_error: str | None, results: list[ModelHealth]
) -> str:
    ping = f"/ping {ping_status}" if ping_status is not None else f"/ping failed: {ping_error}"
    lines = [f"server {settings.inference_url} (management {settings.management_url}): {ping}"]
    if not results:
        lines.append("no models registered")
        return "\n".join(lines)
    rows = [("MODEL", "VERSION", "STATE", "WORKERS", "QUEUE", "REASON")]
    for health in results:
        workers = queue = "-"
        if health.observation is not None:
            entry = health.observation.describe
            states = _workers(entry)
            workers = f"{states.count('READY')}/{len(states)}"
            pending = _queue(entry)
            if pending is not None:
                queue = f"{pending[1]}/{pending[0] + pending[1]}"
        rows.append(
            (health.model, health.version, health.state.value, workers, queue, health.reason)
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        cells = [row[i].ljust(widths[i]) for i in range(5)]
        lines.append("  ".join([*cells, row[5]]).rstrip())
    return "\n".join(lines)


def cmd_wait(settings: Settings, args: argparse.Namespace, io: Io) -> int:
    started = io.clock()
    deadline = started + args.timeout
    last: ModelHealth | None = None
    last_error: ProbeError | None = None
    while True:
        try:
            client = Client(settings, clock=io.clock, deadline=deadline)
            health = client.observe(args.model, args.version, ping_healthy=None, now=io.wall())
            last, last_error = health, None
        except ProbeError as exc:  # not up yet, not registered yet, key file not written yet
            last, last_error = None, exc
            health = None
        waited = io.clock() - started
        if health is not None:
            stop = health.state is State.UNHEALTHY or (
                health.state is State.FAILING and (args.fail_fast or _held(health))
            )
            if health.ok(settings.allow_degraded) or stop:
                code = _exit_code(health, settings.allow_degraded)
                return _wait_done(settings, io, code, health.line(), waited, health)
        if io.clock() >= deadline:
            break
        io.sleep(max(0.0, min(args.interval, deadline - io.clock())))
    if last is not None:
        reason, code = last.line(), _exit_code(last, settings.allow_degraded)
    else:
        assert last_error is not None
        reason, code = last_error.message, last_error.exit_code
    text = f"timed out after {args.timeout:g} s waiting for model {args.model}: {reason}"
    return _wait_done(settings, io, code, text, waited, last)


def _held(health: ModelHealth) -> bool:
    seen = health.observation
    return seen is not None and (seen.status or {}).get("status") == "failed"


def _wait_done(
    settings: Settings, io: Io, code: int, text: str, waited: float, health: ModelHealth | None
) -> int:
    document = {
        "command": "wait",
        "exit_code": code,
        "waited_s": round(waited, 3),
        "reason": text,
        "model": None if health is None else health.to_json(settings.allow_degraded),
    }
    io.emit(settings, f"{text} (after {waited:.1f} s)" if code == EXIT_OK else text, document)
    return code


COMMANDS: Final[dict[str, Callable[[Settings, argparse.Namespace, Io], int]]] = {
    "ping": cmd_ping,
    "ready": cmd_ready,
    "status": cmd_status,
    "wait": cmd_wait,
}


# -- command line ------------------------------------------------------------------------

EPILOG: Final = """\
exit codes:
  0  ok: alive / ready (degraded too with --allow-degraded)
  1  not ready: initializing, failing, unhealthy, saturated, degraded; /ping unhealthy;
     wait gave up
  2  usage or configuration error: bad option, bad URL, unreadable key file, token
     refused, unknown model
  3  unreachable: connection refused, timeout, unknown host
  4  an answer TorchServe would not give: not HTTP, not JSON, wrong shape
  5  internal error of ts-health

environment (options win):
  TS_HEALTH_INFERENCE_URL, TS_HEALTH_MANAGEMENT_URL, TS_HEALTH_TOKEN, TS_HEALTH_KEY_FILE,
  TS_HEALTH_REQUEST_TIMEOUT, TS_HEALTH_DESCRIBE_TIMEOUT, TS_HEALTH_STATE_DIR

Connection options work before and after the command. See docs/probe.md.
"""


class _Parser(argparse.ArgumentParser):
    """Usage errors on one line, exit code 2."""

    def error(self, message: str) -> Any:  # argparse types this NoReturn
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text!r}")
    return value


def _add_connection_options(parser: argparse.ArgumentParser, *, subcommand: bool) -> None:
    # In a subcommand, an option not given must not overwrite the one given before it.
    unset: Any = argparse.SUPPRESS if subcommand else None
    group = parser.add_argument_group("connection options")
    group.add_argument(
        "--inference-url",
        metavar="URL",
        default=unset,
        help=f"inference API (${ENV_INFERENCE_URL}, default {DEFAULT_INFERENCE_URL})",
    )
    group.add_argument(
        "--management-url",
        metavar="URL",
        default=unset,
        help=f"management API (${ENV_MANAGEMENT_URL}, default {DEFAULT_MANAGEMENT_URL})",
    )
    group.add_argument(
        "--token",
        metavar="TOKEN",
        default=unset,
        help=f"bearer token for both APIs (${ENV_TOKEN}); never printed",
    )
    group.add_argument(
        "--key-file",
        metavar="PATH",
        default=unset,
        help=f"TorchServe's key_file.json: management and inference keys (${ENV_KEY_FILE})",
    )
    group.add_argument(
        "--request-timeout",
        metavar="S",
        type=_seconds,
        default=unset,
        help=f"seconds per request (${ENV_REQUEST_TIMEOUT}, default {DEFAULT_REQUEST_TIMEOUT:g})",
    )
    group.add_argument(
        "--describe-timeout",
        metavar="S",
        type=_seconds,
        default=unset,
        help="seconds for the customized describe, which waits behind inference "
        f"(${ENV_DESCRIBE_TIMEOUT}, default {DEFAULT_DESCRIBE_TIMEOUT:g})",
    )
    group.add_argument(
        "--state-dir",
        metavar="DIR",
        default=unset,
        help="where workers persist initialization records ($TS_HEALTH_STATE_DIR, "
        "default <tmp>/ts-health)",
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS if subcommand else False,
        help="print JSON for machines",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``ts-health`` argument parser (also used to check the Kubernetes examples)."""
    parser = _Parser(
        prog="ts-health",
        description="Is a TorchServe model ready, and if not, why?",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_connection_options(parser, subcommand=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        return sub

    def model_options(sub: argparse.ArgumentParser, *, optional: bool = False) -> None:
        sub.add_argument("model", metavar="MODEL", nargs="?" if optional else None)
        sub.add_argument(
            "--version", metavar="V", help="model version (default: the model's default version)"
        )
        sub.add_argument(
            "--allow-degraded",
            action="store_true",
            help="count degraded (a failing user check) as ready",
        )

    ping = command("ping", "server liveness: GET /ping on the inference API")
    _add_connection_options(ping, subcommand=True)
    ready = command(
        "ready",
        "readiness: a READY worker, a health status that is not failing, a job queue not full",
    )
    model_options(ready)
    _add_connection_options(ready, subcommand=True)
    status = command("status", "every model (or MODEL) with its state and the reason")
    model_options(status, optional=True)
    _add_connection_options(status, subcommand=True)
    wait = command("wait", "block until MODEL is ready, has failed, or --timeout passes")
    model_options(wait)
    wait.add_argument(
        "--timeout", metavar="S", type=_seconds, required=True, help="give up after S seconds"
    )
    wait.add_argument(
        "--interval",
        metavar="S",
        type=_seconds,
        default=DEFAULT_WAIT_INTERVAL,
        help=f"seconds between polls (default {DEFAULT_WAIT_INTERVAL:g})",
    )
    wait.add_argument(
        "--fail-fast",
        action="store_true",
        help="stop at the first failed initialization instead of waiting for TorchServe's retries",
    )
    _add_connection_options(wait, subcommand=True)
    return parser


def _setting(args: argparse.Namespace, name: str, environ: Mapping[str, str], env: str) -> Any:
    value = getattr(args, name, None)
    if value is not None:
        return value
    from_env = environ.get(env)
    return from_env if from_env else None


def _env_seconds(value: Any, env: str, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, float):
        return value
    try:
        return _seconds(value)
    except argparse.ArgumentTypeError as exc:
        raise ProbeError(f"invalid ${env}: {exc}", EXIT_USAGE) from None


def resolve_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """Command line first, then environment, then defaults; URLs and numbers checked."""
    inference = _setting(args, "inference_url", environ, ENV_INFERENCE_URL)
    management = _setting(args, "management_url", environ, ENV_MANAGEMENT_URL)
    inference_option = "--inference-url" if args.inference_url else f"${ENV_INFERENCE_URL}"
    management_option = "--management-url" if args.management_url else f"${ENV_MANAGEMENT_URL}"
    # The command line beats the environment, a token beats a key file at the same level.
    token, source, key_file = args.token, "--token", args.key_file
    if not token and not key_file:
        token, source = environ.get(ENV_TOKEN) or None, f"${ENV_TOKEN}"
        key_file = environ.get(ENV_KEY_FILE) or None
    state_dir = args.state_dir or environ.get(ENV_STATE_DIR) or None
    return Settings(
        inference_url=check_base_url(inference_option, inference or DEFAULT_INFERENCE_URL),
        management_url=check_base_url(management_option, management or DEFAULT_MANAGEMENT_URL),
        token=token,
        token_source=source if token else None,
        key_file=key_file,
        request_timeout=_env_seconds(
            _setting(args, "request_timeout", environ, ENV_REQUEST_TIMEOUT),
            ENV_REQUEST_TIMEOUT,
            DEFAULT_REQUEST_TIMEOUT,
        ),
        describe_timeout=_env_seconds(
            _setting(args, "describe_timeout", environ, ENV_DESCRIBE_TIMEOUT),
            ENV_DESCRIBE_TIMEOUT,
            DEFAULT_DESCRIBE_TIMEOUT,
        ),
        state_dir=resolve_state_dir(state_dir),
        json=bool(args.json),
        allow_degraded=bool(getattr(args, "allow_degraded", False)),
    )


_LABELS: Final = {
    EXIT_USAGE: "error",
    EXIT_UNREACHABLE: "unreachable",
    EXIT_BAD_ANSWER: "bad answer",
}


def run(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    io: Io | None = None,
) -> int:
    """Parse ``argv``, run the command, return the exit code; never raises, never a traceback."""
    io = io or Io(sys.stdout, sys.stderr)
    environ = os.environ if environ is None else environ
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed on one line
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    want_json = bool(getattr(args, "json", False))
    try:
        settings = resolve_settings(args, environ)
        return COMMANDS[args.command](settings, args, io)
    except ProbeError as exc:
        label = _LABELS.get(exc.exit_code, "error")
        io.stderr.write(f"ts-health: {label}: {exc.message}\n")
        if want_json:
            document = {"command": args.command, "exit_code": exc.exit_code, "error": exc.message}
            io.stdout.write(json.dumps(document, indent=2) + "\n")
        return exc.exit_code
    except KeyboardInterrupt:
        io.stderr.write("ts-health: interrupted\n")
        return 130
    except Exception as exc:  # a bug of ours: still one line, never a traceback
        io.stderr.write(
            f"ts-health: internal error: {type(exc).__name__}: {_one_line(str(exc))} "
            "(please report it)\n"
        )
        return EXIT_INTERNAL


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``ts-health``."""
    return run(argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
