"""Health checking must not pile work onto a worker that has not answered.

TorchServe queues a customized describe like any request, and keeps it when our client gives
up (after ``--describe-timeout``): every look at a hung worker would leave one more job in
its queue, until the queue is full and users get 503, and a worker that comes back must
first run them all. So a customized describe is not sent when:

- every READY worker's heartbeat shows a request running for longer than the describe
  timeout (an async worker excepted: it answers a describe beside its requests), or has
  stopped (it would only wait in the queue); or
- an earlier describe of ours got no answer and no READY worker has answered a describe
  since (the heartbeat's ``describe_at``): it is still queued. The earlier describe is
  remembered in a small file beside the records (``describe.pending``), so that a probe run
  in a loop, each run a new process, leaves at most one describe waiting too.

Two kinds of model are never asked, their heartbeat telling stuck and failing instead:

- ``sequenceBatching`` (``stateful`` in TorchServe's describe): TorchServe 0.12 does not route
  a customized describe to its workers (``SequenceBatching`` polls sessions only); the request
  waits unanswered, or is refused with 503 "has no worker to serve describe request";
- ``continuousBatching``: ``Model.pollInferJob`` puts a describe job into the batch and back
  at the head of the queue, so the worker answers it and is sent it again, forever, and serves
  nothing else: one describe would stop the model.

Without heartbeats (a handler without ``HealthMixin``, or a state directory the monitor
cannot see) nothing else is skipped: there is no evidence either way. Each look then costs
TorchServe one describe per model version with a READY worker, as before.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from ..record import RECORD_MODE, Beat

__all__ = [
    "PENDING_FILE",
    "SEQUENCE_NOT_ASKED",
    "forget_pending",
    "hold_describe",
    "remember_pending",
]

PENDING_FILE: Final = "describe.pending"
#: Why a sequence-batching model's status document is not asked for.
SEQUENCE_NOT_ASKED: Final = (
    "not asked: TorchServe 0.12 serves no customized describe to a model served with "
    "sequence batching (sequenceBatching: true); stuck and failing come from the heartbeat"
)
#: Why a continuous-batching model's status document is not asked for.
CONTINUOUS_NOT_ASKED: Final = (
    "not asked: TorchServe 0.12 would send a customized describe to a model served with "
    "continuous batching (continuousBatching: true) again and again, and it would serve "
    "nothing else; stuck and failing come from the heartbeat"
)


def hold_describe(
    beats: Sequence[Beat],
    ready: int,
    directory: Path,
    now: float,
    timeout_s: float,
    *,
    stateful: bool = False,
    continuous: bool = False,
) -> str | None:
    """Why the customized describe must not be sent now, or ``None`` to send it.

    ``beats`` are the heartbeats of the ``ready`` READY workers (matched by pid);
    ``stateful`` and ``continuous`` are TorchServe's describe of a sequence-batching and of a
    continuous-batching model.
    """
    if stateful:
        return SEQUENCE_NOT_ASKED
    if continuous:
        return CONTINUOUS_NOT_ASKED
    if ready == 0 or len(beats) < ready:
        return None
    busy = [b for b in beats if _busy(b, now, timeout_s)]
    if len(busy) == ready:
        return "not asked: every READY worker is busy with one request (see the heartbeat)"
    sent = _pending_since(directory)
    if sent is not None and not any((b.describe_at or 0.0) >= sent for b in beats):
        return (
            f"not asked: an earlier describe, sent {max(0.0, now - sent):.0f} s ago, still "
            "waits in the worker's queue"
        )
    return None


def remember_pending(directory: Path, now: float) -> None:
    """Our describe got no answer: it may still be queued (best effort, never raises)."""
    if not directory.is_dir():
        return
    with contextlib.suppress(OSError):
        path = directory / PENDING_FILE
        temp = directory / f".{PENDING_FILE}.{os.getpid()}"
        temp.write_text(f"{now:.3f}\n", encoding="ascii")
        os.chmod(temp, RECORD_MODE)
        os.replace(temp, path)


def forget_pending(directory: Path) -> None:
    """A describe was answered: nothing of ours waits any more."""
    with contextlib.suppress(OSError):
        (directory / PENDING_FILE).unlink()


def _pending_since(directory: Path) -> float | None:
    try:
        return float((directory / PENDING_FILE).read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None


def _busy(beat: Beat, now: float, timeout_s: float) -> bool:
    """The worker cannot answer within ``timeout_s``: a long request runs, or it is frozen."""
    if now - beat.at > beat.stale_after_s():
        return True
    if beat.mode == "async":  # its event loop answers a describe beside the requests
        return False
    return beat.in_flight_since is not None and now - beat.in_flight_since >= timeout_s
