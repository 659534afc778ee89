"""The judgement: one state word and a one-line reason per model version, a pure function.

Nothing here does I/O: :func:`assess` reads an :class:`Observation` (what was seen, already
parsed) and returns a :class:`ModelHealth`. ``docs/probe.md`` explains the order of states.
"""

# No `from __future__ import annotations`: typing would compile each named-tuple field's
# annotation when ts-health starts (docs/architecture.md, "Start-up").
from collections.abc import Callable, Sequence
from typing import Final, NamedTuple, Optional

from .._document import StatusDoc
from .._lifecycle import InitPhase, ModelState, ReasonKind
from .._text import one_line
from ..record import Beat, InitRecord, parse_iso
from ..torchserve import JobQueue, ModelEntry
from ._serving import after_ready, last_death

__all__ = ["ModelHealth", "Observation", "assess"]

#: Longest error message shown in a one-line reason (JSON keeps it whole).
REASON_MESSAGE_LIMIT: Final = 300


def _workers_text(entry: ModelEntry) -> str:
    """READY worker threads of all of them: ``1/2``."""
    return f"{entry.ready_workers}/{len(entry.workers)}"


def _queue_text(queue: JobQueue) -> str:
    """``3 pending, 97 free``."""
    return f"{queue.pending} pending, {queue.remaining} free"


class Observation(NamedTuple):
    """Everything the probe saw about one model version, as plain data.

    Attributes:
        describe: the model version's entry of ``GET /models/{name}``.
        status: our status document from ``customizedMetadata`` (checked when read), or
            ``None``.
        status_error: why ``status`` is ``None`` (not asked, timed out, not ours...).
        record: the persisted initialization record of the registration described now, or
            ``None`` (``_match``).
        record_path: that record's file, or the directory where records were looked for.
        record_error: why a record file could not be read.
        previous: the newest record of another registration or server run: history.
        beats: the heartbeats of the READY worker processes (``record._beat``).
        ping_healthy: ``/ping`` answered 200 (True), 500 (False), or was not asked (None).
        now: wall-clock epoch seconds, to compare with the record's timestamps.
        default: this is the model's default version (what ``/predictions/{name}`` serves).
    """

    describe: ModelEntry
    status: Optional[StatusDoc] = None
    status_error: Optional[str] = None
    record: Optional[InitRecord] = None
    record_path: Optional[str] = None
    record_error: Optional[str] = None
    previous: Optional[InitRecord] = None
    beats: tuple[Beat, ...] = ()
    ping_healthy: Optional[bool] = None
    now: float = 0.0
    default: bool = True


class ModelHealth(NamedTuple):
    """The health of one model version: a state, a one-line reason, the evidence, and what
    the reason is about (``kind``: one word of :class:`ReasonKind`, bounded, for labels)."""

    model: str
    version: str
    state: ModelState
    reason: str
    observation: Optional[Observation] = None
    kind: ReasonKind = ReasonKind.UNKNOWN

    @property
    def default(self) -> bool:
        """Whether this is the model's default version (unknown counts as default)."""
        return self.observation is None or self.observation.default

    def cells(self, queue_text: Callable[[JobQueue], str] = _queue_text) -> tuple[str, str]:
        """The WORKERS and QUEUE cells of this version's row in a table: READY workers of all
        (``1/2``) and the job queue as ``queue_text`` writes it (``3 pending, 97 free``);
        ``-`` for what was not seen."""
        if self.observation is None:
            return "-", "-"
        entry = self.observation.describe
        return _workers_text(entry), "-" if entry.queue is None else queue_text(entry.queue)

    @property
    def held(self) -> bool:
        """Initialization failed and the handler holds the failure (no retry will come)."""
        status = None if self.observation is None else self.observation.status
        return status is not None and status["status"] == "failed"


def assess(model: str, version: str, seen: Observation) -> ModelHealth:
    """Give one model version its state and a one-line reason.

    With no READY worker: ``unhealthy`` when initialization keeps failing and either
    ``/ping`` says Unhealthy or the first failure of the streak is at least
    ``maxRetryTimeoutInSec`` old; ``failing`` while it fails within that time; otherwise
    ``initializing``. With a READY worker: ``failing`` when our status says ``failed`` (the
    hold policy), then what the heartbeats say (``stuck``, ``failing``), ``saturated`` when
    the job queue is full, ``unstable`` after deaths, ``degraded`` when the user check fails,
    else ``ready``.
    """
    worker_text = f"{_workers_text(seen.describe)} workers READY"
    if seen.describe.ready_workers == 0:
        state, kind, reason = _without_ready_worker(seen, worker_text)
    else:
        state, kind, reason = _with_ready_worker(seen, worker_text)
    return ModelHealth(model, version, state, reason, seen, kind)


#: A state, what its reason is about, and the reason.
_Verdict = tuple[ModelState, ReasonKind, str]


def _without_ready_worker(seen: Observation, worker_text: str) -> _Verdict:
    record = seen.record
    if record is not None and record.consecutive_failures > 0:
        return _initialization_failing(seen, record, worker_text)
    entry = seen.describe
    if not entry.workers and entry.min_workers == 0:
        return (
            ModelState.UNHEALTHY,
            ReasonKind.NO_WORKERS,
            "no workers (minWorkers is 0): scale the model with PUT /models/{name}?min_worker=1",
        )
    text = _initializing_text(worker_text, seen)
    death = last_death(record)
    if death is not None:
        text += f"; the last worker process ended while serving: {death.describe()}"
    restarting = record is not None and record.phase is InitPhase.READY
    return (
        ModelState.INITIALIZING,
        ReasonKind.RESTARTING if restarting else ReasonKind.LOADING,
        text,
    )


