"""The latest observation of one TorchServe, as one frozen value that requests read.

The observer builds a new :class:`Snapshot` after every answer it gets and swaps it in;
HTTP requests read whichever snapshot is current and never wait on TorchServe.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..monitor import ModelHealth, PingResult
from ._history import Track

__all__ = ["ModelSeen", "Snapshot"]


@dataclass(frozen=True)
class ModelSeen:
    """Every version of one model as last observed.

    Attributes:
        name: the model.
        healths: one verdict per registered version, the default first (empty on ``error``).
        error: why the model could not be described (not registered, token refused, ...).
        registered: ``False`` when TorchServe said the model is not registered.
        at: when the observation finished (monotonic seconds).
    """

    name: str
    healths: tuple[ModelHealth, ...]
    at: float
    error: str | None = None
    registered: bool = True


@dataclass(frozen=True)
class Snapshot:
    """Everything ``ts-health serve`` knows; times are monotonic seconds unless named wall.

    Attributes:
        started: when the server started.
        ping, ping_at: the latest ``/ping`` and when it was answered.
        names, names_at, names_error: the models listed by the management API (or named with
            ``--model``), when, and why the latest listing failed.
        models: the latest observation of each listed model.
        tracks: state changes per ``(model, version)``.
        errors: observations that failed, by kind (``ping``, ``models``, ``model``).
        observations: observations finished, by kind.
    """

    started: float
    ping: PingResult | None = None
    ping_at: float | None = None
    names: tuple[str, ...] | None = None
    names_at: float | None = None
    names_error: str | None = None
    models: Mapping[str, ModelSeen] = field(default_factory=dict)
    tracks: Mapping[tuple[str, str], Track] = field(default_factory=dict)
    observations: Mapping[str, int] = field(default_factory=dict)
    errors: Mapping[str, int] = field(default_factory=dict)

    def listed(self) -> list[ModelSeen]:
        """The observed models in listing order (models listed but not yet seen left out)."""
        return [self.models[n] for n in self.names or () if n in self.models]

    def healths(self) -> list[ModelHealth]:
        """Every observed model version, in listing order, each model's default first."""
        return [h for seen in self.listed() for h in seen.healths]
