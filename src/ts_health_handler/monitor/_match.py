"""Which persisted record is the one of the registration TorchServe describes now.

Pure functions over what was read. A version's directory holds one record per server that
ever served it (``record/_store.py``), and each record names the worker threads of its registration
with the time each first entered ``initialize()`` (``_record``). TorchServe's describe names
the worker threads it runs now: their ids (ports), each thread's ``startTime`` and the pid of
its latest worker process. A record belongs to the current registration when it has one of
those worker ids, first started no earlier than that thread was created (an older thread
with the same id belongs to an earlier server run); a record whose worker pid is the one
TorchServe reports wins over one that only fits in time. A record that names no worker ids
(written outside a TorchServe worker) is taken when nothing fits better.

The record found is then narrowed to the worker threads TorchServe describes
(``_registration.narrow``): a record keeps every worker thread of the version on its
server, and only TorchServe knows which of them make up the registration served now.
"""

# No `from __future__ import annotations`: typing would compile each named-tuple field's
# annotation when ts-health starts (docs/architecture.md, "Start-up").
from collections.abc import Sequence
from typing import Final, NamedTuple, Optional

from ..record import InitRecord, narrow, parse_iso
from ..torchserve import ModelEntry

__all__ = ["Match", "match"]

#: A worker thread's ``startTime`` is taken before its process starts; this much earlier
#: still counts (the frontend's clock in milliseconds, the worker's in its own call).
CLOCK_SLACK_S: Final = 2.0


class Match(NamedTuple):
    """The current record narrowed to the registration (and its file), and the newest other
    record (history)."""

    current: Optional[InitRecord]
    path: Optional[str]
    previous: Optional[InitRecord]


def match(entry: ModelEntry, found: Sequence[tuple[str, InitRecord]]) -> Match:
    """Pick the record of the registration ``entry`` describes from ``found`` (path, record)."""
    best: Optional[tuple[int, str, str, InitRecord]] = None
    for path, record in found:
        score = _score(entry, record)
        if score and (best is None or (score, record.updated_at or "") > best[:2]):
            best = (score, record.updated_at or "", path, record)
    chosen = None if best is None else best[3]
    others = [r for _, r in found if r is not chosen]
    previous = max(others, key=lambda r: r.updated_at or "", default=None)
    current = (
        None
        if chosen is None
        else narrow(chosen, [w.id for w in entry.workers if w.id is not None])
    )
    return Match(current, None if best is None else best[2], previous)


def _score(entry: ModelEntry, record: InitRecord) -> int:
    """3: a worker pid matches; 2: a worker id fits in time; 1: the record names no workers."""
    if not record.workers:
        return 1
    score = 0
    for worker in entry.workers:
        run = record.run(worker.id)
        if run is None or not _started_after(run.first_started_at, worker.start_time):
            continue
        score = max(score, 3 if worker.pid is not None and worker.pid == run.pid else 2)
    return score


def _started_after(first_started_at: str, thread_started: Optional[str]) -> bool:
    if not thread_started:
        return True
    try:
        return parse_iso(first_started_at) >= parse_iso(thread_started) - CLOCK_SLACK_S
    except ValueError:
        return True