def _initialization_failing(seen: Observation, record: InitRecord, worker_text: str) -> _Verdict:
    """``unhealthy`` past the retry window or while ``/ping`` says so, else ``failing``."""
    error = _error_text(record)
    failures = _times(record.consecutive_failures)
    limit = seen.describe.max_retry_timeout_s
    since = _since(record.first_failure_at, seen.now)
    if since is not None and limit is not None and since >= limit:
        return (
            ModelState.UNHEALTHY,
            ReasonKind.RETRY_WINDOW_PASSED,
            f"initialization failed {failures} in a row over {since:.0f} s, "
            f"past maxRetryTimeoutInSec={limit}: {error}",
        )
    if seen.ping_healthy is False:
        return (
            ModelState.UNHEALTHY,
            ReasonKind.PING_UNHEALTHY,
            f"/ping reports Unhealthy; initialization failed {failures} in a row: {error}",
        )
    retry = "TorchServe is retrying"
    if record.phase is InitPhase.INITIALIZING:
        retry = f"attempt {record.attempts} in progress"
    return (
        ModelState.FAILING,
        ReasonKind.INIT_FAILED,
        f"initialization failed {failures} in a row ({worker_text}; {retry}): {error}",
    )


def _with_ready_worker(seen: Observation, worker_text: str) -> _Verdict:
    status = seen.status
    if status is not None and status["status"] == "failed":
        return (
            ModelState.FAILING,
            ReasonKind.INIT_FAILED,
            f"initialization failed and is held; {_held_text(status)}",
        )
    watch = after_ready(seen.beats, seen.describe.ready_workers, seen.record, seen.now)
    if watch.state is not None:
        return watch.state, watch.kind or ReasonKind.UNKNOWN, f"{watch.reason} ({worker_text})"
    queue = seen.describe.queue
    if queue is not None and queue.full:
        return (
            ModelState.SATURATED,
            ReasonKind.QUEUE_FULL,
            f"job queue full: {queue.pending} pending, 0 free ({worker_text})",
        )
    if watch.unstable is not None:
        return ModelState.UNSTABLE, ReasonKind.DEATHS, f"{watch.unstable} ({worker_text})"
    if status is not None and status["status"] == "degraded":
        return (
            ModelState.DEGRADED,
            ReasonKind.CHECK_FAILED,
            f"{_check_text(status)} ({worker_text})",
        )
    return ModelState.READY, ReasonKind.OK, _ready_text(seen, worker_text, watch.notes)


def _ready_text(seen: Observation, worker_text: str, notes: Sequence[str]) -> str:
    """A ready version's reason: its workers and queue, then whatever else was noticed."""
    reason = worker_text
    queue = seen.describe.queue
    if queue is not None:
        reason += f", {_queue_text(queue)} in the job queue"
    failing = _other_worker_failing(seen)
    if failing:
        reason += f"; other worker failing: {failing}"
    for note in notes:
        reason += f"; {note}"
    if seen.status_error:
        reason += f"; health status unknown: {seen.status_error}"
    if seen.record_error:
        reason += f"; initialization record unavailable: {seen.record_error}"
    return reason


def _since(stamp: Optional[str], now: float) -> Optional[float]:
    if not stamp:
        return None
    try:
        return max(0.0, now - parse_iso(stamp))
    except ValueError:
        return None


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


def _short_type(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _message(text: str) -> str:
    return one_line(text, REASON_MESSAGE_LIMIT)


def _error_text(record: InitRecord) -> str:
    error = record.last_error
    if error is None:
        return "no error recorded"
    return f"{_short_type(error.type)}: {_message(error.message)}"


def _initializing_text(worker_text: str, seen: Observation) -> str:
    record = seen.record
    if record is None:
        where = f" in {seen.record_path}" if seen.record_path else ""
        detail = seen.record_error or f"no initialization record{where}"
        before = seen.previous
        if (
            before is not None
            and before.last_error is not None
            and before.phase is not InitPhase.READY
        ):
            detail += (
                f"; an earlier registration or server run failed: "
                f"{_short_type(before.last_error.type)}: {_message(before.last_error.message)}"
            )
        return f"no READY worker yet ({worker_text}; {detail})"
    if record.phase is InitPhase.READY:
        return (
            f"no READY worker ({worker_text}); the last initialization succeeded at "
            f"{record.last_finished_at}, a worker is restarting"
        )
    return (
        f"no READY worker yet ({worker_text}); attempt {record.attempts} started at "
        f"{record.last_started_at}"
    )


def _other_worker_failing(seen: Observation) -> Optional[str]:
    """The newest failure of a worker thread that is not READY, from the record."""
    record = seen.record
    if record is None:
        return None
    errors = []
    for worker in seen.describe.workers:
        run = None if worker.ready else record.run(worker.id)
        if run is not None and run.phase is InitPhase.FAILED and run.last_error is not None:
            errors.append(run.last_error)
    if not errors:
        return None
    error = max(errors, key=lambda e: e.at)
    return f"{_short_type(error.type)}: {_message(error.message)}"


def _held_text(status: StatusDoc) -> str:
    error = status["initialization"].get("error")
    if error is not None:
        text = f"{_short_type(error['type'])}: {_message(error['message'])}"
    else:
        text = "no error reported"
    return f"TorchServe will not retry (health.on_init_failure: hold): {text}"


def _check_text(status: StatusDoc) -> str:
    check = status["check"]
    text = f"health check {check['status']}"
    error = check.get("error")
    if error:
        text += f": {_message(error)}"
    return text
