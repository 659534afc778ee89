"""TorchServe's describe (``GET /models/{name}``) made by hand: one version's entry as JSON
(:func:`entry_json`), parsed (:func:`entry`), or the whole answer (:func:`describe`), for the
unit tests of the monitor, the probe and ``ts-health serve``.

A worker given as a status alone is thread ``9000 + i`` in process ``41 + i`` (worker 9000 is
process 41, as in ``tests.support.records.beat``); :func:`thread` names another one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Union

from ts_health_handler.record import utc_iso
from ts_health_handler.torchserve._answers import ModelEntry

#: A worker of :func:`entry_json`: its status, or a worker as describe lists it (:func:`thread`).
WorkerSpec = Union[str, Mapping[str, Any]]


def thread(
    worker: str, pid: int | None = None, started: float | None = None, status: str = "UNLOADING"
) -> dict[str, Any]:
    """Worker thread ``worker`` (process ``pid``, started at ``started``) as describe lists it;
    ``UNLOADING``, as a thread whose ``initialize()`` has not succeeded, unless ``status``."""
    described: dict[str, Any] = {"id": worker, "status": status}
    if pid is not None:
        described["pid"] = pid
    if started is not None:
        described["startTime"] = utc_iso(started)
    return described


def entry_json(
    *workers: WorkerSpec,
    name: str = "m",
    version: str = "1.0",
    min_workers: int = 1,
    max_workers: int | None = None,
    max_retry: int | None = 300,
    remaining: int | None = 100,
    pending: int = 0,
) -> dict[str, Any]:
    """One version's describe entry with ``workers``; ``max_workers`` defaults to one per
    worker (at least 1); ``None`` leaves out ``maxRetryTimeoutInSec`` or, for ``remaining``,
    the job queue (as TorchServe before 0.11)."""
    data: dict[str, Any] = {
        "modelName": name,
        "modelVersion": version,
        "modelUrl": f"{name}.mar",
        "minWorkers": min_workers,
        "maxWorkers": max(1, len(workers)) if max_workers is None else max_workers,
        "workers": [
            {"id": str(9000 + i), "status": w, "pid": 41 + i} if isinstance(w, str) else dict(w)
            for i, w in enumerate(workers)
        ],
    }
    if max_retry is not None:
        data["maxRetryTimeoutInSec"] = max_retry
    if remaining is not None:
        data["jobQueueStatus"] = {"remainingCapacity": remaining, "pendingRequests": pending}
    return data


def entry(*workers: WorkerSpec, **options: Any) -> ModelEntry:
    """:func:`entry_json` parsed, as the monitor reads it."""
    return ModelEntry.from_json(entry_json(*workers, **options))


def describe(*workers: WorkerSpec, **options: Any) -> list[dict[str, Any]]:
    """TorchServe's answer to ``GET /models/{name}``: the one version of :func:`entry_json`."""
    return [entry_json(*workers, **options)]
