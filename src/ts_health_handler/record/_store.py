"""Where initialization records live, and the one way to change them.

One JSON file per model version and server: ``<state dir>/<model>/<version>/init.<server>.json``
(names URL-quoted), so that two servers sharing a state directory never write one file.
Workers update their file under a lock shared by the version's files, with an atomic
replace; the probe reads every file of a version and picks the one of the registration it
sees (``probe/_match.py``). Files are created readable by all (``0644``), so a probe running
as another user, e.g. a sidecar, can read them. Standard library only: the probe imports it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final
from urllib.parse import quote

from .._state_dir import ENV_STATE_DIR
from ._fields import GONE, load
from ._record import InitRecord, RecordError

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux/macOS: records are still atomic
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "ENV_STATE_DIR",
    "RECORD_MODE",
    "StateStore",
    "pid_alive",
    "read_record",
    "resolve_state_dir",
]

#: Mode of a record file: readable by a probe running as another user.
RECORD_MODE: Final = 0o644
#: Record files kept per model version; older servers' files are removed beyond it.
KEEP_FILES: Final = 8


def pid_alive(pid: int) -> bool:
    """True when a process with this id exists on this machine (ours to signal or not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def resolve_state_dir(configured: str | None = None) -> Path:
    """Where records live: ``configured`` (``health.state_dir``), else ``$TS_HEALTH_STATE_DIR``,
    else ``<system temp dir>/ts-health``."""
    if configured:
        return Path(configured)
    from_env = os.environ.get(ENV_STATE_DIR)
    if from_env:
        return Path(from_env)
    import tempfile  # here: a reader given its state directory never needs it

    return Path(tempfile.gettempdir()) / "ts-health"


class StateStore:
    """Reads and updates the records of one model name + version under ``root``.

    Args:
        server: the server whose file :meth:`read` and :meth:`update` use (``_identity``);
            ``None`` is the file ``init.json``, for records written outside TorchServe.
    """

    def __init__(
        self, root: Path | str, model_name: str, model_version: str, server: str | None = None
    ) -> None:
        self.root: Final = Path(root)
        self.model_name: Final = model_name
        self.model_version: Final = model_version
        self.server: Final = server
        # Quote so that any model name is one safe path component.
        self.directory: Final = (
            self.root / quote(model_name, safe="") / quote(model_version, safe="")
        )
        name = "init.json" if server is None else f"init.{quote(server, safe='')}.json"
        self.path: Final = self.directory / name

    def __repr__(self) -> str:
        return f"StateStore({str(self.path)!r})"

    def read(self) -> InitRecord | None:
        """This server's record, or ``None`` when there is none yet.

        Raises:
            RecordError: the file exists but is not a valid record.
            OSError: the file exists but cannot be read.
        """
        return read_record(self.path)

    def files(self) -> list[Path]:
        """Every record file of this model version (all servers), newest first.

        Raises:
            OSError: the version's directory exists but cannot be listed (not a directory,
                no permission); a directory that does not exist has no files.
        """
        try:
            with os.scandir(self.directory) as entries:
                names = [e.name for e in entries]
        except FileNotFoundError:
            return []
        found = [
            self.directory / n
            for n in names
            if n.startswith("init") and n.endswith(".json") and (self.directory / n).is_file()
        ]
        return sorted(found, key=_mtime, reverse=True)

    def update(self, change: Callable[[InitRecord | None], InitRecord]) -> InitRecord:
        """Apply ``change`` to this server's record under an exclusive lock; write atomically.

        A corrupt record is replaced (``change`` gets ``None``): the history is lost, but the
        model keeps serving and the next reader sees a valid file.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._locked():
            try:
                current = self.read()
            except RecordError:
                current = None
            updated = change(current)
            self._write(updated)
            if current is None:
                self._prune()
        return updated

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.directory / "init.lock", "a+b") as handle:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                if fcntl is not None:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _write(self, record: InitRecord) -> None:
        import tempfile  # here: the probe only reads records

        payload = json.dumps(record.to_json(), indent=2, sort_keys=False).encode("utf-8")
        fd, temp = tempfile.mkstemp(prefix=".init.", suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), RECORD_MODE)
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise

    def _prune(self) -> None:
        """Keep the :data:`KEEP_FILES` newest files: servers long gone leave theirs behind."""
        try:
            files = self.files()
        except OSError:
            return
        for old in files[KEEP_FILES:]:
            if old != self.path:
                with contextlib.suppress(OSError):
                    old.unlink()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def read_record(path: Path) -> InitRecord | None:
    """The record in ``path`` (any server's), or ``None`` when the file is gone.

    Raises:
        RecordError: not a valid record. OSError: unreadable.
    """
    raw = load(path)
    if raw is GONE:
        return None
    return InitRecord.from_json(raw, str(path))
