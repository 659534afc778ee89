"""The environment variable that names the state directory, once for the worker and the probe.

A worker writes its initialization records there (``record._store.resolve_state_dir``) and
``ts-health`` reads them back (``--state-dir``, ``monitor._defaults``). The name lives here,
below both sides, for neither may import the other's: the handler side never imports the
monitor, and ``ts-health --help`` never imports the records. Standard library only.
"""

# A plain constant, no `from __future__ import annotations`: ts-health imports this at start-up.
from typing import Final

__all__ = ["ENV_STATE_DIR"]

ENV_STATE_DIR: Final = "TS_HEALTH_STATE_DIR"
