"""The persisted initialization record: one JSON file per model name + version.

TorchServe starts a fresh worker process for every retry of a failing ``initialize()``, so
anything kept in memory dies with the worker. The record below survives: workers update it
under a file lock with an atomic replace, and the probe reads it even while no worker is
alive. Standard library only: the probe imports this module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from ._errors import HealthError
from ._states import InitPhase
from ._text import clip

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux/macOS: records are still atomic
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "ENV_STATE_DIR",
    "ErrorInfo",
    "InitPhase",
    "InitRecord",
    "RecordError",
    "StateStore",
    "resolve_state_dir",
]

ENV_STATE_DIR: Final = "TS_HEALTH_STATE_DIR"
RECORD_SCHEMA_VERSION: Final = 1
#: How many earlier failure reasons a record keeps.
RECENT_ERRORS: Final = 5
#: Longest message kept in a record, in characters.
MESSAGE_LIMIT: Final = 2000


class RecordError(HealthError):
    """A persisted record is missing fields, has wrong types or is not JSON.

    Attributes:
        path: the record file.
    """

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path: Final = str(path)
        super().__init__(f"unreadable health record {self.path}: {reason}")


def utc_iso(timestamp: float) -> str:
    """Render epoch seconds as ISO 8601 UTC with millisecond precision."""
    return (
        datetime.fromtimestamp(timestamp, tz=timezone.utc)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def parse_iso(text: str) -> float:
    """Inverse of :func:`utc_iso` (epoch seconds)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def bound(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters, keeping the end (where tracebacks say what)."""
    return clip(text, limit)


@dataclass(frozen=True)
class ErrorInfo:
    """One failed ``initialize()``: what was raised, when, on which attempt."""

    type: str
    message: str
    at: str
    attempt: int
    traceback: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: Any, where: str, name: str = "error") -> ErrorInfo:
        """Parse one error; ``name`` (e.g. ``recent_errors[2]``) is named in any complaint."""
        data = _mapping(raw, where, name)
        prefix = f"{name}."
        return cls(
            type=_field(data, "type", str, where, prefix=prefix),
            message=_field(data, "message", str, where, prefix=prefix),
            at=_field(data, "at", str, where, prefix=prefix),
            attempt=_field(data, "attempt", int, where, prefix=prefix),
            traceback=_field(
                data, "traceback", (str, type(None)), where, default=None, prefix=prefix
            ),
        )


@dataclass(frozen=True)
class InitRecord:
    """Initialization history of one model version within one TorchServe session."""

    model_name: str
    model_version: str
    phase: InitPhase
    attempts: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    attempts_to_ready: int | None = None
    first_failure_at: str | None = None
    last_started_at: str | None = None
    last_finished_at: str | None = None
    last_duration_s: float | None = None
    last_error: ErrorInfo | None = None
    recent_errors: tuple[ErrorInfo, ...] = ()
    server_pid: int | None = None
    worker_pid: int | None = None
    updated_at: str | None = None
    schema_version: int = RECORD_SCHEMA_VERSION

    # -- transitions: the only places a record changes ---------------------------------

    @classmethod
    def started(
        cls,
        previous: InitRecord | None,
        *,
        model_name: str,
        model_version: str,
        now: float,
        worker_pid: int,
        server_pid: int,
        worker_alive: Callable[[int], bool] = lambda pid: True,
    ) -> InitRecord:
        """A worker entered ``initialize()``. A new TorchServe session starts a new record.

        An earlier attempt still marked ``initializing`` whose worker is gone (``worker_alive``
        says so) never reached a result: TorchServe's ``startupTimeout``, the OOM killer or a
        signal ended it. It is counted as a failure first, so that it is not lost.
        """
        if previous is None or previous.server_pid != server_pid:
            previous = cls(model_name, model_version, InitPhase.INITIALIZING, server_pid=server_pid)
        elif (
            previous.phase is InitPhase.INITIALIZING
            and previous.worker_pid is not None
            and previous.worker_pid != worker_pid
            and not worker_alive(previous.worker_pid)
        ):
            previous = previous.interrupted(now=now)
        return dataclasses.replace(
            previous,
            phase=InitPhase.INITIALIZING,
            attempts=previous.attempts + 1,
            last_started_at=utc_iso(now),
            worker_pid=worker_pid,
            updated_at=utc_iso(now),
        )

    def interrupted(self, *, now: float) -> InitRecord:
        """The worker of the unfinished attempt died before ``initialize()`` returned."""
        pid = self.worker_pid
        started = parse_iso(self.last_started_at) if self.last_started_at else now
        error = ErrorInfo(
            type="WorkerDied",
            message=(
                f"worker {pid} ended during initialize() without a result (killed by "
                "TorchServe's startupTimeout, the OOM killer or a signal)"
            ),
            at=utc_iso(now),
            attempt=self.attempts,
        )
        return self.failed(error, now=now, duration_s=max(0.0, now - started), worker_pid=pid or 0)

    def succeeded(self, *, now: float, duration_s: float, worker_pid: int) -> InitRecord:
        """A worker's ``initialize()`` returned."""
        return dataclasses.replace(
            self,
            phase=InitPhase.READY,
            consecutive_failures=0,
            attempts_to_ready=self.consecutive_failures + 1,
            first_failure_at=None,
            last_finished_at=utc_iso(now),
            last_duration_s=round(duration_s, 6),
            worker_pid=worker_pid,
            updated_at=utc_iso(now),
        )

    def failed(
        self, error: ErrorInfo, *, now: float, duration_s: float, worker_pid: int
    ) -> InitRecord:
        """A worker's ``initialize()`` raised ``error``."""
        brief = dataclasses.replace(error, traceback=None)
        return dataclasses.replace(
            self,
            phase=InitPhase.FAILED,
            failures=self.failures + 1,
            consecutive_failures=self.consecutive_failures + 1,
            first_failure_at=self.first_failure_at or error.at,
            last_finished_at=utc_iso(now),
            last_duration_s=round(duration_s, 6),
            last_error=error,
            recent_errors=(*self.recent_errors, brief)[-RECENT_ERRORS:],
            worker_pid=worker_pid,
            updated_at=utc_iso(now),
        )

    # -- JSON ----------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["phase"] = self.phase.value
        data["last_error"] = self.last_error.to_json() if self.last_error else None
        data["recent_errors"] = [e.to_json() for e in self.recent_errors]
        return data

    @classmethod
    def from_json(cls, raw: Any, where: str = "record") -> InitRecord:
        """Parse a record; raise :class:`RecordError` naming the first bad field."""
        data = _mapping(raw, where)
        version = _field(data, "schema_version", int, where)
        if version != RECORD_SCHEMA_VERSION:
            raise RecordError(
                where, f"schema_version {version!r}, expected {RECORD_SCHEMA_VERSION}"
            )
        phase = _field(data, "phase", str, where)
        try:
            parsed_phase = InitPhase(phase)
        except ValueError:
            allowed = ", ".join(p.value for p in InitPhase)
            raise RecordError(where, f"phase {phase!r}, expected one of {allowed}") from None
        optional_int = (int, type(None))
        optional_str = (str, type(None))
        last_error = data.get("last_error")
        recent = _field(data, "recent_errors", list, where, default=[])
        duration = _field(data, "last_duration_s", (int, float, type(None)), where, default=None)
        return cls(
            model_name=_field(data, "model_name", str, where),
            model_version=_field(data, "model_version", str, where),
            phase=parsed_phase,
            attempts=_field(data, "attempts", int, where),
            failures=_field(data, "failures", int, where),
            consecutive_failures=_field(data, "consecutive_failures", int, where),
            attempts_to_ready=_field(data, "attempts_to_ready", optional_int, where, default=None),
            first_failure_at=_field(data, "first_failure_at", optional_str, where, default=None),
            last_started_at=_field(data, "last_started_at", optional_str, where, default=None),
            last_finished_at=_field(data, "last_finished_at", optional_str, where, default=None),
            last_duration_s=_seconds(duration, where),
            last_error=None
            if last_error is None
            else ErrorInfo.from_json(last_error, where, "last_error"),
            recent_errors=tuple(
                ErrorInfo.from_json(e, where, f"recent_errors[{i}]") for i, e in enumerate(recent)
            ),
            server_pid=_field(data, "server_pid", optional_int, where, default=None),
            worker_pid=_field(data, "worker_pid", optional_int, where, default=None),
            updated_at=_field(data, "updated_at", optional_str, where, default=None),
        )


_MISSING: Final = object()


def _mapping(raw: Any, where: str, name: str = "") -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        if name:
            raise RecordError(where, f"field {name!r} is {type(raw).__name__}, expected an object")
        raise RecordError(where, f"expected a JSON object, got {type(raw).__name__}")
    return raw


def _field(
    data: Mapping[str, Any],
    key: str,
    kind: Any,
    where: str,
    default: Any = _MISSING,
    prefix: str = "",
) -> Any:
    key_name = prefix + key
    if key not in data:
        if default is _MISSING:
            raise RecordError(where, f"missing field {key_name!r}")
        return default
    value = data[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    # bool is an int subclass; a record never stores booleans in these fields.
    if isinstance(value, bool) or not isinstance(value, kinds):
        expected = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
        shown = repr(value)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise RecordError(where, f"field {key_name!r} is {shown}, expected {expected}")
    return value


def _seconds(value: int | float | None, where: str) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except OverflowError:  # a JSON integer beyond a float's range
        seconds = math.inf
    if not math.isfinite(seconds) or seconds < 0:
        raise RecordError(where, "field 'last_duration_s' is not a finite number of seconds >= 0")
    return seconds


def pid_alive(pid: int) -> bool:
    """True when a process with this id exists on this machine (ours to signal or not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def resolve_state_dir(configured: str | None = None) -> Path:
    """Where records live: ``configured`` (``health.state_dir``), else ``$TS_HEALTH_STATE_DIR``,
    else ``<system temp dir>/ts-health``."""
    if configured:
        return Path(configured)
    from_env = os.environ.get(ENV_STATE_DIR)
    if from_env:
        return Path(from_env)
    return Path(tempfile.gettempdir()) / "ts-health"


class StateStore:
    """Reads and updates the record of one model name + version under ``root``."""

    def __init__(self, root: Path | str, model_name: str, model_version: str) -> None:
        self.root: Final = Path(root)
        self.model_name: Final = model_name
        self.model_version: Final = model_version
        # Quote so that any model name is one safe path component.
        self.directory: Final = (
            self.root / quote(model_name, safe="") / quote(model_version, safe="")
        )
        self.path: Final = self.directory / "init.json"

    def __repr__(self) -> str:
        return f"StateStore({str(self.path)!r})"

    def read(self) -> InitRecord | None:
        """The record, or ``None`` when there is none yet.

        Raises:
            RecordError: the file exists but is not a valid record.
            OSError: the file exists but cannot be read.
        """
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            # Decoding inside the try: a file that is not UTF-8 is a bad record too.
            raw = json.loads(data.decode("utf-8"))
        except ValueError as exc:
            raise RecordError(self.path, f"not JSON ({exc})") from None
        except RecursionError:
            raise RecordError(self.path, "not JSON (nested too deeply)") from None
        return InitRecord.from_json(raw, str(self.path))

    def update(self, change: Callable[[InitRecord | None], InitRecord]) -> InitRecord:
        """Apply ``change`` to the current record under an exclusive lock; write atomically.

        A corrupt record is replaced (``change`` gets ``None``): the history is lost, but the
        model keeps serving and the next reader sees a valid file.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._locked():
            try:
                current = self.read()
            except RecordError:
                current = None
            updated = change(current)
            self._write(updated)
        return updated

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.directory / "init.lock", "a+b") as handle:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                if fcntl is not None:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _write(self, record: InitRecord) -> None:
        payload = json.dumps(record.to_json(), indent=2, sort_keys=False).encode("utf-8")
        fd, temp = tempfile.mkstemp(prefix=".init.", suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise


RecordError.__module__ = "ts_health_handler"
