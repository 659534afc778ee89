"""A helper program run for a test in a session of its own, and stopped by its group."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

from ts_health_handler.testing._runner import _stop as stop_group


@contextlib.contextmanager
def process_group(command: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` in a session of its own; stop exactly that process group on exit
    (SIGTERM, then SIGKILL), never anything found by name."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        stop_group(process)
