"""The readiness policy: which states count as ready, one value shared by every answer.

``ts-health ready``, ``wait`` and ``status`` (their exit codes and each model's ``ok``) and
``ts-health serve`` (``/ready``, the Open Inference Protocol's ready paths, ``/metrics``, the
page) all ask :meth:`ReadinessPolicy.admits`. Standard library only, and light: the command
line builds its ``--allow-*`` options from it before anything else is imported.
"""

# No `from __future__ import annotations`: typing would compile each named-tuple field's
# annotation when ts-health starts (docs/architecture.md, "Start-up").
import argparse
from typing import Final, NamedTuple

from .._lifecycle import ModelState

__all__ = ["READY_ONLY", "ReadinessPolicy"]

#: What each ``allow_<state>`` admits, for its option's help.
ALLOWS: Final = {
    "allow_degraded": "a failing user check",
    "allow_saturated": "a full job queue",
    "allow_unstable": "worker processes dying while serving, now and then",
}


class ReadinessPolicy(NamedTuple):
    """``ready`` is always ready; another state is when its ``allow_<state>`` field is set.

    Each field is the option ``--allow-<state>`` of ``ready``, ``status``, ``wait`` and
    ``serve`` (help: ``count <state> (<what it admits>) as ready``): adding a state to the
    policy is adding a field here and its line in :data:`ALLOWS`.
    """

    allow_degraded: bool = False
    allow_saturated: bool = False
    allow_unstable: bool = False

    def admits(self, state: ModelState) -> bool:
        """Whether a model version in ``state`` should receive traffic."""
        return state is ModelState.READY or getattr(self, f"allow_{state.value}", False) is True

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "ReadinessPolicy":
        """The policy of the parsed ``--allow-*`` options (absent ones are off)."""
        return cls(**{name: bool(getattr(args, name, False)) for name in cls._fields})

    @staticmethod
    def add_options(parser: argparse.ArgumentParser) -> None:
        """Add ``--allow-<state>`` for every field."""
        for name in ReadinessPolicy._fields:
            state = name.removeprefix("allow_")
            parser.add_argument(
                f"--allow-{state.replace('_', '-')}",
                action="store_true",
                help=f"count {state} ({ALLOWS[name]}) as ready",
            )


#: The default policy: only ``ready`` is ready.
READY_ONLY: Final = ReadinessPolicy()
