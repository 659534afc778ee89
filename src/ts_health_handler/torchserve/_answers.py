"""TorchServe 0.12's answers as frozen types, parsed once: describe entries and key files.

Standard library only (the probe imports it). TorchServe 0.12.0 facts this module relies on
(checked against the real server):

- ``GET /models/{name}`` answers a list, one entry per version::

      [{"modelName": "m", "modelVersion": "1.0", "minWorkers": 1, "maxWorkers": 1,
        "maxRetryTimeoutInSec": 300, "jobQueueStatus": {"remainingCapacity": 100,
        "pendingRequests": 0}, "workers": [{"id": "9000", "status": "READY", "pid": 70,
        "startTime": "2023-04-18T00:28:02.086Z", ...}], ...}]

  A worker whose ``initialize()`` keeps failing shows as ``UNLOADING``, never with a reason.
- ``?customized=true`` adds ``customizedMetadata``: what the handler's ``describe_handle()``
  returned, parsed as JSON (older versions sent a JSON *string*); it is queued to the worker
  and never answers while no worker is alive.
- With token authorization on, the frontend writes ``key_file.json`` into its working
  directory (``{"management": {"key", "expiration time"}, "inference": {...}, "API":
  {"key"}}``); a request without the right key gets 400 ``InvalidKeyException``.
- ``expiration time`` is Java's ``Instant.toString()``: UTC, ``Z``, and 0 to 9 digits of
  fraction (``2024-10-01T12:00:00.123456789Z``). A key is refused from that instant on
  (``TokenAuthorization.isTokenExpired``: ``!now.isBefore(expiration)``); the ``API`` key
  never expires. ``GET /token?type=management`` (or ``inference``) on the management port,
  with ``Authorization: Bearer <API key>``, replaces that one key, rewrites the file before
  answering 200, and invalidates the old key at once.
"""

# No `from __future__ import annotations`: typing would compile each named-tuple field's
# annotation when ts-health starts (docs/architecture.md, "Start-up").
import json
import math
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final, NamedTuple, Optional, Union
from urllib.parse import quote

from .._document import StatusDoc, parse_status
from ._errors import KeyFileError

__all__ = [
    "JobQueue",
    "KeyFileError",
    "Keys",
    "ModelEntry",
    "Worker",
    "count_or_none",
    "model_path",
    "parse_describe",
    "parse_instant",
    "status_from_metadata",
]

PathLike = Union[str, os.PathLike[str]]

_INSTANT: Final = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z")


def count_or_none(value: Any) -> Optional[int]:
    """A count from TorchServe's JSON, or ``None`` when it is not one.

    JSON may carry ``true``, NaN, Infinity or 1e400: not a count TorchServe would give.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return int(value)


class Worker(NamedTuple):
    """One worker of a model version, as describe lists it."""

    status: str
    id: Optional[str] = None
    pid: Optional[int] = None
    start_time: Optional[str] = None

    @property
    def ready(self) -> bool:
        return self.status == "READY"


class JobQueue(NamedTuple):
    """``jobQueueStatus``: free slots and requests waiting (absent before TorchServe 0.11)."""

    remaining: int
    pending: int

    @property
    def full(self) -> bool:
        return self.remaining <= 0


class ModelEntry(NamedTuple):
    """One version's entry of ``GET /models/{name}``, parsed once."""

    name: str
    version: str
    workers: tuple[Worker, ...] = ()
    min_workers: Optional[int] = None
    max_workers: Optional[int] = None
    max_retry_timeout_s: Optional[int] = None
    queue: Optional[JobQueue] = None
    #: ``customizedMetadata`` as sent (only in a customized describe).
    customized: Any = None
    #: ``stateful``: the model is served with ``sequenceBatching`` (TorchServe 0.12's
    #: ``ApiUtils`` sets it from ``isSequenceBatching()``); no describe reaches its workers.
    stateful: bool = False
    #: ``continuousBatching``: TorchServe 0.12 answers a customized describe of such a model
    #: once, then sends that describe to the worker again and again (``Model.pollInferJob``).
    continuous_batching: bool = False

    @property
    def ready_workers(self) -> int:
        return sum(1 for w in self.workers if w.ready)

    @classmethod
    def from_json(cls, raw: Any) -> "ModelEntry":
        """Parse one entry.

        Raises:
            ValueError: ``raw`` does not have the shape TorchServe gives (``args[0]`` is it).
        """
        workers = raw.get("workers") if isinstance(raw, dict) else None
        if (
            not isinstance(raw, dict)
            or not isinstance(raw.get("modelName"), str)
            or not isinstance(workers, list)
            or not all(isinstance(w, dict) and isinstance(w.get("status"), str) for w in workers)
        ):
            raise ValueError(raw)
        queue = raw.get("jobQueueStatus")
        remaining = (
            count_or_none(queue.get("remainingCapacity")) if isinstance(queue, dict) else None
        )
        pending = count_or_none(queue.get("pendingRequests")) if isinstance(queue, dict) else None
        return cls(
            name=raw["modelName"],
            version=str(raw.get("modelVersion") or "unknown"),
            workers=tuple(
                Worker(
                    status=w["status"],
                    id=None if w.get("id") is None else str(w["id"]),
                    pid=count_or_none(w.get("pid")),
                    start_time=w.get("startTime") if isinstance(w.get("startTime"), str) else None,
                )
                for w in workers
            ),
            min_workers=count_or_none(raw.get("minWorkers")),
            max_workers=count_or_none(raw.get("maxWorkers")),
            max_retry_timeout_s=count_or_none(raw.get("maxRetryTimeoutInSec")),
            queue=None if remaining is None else JobQueue(remaining, pending or 0),
            customized=raw.get("customizedMetadata"),
            stateful=raw.get("stateful") is True,
            continuous_batching=raw.get("continuousBatching") is True,
        )


