"""The heartbeat of a READY worker: what it is doing now, written by a watchdog thread.

Standard library only. TorchServe describes a worker as READY while one request has hung for
minutes, while every request fails, and until the process is gone; and a hung worker cannot
answer the customized describe. So a READY worker's watchdog thread (``handler._watchdog``)
writes one small file at a bounded rate, whatever the worker's main thread is doing:
``<state dir>/<model>/<version>/beat.<server>.<worker id>.json``. The monitor reads it beside
the record; a file that stops changing while its process lives means the whole process is
frozen (or C code holds the GIL). There is no file write per request: at most one per
interval by a request, the first after a beat that showed the worker idle.
"""

# No `from __future__ import annotations`: typing would compile each named-tuple field's
# annotation when ts-health starts (docs/architecture.md, "Start-up").
import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, NamedTuple, Optional
from urllib.parse import quote

from .. import _thresholds as thresholds
from ._fields import GONE, RecordError, field, load, mapping
from ._record import ErrorInfo

__all__ = ["BEAT_SCHEMA_VERSION", "Beat", "beat_path", "read_beat", "read_beats", "write_beat"]

BEAT_SCHEMA_VERSION: Final = 1
#: Mode of a beat file: readable by a probe running as another user.
BEAT_MODE: Final = 0o644


class Beat(NamedTuple):
    """One heartbeat: times are epoch seconds (wall clock) as the worker saw them."""

    worker: str
    pid: int
    #: When the watchdog wrote this beat.
    at: float
    #: Seconds between beats: a beat older than a few of these is a stopped heartbeat.
    interval_s: float
    #: Requests seen (one per batch item), those that raised, and the failures in a row.
    requests: int
    failed: int
    consecutive_failures: int
    #: When the oldest ``handle()`` call now running started; ``None`` when the worker is
    #: idle.
    in_flight_since: Optional[float] = None
    #: When the last request started (finished, when ``in_flight_since`` is ``None``).
    last_request_at: Optional[float] = None
    #: When this worker last answered a describe request.
    describe_at: Optional[float] = None
    #: The newest failed request.
    last_error: Optional[ErrorInfo] = None
    #: A fatal error (``health.fatal_errors``): the worker will not serve again.
    fatal: Optional[ErrorInfo] = None
    #: The worker ends itself after answering (``health.on_fatal_error: restart``).
    restarting: bool = False
    #: The thresholds this worker was configured with, so that readers judge alike.
    stuck_after_s: float = thresholds.STUCK_AFTER_S
    response_timeout_s: float = thresholds.RESPONSE_TIMEOUT_S
    failing_after: int = thresholds.FAILING_AFTER
    unstable_after_deaths: int = thresholds.UNSTABLE_AFTER
    death_window_s: float = thresholds.DEATH_WINDOW_S
    #: Requests in the ``handle()`` calls running now (an async worker runs many at once).
    in_flight: int = 0
    #: TorchServe's ids of the oldest running call's requests (a few at most).
    request_ids: tuple[str, ...] = ()
    #: Continuous batching: requests begun and not ended (between their calls too), and
    #: when the oldest of them began; ``None`` in the other modes.
    open_requests: Optional[int] = None
    open_since: Optional[float] = None
    #: How TorchServe serves the model (``ServingMode``'s word).
    mode: str = "default"
    #: The worker process's parent: under torchrun, TorchServe describes the worker by the
    #: pid of the process it started (torchrun), the parent of the rank that beats.
    parent_pid: Optional[int] = None

    def stuck_for(self, now: float) -> Optional[float]:
        """How long the running request has run at ``now``, when it is past the threshold."""
        if self.in_flight_since is None:
            return None
        running = max(0.0, now - self.in_flight_since)
        return running if running >= self.stuck_after_s else None

    def stale_after_s(self) -> float:
        """Past this age the heartbeat has stopped (three missed beats, at least 5 s)."""
        return max(3 * self.interval_s, self.interval_s + 5.0)

    def to_json(self) -> dict[str, Any]:
        data = self._asdict()
        data["last_error"] = None if self.last_error is None else self.last_error.to_json()
        data["fatal"] = None if self.fatal is None else self.fatal.to_json()
        data["request_ids"] = list(self.request_ids)
        return {"schema_version": BEAT_SCHEMA_VERSION, **data}

    @classmethod
    def from_json(cls, raw: Any, where: str) -> "Beat":
        data: Mapping[str, Any] = mapping(raw, where)
        version = field(data, "schema_version", int, where)
        if version != BEAT_SCHEMA_VERSION:
            raise RecordError(where, f"schema_version {version!r}, expected {BEAT_SCHEMA_VERSION}")
        number = (int, float)
        optional = (int, float, type(None))
        error, fatal = data.get("last_error"), data.get("fatal")
        since = field(data, "in_flight_since", optional, where, default=None)
        ids = field(data, "request_ids", list, where, default=[])
        return cls(
            worker=field(data, "worker", str, where),
            pid=field(data, "pid", int, where),
            at=float(field(data, "at", number, where)),
            interval_s=float(field(data, "interval_s", number, where)),
            requests=field(data, "requests", int, where),
            failed=field(data, "failed", int, where),
            consecutive_failures=field(data, "consecutive_failures", int, where),
            in_flight_since=since,
            last_request_at=field(data, "last_request_at", optional, where, default=None),
            describe_at=field(data, "describe_at", optional, where, default=None),
            last_error=None if error is None else ErrorInfo.from_json(error, where, "last_error"),
            fatal=None if fatal is None else ErrorInfo.from_json(fatal, where, "fatal"),
            stuck_after_s=float(
                field(data, "stuck_after_s", number, where, default=thresholds.STUCK_AFTER_S)
            ),
            response_timeout_s=float(
                field(
                    data, "response_timeout_s", number, where, default=thresholds.RESPONSE_TIMEOUT_S
                )
            ),
            restarting=data.get("restarting", False) is True,
            failing_after=field(
                data, "failing_after", int, where, default=thresholds.FAILING_AFTER
            ),
            unstable_after_deaths=field(
                data, "unstable_after_deaths", int, where, default=thresholds.UNSTABLE_AFTER
            ),
            death_window_s=float(
                field(data, "death_window_s", number, where, default=thresholds.DEATH_WINDOW_S)
            ),
            # A beat without the count (written before it existed) ran one call at most.
            in_flight=field(data, "in_flight", int, where, default=0 if since is None else 1),
            request_ids=tuple(str(i) for i in ids if isinstance(i, str)),
            open_requests=field(data, "open_requests", (int, type(None)), where, default=None),
            open_since=field(data, "open_since", optional, where, default=None),
            mode=field(data, "mode", str, where, default="default"),
            parent_pid=field(data, "parent_pid", (int, type(None)), where, default=None),
        )


