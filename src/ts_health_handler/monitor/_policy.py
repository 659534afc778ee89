"""The readiness policy: which states count as ready, one value shared by every answer.

``ts-health ready``, ``wait`` and ``status`` (their exit codes and each model's ``ok``) and
``ts-health serve`` (``/ready``, the Open Inference Protocol's ready paths, ``/metrics``, the
page) all ask :meth:`ReadinessPolicy.admits`. Standard library only.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields
from typing import Final

from .._lifecycle import ModelState

__all__ = ["READY_ONLY", "ReadinessPolicy"]


@dataclass(frozen=True)
class ReadinessPolicy:
    """``ready`` is always ready; another state is when its ``allow_<state>`` field is set.

    Each field is the option ``--allow-<state>`` of ``ready``, ``status``, ``wait`` and
    ``serve`` (help: ``count <state> (<help>) as ready``): adding a state to the policy is
    adding a field here.
    """

    allow_degraded: bool = field(default=False, metadata={"help": "a failing user check"})
    allow_saturated: bool = field(default=False, metadata={"help": "a full job queue"})
    allow_unstable: bool = field(
        default=False, metadata={"help": "worker processes dying while serving, now and then"}
    )

    def admits(self, state: ModelState) -> bool:
        """Whether a model version in ``state`` should receive traffic."""
        return state is ModelState.READY or getattr(self, f"allow_{state.value}", False) is True

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ReadinessPolicy:
        """The policy of the parsed ``--allow-*`` options (absent ones are off)."""
        return cls(**{f.name: bool(getattr(args, f.name, False)) for f in fields(cls)})

    @staticmethod
    def add_options(parser: argparse.ArgumentParser) -> None:
        """Add ``--allow-<state>`` for every field."""
        for option in fields(ReadinessPolicy):
            state = option.name.removeprefix("allow_")
            parser.add_argument(
                f"--allow-{state.replace('_', '-')}",
                action="store_true",
                help=f"count {state} ({option.metadata['help']}) as ready",
            )


#: The default policy: only ``ready`` is ready.
READY_ONLY: Final = ReadinessPolicy()