def parse_describe(data: Any) -> list[ModelEntry]:
    """Every entry of a describe answer.

    Raises:
        ValueError: not a non-empty list of entries (``args[0]`` is the offending part).
    """
    if not isinstance(data, list) or not data:
        raise ValueError(data)
    return [ModelEntry.from_json(item) for item in data]


def status_from_metadata(metadata: Any) -> tuple[Optional[StatusDoc], Optional[str]]:
    """Our status document from ``customizedMetadata``: ``(document, None)`` or ``(None, why)``.

    The one place where what TorchServe hands back becomes a :class:`StatusDoc`: checked
    whole by :func:`~.._document.parse_status`, so readers can trust its types.
    """
    if metadata is None or metadata == "" or metadata == {}:
        return None, "the handler reports no ts-health status (is HealthMixin one of its bases?)"
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError:
            return None, "customizedMetadata is not JSON; not a ts-health status"
    try:
        return parse_status(metadata), None
    except ValueError as exc:
        return None, f"customizedMetadata is not a ts-health status ({exc})"


def model_path(model: str, version: Optional[str] = None, *, root: str = "/models") -> str:
    """``/models/{model}[/{version}]`` (or under another ``root``: ``/predictions``), each
    part URL-quoted."""
    path = f"{root}/{quote(model, safe='')}"
    return path + f"/{quote(version, safe='')}" if version else path


def parse_instant(text: str) -> float:
    """Epoch seconds of a Java ``Instant.toString()`` (``2024-10-01T12:00:00.123456789Z``).

    Raises:
        ValueError: not such an instant.
    """
    match = _INSTANT.fullmatch(text)
    if match is None:
        raise ValueError(f"expected an instant like 2024-10-01T12:00:00.123Z, got {text!r}")
    # The fields themselves, not strptime: its first call imports _strptime and calendar and
    # compiles a pattern, a few milliseconds of every probe run with a key file.
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    # ValueError for a date that does not exist, e.g. February 30.
    whole = datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)
    fraction = match.group(7) or "0"
    return whole.timestamp() + int(fraction) / 10.0 ** len(fraction)


class Keys(NamedTuple):
    """The keys of a server with token authorization, from its ``key_file.json``.

    ``repr`` leaves the keys out, so that no traceback or log line can show them.
    """

    inference: str
    management: str
    #: The key of the ``/token`` API that renews the other two.
    api: Optional[str] = None
    #: When each key stops being accepted (epoch seconds; ``None``: the file does not say).
    inference_expires_at: Optional[float] = None
    management_expires_at: Optional[float] = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(inference=..., management=..., api=...)"

    @classmethod
    def from_key_file(cls, path: PathLike) -> "Keys":
        """Parse TorchServe 0.12's ``key_file.json``.

        Raises:
            KeyFileError: the file is missing, not JSON or lacks a key; names the file.
        """
        expected = (
            'expected TorchServe\'s key_file.json: {"management": {"key": ...}, '
            '"inference": {"key": ...}}'
        )
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise KeyFileError(f"cannot read key file {path}: {exc.strerror or exc}") from None
        try:
            data = json.loads(text)
        except ValueError:
            raise KeyFileError(f"key file {path} is not JSON; {expected}") from None
        keys: dict[str, str] = {}
        expires: dict[str, Optional[float]] = {}
        for name in ("management", "inference"):
            section = data.get(name) if isinstance(data, dict) else None
            if not isinstance(section, dict):
                section = {}
            key = section.get("key")
            key = key.strip() if isinstance(key, str) else None
            if not key:
                raise KeyFileError(f"key file {path} has no {name} key; {expected}")
            _check_key(path, name, key)
            keys[name] = key
            expires[name] = _expiration(path, name, section.get("expiration time"))
        api = data.get("API")
        api_key = api.get("key") if isinstance(api, dict) else None
        api_key = api_key.strip() if isinstance(api_key, str) else None
        if api_key:
            _check_key(path, "API", api_key)
        return cls(
            inference=keys["inference"],
            management=keys["management"],
            api=api_key or None,
            inference_expires_at=expires["inference"],
            management_expires_at=expires["management"],
        )


def _check_key(path: PathLike, name: str, key: str) -> None:
    """A key goes into an HTTP header: printable ASCII without whitespace."""
    if not key.isprintable() or any(c.isspace() for c in key):
        raise KeyFileError(
            f"key file {path}: the {name} key holds whitespace or a control character"
        )
    if not key.isascii():
        raise KeyFileError(f"key file {path}: the {name} key holds a character that is not ASCII")


def _expiration(path: PathLike, name: str, stamp: Any) -> Optional[float]:
    """A key's ``expiration time`` (epoch seconds), ``None`` when the file gives none."""
    if stamp is None:
        return None
    try:
        if isinstance(stamp, str):
            return parse_instant(stamp)
    except ValueError:
        pass
    raise KeyFileError(
        f"key file {path}: the {name} key's expiration time {stamp!r} is not an instant like "
        "2024-10-01T12:00:00.123Z"
    )
