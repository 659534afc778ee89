"""What ``ts-health serve`` remembers across observations: each version's state changes.

Pure functions over frozen values; the observer keeps one :class:`Track` per model version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from .._lifecycle import ModelState

__all__ = ["Change", "Track", "advance"]

#: State changes kept per model version (the page shows them as a timeline).
KEPT_CHANGES: Final = 10


@dataclass(frozen=True)
class Change:
    """A model version entered ``state`` at ``at`` (wall-clock epoch seconds)."""

    state: ModelState
    at: float
    reason: str


@dataclass(frozen=True)
class Track:
    """The current state of one model version, since when, and the last changes (oldest
    first). ``since`` is when this server first saw the state: a state that held before
    ``ts-health serve`` started counts from its start."""

    state: ModelState
    since: float
    changes: tuple[Change, ...] = ()


def advance(track: Track | None, state: ModelState, reason: str, now: float) -> Track:
    """``track`` after an observation of ``state`` at ``now``."""
    if track is not None and track.state is state:
        return track
    changes = (*(track.changes if track else ()), Change(state, now, reason))
    return Track(state, now, changes[-KEPT_CHANGES:])
