"""Observing TorchServe: ask through the client, read the records, judge each version.

Shared by ``ts-health`` (probe) and ``ts-health serve``; standard library only. Each look at a
model version costs TorchServe one ``GET /models/{name}`` and, only while a worker is READY,
one customized describe (``docs/probe.md``).
"""

# No `from __future__ import annotations`: typing would compile each named-tuple field's
# annotation when ts-health starts (docs/architecture.md, "Start-up").
from collections.abc import Sequence
from typing import NamedTuple, Optional

from .._document import StatusDoc
from .._errors import ServerError
from .._lifecycle import ModelState, ReasonKind
from ..record import Beat, InitRecord, RecordError, StateStore, read_beats, read_record
from ..torchserve import ModelEntry, TorchServeClient, Unreachable
from ._assess import ModelHealth, Observation, assess
from ._exit import ExitCode, exit_code_for
from ._guard import forget_pending, hold_describe, remember_pending
from ._match import Match, match
from ._settings import Settings

__all__ = [
    "PingResult",
    "ask_ping",
    "current_beats",
    "observe",
    "observe_entry",
    "observe_model",
    "read_records",
]


def current_beats(beats: Sequence[Beat], entry: ModelEntry) -> list[Beat]:
    """The heartbeats of the worker processes TorchServe describes as READY now (by worker
    id and pid: a beat of an earlier process of the same worker thread is not current)."""
    ready = {(w.id, w.pid) for w in entry.workers if w.ready}
    current = [b for b in beats if (b.worker, b.pid) in ready]
    if len(current) == len(beats):
        return current
    # torchrun: TorchServe describes the worker by whichever rank reported its pid last; the
    # first rank beats. A sibling rank (the same parent, torchrun) stands for it.
    parents = {(w.id, _parent(w.pid)) for w in entry.workers if w.ready and w.pid is not None}
    return [
        b
        for b in beats
        if (b.worker, b.pid) in ready
        or (b.parent_pid is not None and (b.worker, b.parent_pid) in parents)
    ]


def _parent(pid: int) -> Optional[int]:
    from .._proc import read_stat  # here: only torchrun needs it, and it costs start-up

    stat = read_stat(pid)
    return None if stat is None else stat.ppid


def read_records(store: StateStore, entry: ModelEntry) -> tuple[Match, str, Optional[str]]:
    """The record in ``store`` of the registration ``entry`` describes (and the newest other
    one), the path to show for it, and why a record file could not be read (when none is
    current).

    The path is the current record's file; else an unreadable file's; else the directory.
    """
    found: list[tuple[str, InitRecord]] = []
    errors: list[tuple[str, str]] = []
    try:
        paths = store.files()
    except OSError as exc:
        paths = []
        errors.append(
            (str(store.directory), f"cannot read {store.directory}: {exc.strerror or exc}")
        )
    for path in paths:
        try:
            record = read_record(path)
        except RecordError as exc:
            errors.append((str(path), str(exc)))
            continue
        except OSError as exc:
            errors.append((str(path), f"cannot read {path}: {exc.strerror or exc}"))
            continue
        if record is not None:
            found.append((str(path), record))
    matched = match(entry, found)
    if matched.path is not None:
        return matched, matched.path, None
    if errors:
        return matched, errors[0][0], errors[0][1]
    return matched, str(store.directory), None


def observe(
    client: TorchServeClient,
    settings: Settings,
    model: str,
    version: Optional[str],
    *,
    ping_healthy: Optional[bool],
    now: float,
) -> ModelHealth:
    """One version of ``model`` (``None``: the default version), judged."""
    try:
        entry = client.describe(model, version)
    except Unreachable as exc:
        return ModelHealth(
            model, version or "?", ModelState.UNREACHABLE, str(exc), kind=ReasonKind.UNREACHABLE
        )
    return observe_entry(client, settings, entry, ping_healthy=ping_healthy, now=now)


def observe_model(
    client: TorchServeClient,
    settings: Settings,
    model: str,
    *,
    ping_healthy: Optional[bool],
    now: float,
) -> list[ModelHealth]:
    """Every registered version of ``model``, judged, the default version first.

    ``GET /models/{name}/all`` lists the versions; TorchServe marks none as the default, so
    with more than one the default is asked for too (``GET /models/{name}``).
    """
    try:
        entries = client.describe_all(model, "all")
        default = entries[0] if len(entries) == 1 else client.describe(model)
    except Unreachable as exc:
        return [
            ModelHealth(model, "?", ModelState.UNREACHABLE, str(exc), kind=ReasonKind.UNREACHABLE)
        ]
    ordered = [default, *(e for e in entries if e.version != default.version)]
    return [
        observe_entry(client, settings, entry, ping_healthy=ping_healthy, now=now, default=i == 0)
        for i, entry in enumerate(ordered)
    ]


def observe_entry(
    client: TorchServeClient,
    settings: Settings,
    entry: ModelEntry,
    *,
    ping_healthy: Optional[bool],
    now: float,
    default: bool = True,
) -> ModelHealth:
    """Judge one described version: its status document (when a worker is READY) and its
    record, then :func:`assess`."""
    status: Optional[StatusDoc] = None
    status_error: Optional[str] = "not asked: no READY worker"
    store = StateStore(settings.state_dir, entry.name, entry.version)
    directory = store.directory
    beats = current_beats(read_beats(directory), entry)
    if entry.ready_workers:
        held = hold_describe(
            beats,
            entry.ready_workers,
            directory,
            now,
            settings.describe_timeout,
            stateful=entry.stateful,
            continuous=entry.continuous_batching,
        )
        if held is not None:
            status_error = held
        else:
            status, status_error = client.customized_status(entry.name, entry.version)
            if status is not None:
                forget_pending(directory)
            elif beats:  # ours, and unanswered: it may wait in the queue
                remember_pending(directory, now)
    records, record_path, record_error = read_records(store, entry)
    seen = Observation(
        describe=entry,
        status=status,
        status_error=status_error,
        record=records.current,
        record_path=record_path,
        record_error=record_error,
        previous=records.previous,
        beats=tuple(beats),
        ping_healthy=ping_healthy,
        now=now,
        default=default,
    )
    return assess(entry.name, entry.version, seen)


class PingResult(NamedTuple):
    """What ``/ping`` said for ``status``: healthy or not and its text, or why it failed.

    ``PingResult()`` is a ``/ping`` not answered yet: not ok, since nothing is known.
    """

    healthy: Optional[bool] = None
    status: Optional[str] = None
    error: Optional[str] = None
    #: The exit code of the failure that ``error`` names (unreachable, bad answer, usage).
    failure: Optional[ExitCode] = None

    @property
    def code(self) -> ExitCode:
        """OK only for a Healthy answer; the failure's code; else not ready."""
        if self.failure is not None:
            return self.failure
        return ExitCode.OK if self.healthy is True else ExitCode.NOT_READY


def ask_ping(client: TorchServeClient) -> PingResult:
    """``/ping``, with a failure kept as ``error`` (a refused token still raises)."""
    try:
        healthy, status = client.ping()
    except ServerError as exc:
        code = exit_code_for(exc)
        if code is ExitCode.USAGE:
            raise
        return PingResult(error=str(exc), failure=code)
    return PingResult(healthy, status)