def beat_path(directory: Path, server: Optional[str], worker: str) -> Path:
    """The beat file of one worker thread of one server, in a version's directory."""
    return directory / f"beat.{quote(server or 'local', safe='')}.{quote(worker, safe='')}.json"


def write_beat(path: Path, beat: Beat) -> None:
    """Replace ``path`` with ``beat`` atomically (one writer per file: no lock needed)."""
    import tempfile  # here: readers of beats (the probe) never need it

    payload = json.dumps(beat.to_json()).encode("utf-8")
    fd, temp = tempfile.mkstemp(prefix=".beat.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), BEAT_MODE)
            handle.write(payload)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def read_beat(path: Path) -> Optional[Beat]:
    """The beat in ``path``, or ``None`` when there is none.

    Raises:
        RecordError: not a valid beat. OSError: unreadable.
    """
    raw = load(path)
    if raw is GONE:
        return None
    return Beat.from_json(raw, str(path))


#: Beat files looked at per model version (the newest); servers long gone leave theirs.
MAX_BEAT_FILES: Final = 64


def read_beats(directory: Path) -> list[Beat]:
    """Every readable beat of a model version (all servers), newest first.

    A beat that cannot be read is skipped: it is one worker's view, and the describe still
    shows that worker; the record keeps what matters when a process is gone.
    """
    try:
        with os.scandir(directory) as entries:
            paths = [
                Path(e.path)
                for e in entries
                if e.name.startswith("beat.") and e.name.endswith(".json")
            ]
    except OSError:
        return []
    beats = []
    for path in paths:
        try:
            beat = read_beat(path)
        except (OSError, RecordError):
            continue
        if beat is not None:
            beats.append(beat)
    return sorted(beats, key=lambda b: b.at, reverse=True)[:MAX_BEAT_FILES]
