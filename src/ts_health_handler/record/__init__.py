"""The persisted initialization record: written inside the worker, read by the monitor.

Standard library only. ``_record`` holds the frozen record and its transitions, ``_fields``
its typed JSON reads, ``_store`` the files and the one way to change them, and
``_registration`` narrows a record to the worker threads TorchServe describes.
"""

from __future__ import annotations

from .._lifecycle import InitPhase
from ._record import (
    MESSAGE_LIMIT,
    RECENT_ERRORS,
    RECORD_SCHEMA_VERSION,
    ErrorInfo,
    InitRecord,
    Previous,
    RecordError,
    WorkerRun,
    parse_iso,
    utc_iso,
)
from ._registration import narrow
from ._store import ENV_STATE_DIR, StateStore, pid_alive, read_record, resolve_state_dir

__all__ = [
    "ENV_STATE_DIR",
    "MESSAGE_LIMIT",
    "RECENT_ERRORS",
    "RECORD_SCHEMA_VERSION",
    "ErrorInfo",
    "InitPhase",
    "InitRecord",
    "Previous",
    "RecordError",
    "StateStore",
    "WorkerRun",
    "narrow",
    "parse_iso",
    "pid_alive",
    "read_record",
    "resolve_state_dir",
    "utc_iso",
]
