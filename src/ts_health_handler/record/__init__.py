"""The persisted initialization record: written inside the worker, read by the monitor.

Standard library only. ``_record`` holds the frozen record and its transitions, ``_fields``
its typed JSON reads, ``_store`` the files and the one way to change them, and
``_registration`` narrows a record to the worker threads TorchServe describes. Beside the
record: ``_beat``, a READY worker's heartbeat file, and ``_deaths``, the worker processes that
ended while serving, found from their last beat.
"""

from __future__ import annotations

from .._lifecycle import InitPhase
from ._beat import BEAT_SCHEMA_VERSION, Beat, beat_path, read_beat, read_beats, write_beat
from ._deaths import Death, DeathCause, death_from_beat, deaths_within
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
from ._store import (
    ENV_STATE_DIR,
    RECORD_MODE,
    StateStore,
    pid_alive,
    read_record,
    resolve_state_dir,
)

__all__ = [
    "BEAT_SCHEMA_VERSION",
    "ENV_STATE_DIR",
    "MESSAGE_LIMIT",
    "RECENT_ERRORS",
    "RECORD_MODE",
    "RECORD_SCHEMA_VERSION",
    "Beat",
    "Death",
    "DeathCause",
    "ErrorInfo",
    "InitPhase",
    "InitRecord",
    "Previous",
    "RecordError",
    "StateStore",
    "WorkerRun",
    "beat_path",
    "death_from_beat",
    "deaths_within",
    "narrow",
    "parse_iso",
    "pid_alive",
    "read_beat",
    "read_beats",
    "read_record",
    "resolve_state_dir",
    "utc_iso",
    "write_beat",
]
