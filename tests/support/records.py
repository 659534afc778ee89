"""Beats and initialization records made by hand, for the unit tests of the record, the handler
and the monitor (each side reads or writes them)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ts_health_handler.handler._identity import current_identity
from ts_health_handler.record import ErrorInfo, InitRecord, utc_iso
from ts_health_handler.record._beat import Beat

#: 2025-06-15T15:06:40.000Z
NOW = 1_750_000_000.0
#: A fatal error's message (one of the default ``health.fatal_errors``).
POISON = "CUDA error: device-side assert triggered"
#: The server (``_identity``) the records of :func:`attempt` belong to.
SERVER = "100-5"


def record_file_name() -> str:
    """The record file this process writes (one per server, see ``handler._identity``).

    Asked when a test runs, not when its module is imported: outside TorchServe the server
    is named after the parent process, which is another one for a test run in a forked child
    (as mutmut runs them) than for the process that imported the tests.
    """
    return f"init.{current_identity().server}.json"


def beat(**changes: Any) -> Beat:
    """Worker 9000's beat at :data:`NOW`: idle after 10 requests, none failed; ``changes``
    override any field."""
    values: dict[str, Any] = {
        "worker": "9000",
        "pid": 41,
        "at": NOW,
        "interval_s": 1.0,
        "requests": 10,
        "failed": 0,
        "consecutive_failures": 0,
        "stuck_after_s": 30.0,
        "response_timeout_s": 120.0,
    }
    values.update(changes)
    return Beat(**values)


def started(
    previous: InitRecord | None,
    worker: str | None,
    pid: int,
    *,
    at: float,
    alive: Iterable[int] = (),
    server: str = SERVER,
) -> InitRecord:
    """``worker`` (process ``pid``) starts an initialization of model ``m`` 1.0 at ``at``;
    ``alive`` are the processes still running."""
    living = frozenset(alive)
    return InitRecord.started(
        previous,
        model_name="m",
        model_version="1.0",
        now=at,
        worker_pid=pid,
        server=server,
        worker_id=worker,
        worker_alive=lambda p: p in living,
    )


def attempt(
    previous: InitRecord | None,
    worker: str | None,
    pid: int,
    *,
    at: float,
    fail: str | None = None,
    alive: tuple[int, ...] = (),
    server: str = SERVER,
) -> InitRecord:
    """One initialization by ``worker`` (process ``pid``) starting at ``at``: it succeeds a second
    later, or fails with ``fail`` as a KeyError; ``alive`` are the processes still running."""
    record = started(previous, worker, pid, at=at, alive=alive, server=server)
    if fail is None:
        return record.succeeded(now=at + 1, duration_s=1.0, worker_pid=pid, worker_id=worker)
    error = ErrorInfo("builtins.KeyError", fail, utc_iso(at + 1), record.attempts)
    return record.failed(error, now=at + 1, duration_s=1.0, worker_pid=pid, worker_id=worker)
