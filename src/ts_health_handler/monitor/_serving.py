"""The truth after READY: hung requests, failing requests, stopped heartbeats, deaths.

Pure functions over the heartbeats of the READY worker processes (``record._beat``) and the
deaths the record keeps (``record._deaths``). TorchServe says READY through all of these;
``assess`` asks :func:`after_ready` before it says READY too.

A model version is ``stuck`` or ``failing`` only when every READY worker is: while one
worker serves, requests still get answers, and the others are named in the reason.
"""

# No `from __future__ import annotations`: typing would compile each named-tuple field's
# annotation when ts-health starts (docs/architecture.md, "Start-up").
from collections.abc import Sequence
from typing import Final, NamedTuple, Optional

from .. import _thresholds as thresholds
from .._lifecycle import ModelState, ReasonKind
from .._text import one_line
from ..record import Beat, Death, ErrorInfo, InitRecord, deaths_within

__all__ = ["Watch", "after_ready", "last_death"]

MESSAGE_LIMIT: Final = 300


class Watch(NamedTuple):
    """What the heartbeats and the deaths say about a version with READY workers."""

    #: ``stuck`` or ``failing`` when every READY worker is; else ``None``.
    state: Optional[ModelState] = None
    reason: str = ""
    #: Why the version is ``unstable`` (too many deaths while serving), if it is.
    unstable: Optional[str] = None
    #: What a READY verdict should still mention (one worker of several stuck, a death).
    notes: tuple[str, ...] = ()
    #: What ``reason`` is about, with ``state``: stuck or failing how.
    kind: Optional[ReasonKind] = None


def after_ready(
    beats: Sequence[Beat], ready: int, record: Optional[InitRecord], now: float
) -> Watch:
    """Judge ``ready`` READY workers by their ``beats`` and the ``record``'s deaths."""
    notes: list[str] = []
    problems = [p for p in (_problem(b, now) for b in beats) if p is not None]
    for state in (ModelState.STUCK, ModelState.FAILING):
        found = [(kind, text) for seen, kind, text in problems if seen is state]
        if not found:
            continue
        kind, text = found[0]
        if len(found) >= ready and len(beats) >= ready:
            return Watch(state, text, kind=kind)
        notes.append(f"{len(found)} of {ready} workers {state.value}: {text}")
    unstable, death_note = _deaths(beats, record, now)
    if death_note:
        notes.append(death_note)
    return Watch(None, "", unstable, tuple(notes))


def last_death(record: Optional[InitRecord]) -> Optional[Death]:
    """The newest death the record keeps (of the registration, once narrowed)."""
    if record is None or not record.deaths:
        return None
    return max(record.deaths, key=lambda d: d.found)


def _problem(beat: Beat, now: float) -> Optional[tuple[ModelState, ReasonKind, str]]:
    age = now - beat.at
    if age > beat.stale_after_s():
        return (
            ModelState.STUCK,
            ReasonKind.HEARTBEAT_STOPPED,
            f"heartbeat stopped {age:.0f} s ago (beats every {beat.interval_s:g} s): the worker "
            f"process {beat.pid} is frozen, or native code holds the GIL",
        )
    running = beat.stuck_for(now)
    if running is not None:
        return (
            ModelState.STUCK,
            ReasonKind.REQUEST_STUCK,
            f"{_oldest(beat)} has run for {running:.0f} s (stuck after {beat.stuck_after_s:g} s); "
            f"TorchServe kills the worker at responseTimeout {beat.response_timeout_s:g} s",
        )
    if beat.fatal is not None:
        policy = "the worker restarts" if beat.restarting else "health.on_fatal_error: report"
        return (
            ModelState.FAILING,
            ReasonKind.FATAL_ERROR,
            f"fatal error, {policy}: {_error(beat.fatal)}",
        )
    if beat.consecutive_failures >= beat.failing_after and beat.last_error is not None:
        return (
            ModelState.FAILING,
            ReasonKind.REQUESTS_FAILING,
            f"the last {beat.consecutive_failures} requests failed, none succeeded since: "
            f"{_error(beat.last_error)}",
        )
    return None


def _oldest(beat: Beat) -> str:
    """The request a stuck verdict is about: "one request", or the oldest of several (an
    async worker runs many at once; the beat names its TorchServe request ids)."""
    if beat.in_flight > 1:
        return f"the oldest of {beat.in_flight} requests in flight"
    return "one request"


def _deaths(
    beats: Sequence[Beat], record: Optional[InitRecord], now: float
) -> tuple[Optional[str], Optional[str]]:
    """(why unstable, or None; a note on recent deaths below the threshold, or None)."""
    if record is None or not record.deaths:
        return None, None
    # Without a heartbeat: the defaults of health.unstable_after_deaths and death_window_s.
    threshold = beats[0].unstable_after_deaths if beats else thresholds.UNSTABLE_AFTER
    window = beats[0].death_window_s if beats else thresholds.DEATH_WINDOW_S
    recent = deaths_within(record.deaths, now, window)
    if not recent:
        return None, None
    times = "once" if len(recent) == 1 else f"{len(recent)} times"
    text = (
        f"a worker died {times} in the last {window / 60:g} min while serving "
        f"(last: {recent[-1].describe()})"
    )
    if len(recent) >= threshold:
        return f"{text}; unstable from {threshold}", None
    return None, text


def _error(error: ErrorInfo) -> str:
    kind = error.type.rsplit(".", 1)[-1]
    return f"{kind}: {one_line(error.message, MESSAGE_LIMIT)}"
