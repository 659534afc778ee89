"""``/proc/<pid>/stat``, parsed in one place. Standard library only; imports no package.

The line is ``pid (comm) state ppid pgrp ... starttime ...`` (``proc(5)``). ``comm`` is the
process's name as it chose it: it may hold spaces and parentheses, ``(a) b)`` included, so the
fields after it are counted from the *last* ``)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["PROC", "Stat", "parse_stat", "read_stat"]

PROC: Final = Path("/proc")


@dataclass(frozen=True)
class Stat:
    """The fields of ``/proc/<pid>/stat`` that we read."""

    pid: int
    comm: str
    #: ``R``, ``S``, ``D``, ``Z`` (zombie), ...
    state: str
    ppid: int
    #: The process group id.
    pgrp: int
    #: Field 22: clock ticks after boot at which the process started.
    start_ticks: int


def parse_stat(text: str) -> Stat:
    """The fields of one ``/proc/<pid>/stat`` line.

    Raises:
        ValueError: not such a line.
    """
    open_at, close_at = text.find(" ("), text.rfind(")")
    fields = text[close_at + 1 :].split()
    if open_at < 0 or close_at < open_at or len(fields) < 20:
        raise ValueError("not a /proc/<pid>/stat line: pid (comm) and 20 fields or more")
    try:
        return Stat(
            pid=int(text[:open_at]),
            comm=text[open_at + 2 : close_at],
            state=fields[0],
            ppid=int(fields[1]),
            pgrp=int(fields[2]),
            start_ticks=int(fields[19]),
        )
    except ValueError:
        raise ValueError("not a /proc/<pid>/stat line: a number field is not a number") from None


def read_stat(pid: int | str, proc: Path = PROC) -> Stat | None:
    """The :class:`Stat` of ``pid``, ``None`` when there is no such process (or it cannot be
    read or parsed)."""
    try:
        text = (proc / str(pid) / "stat").read_text(encoding="ascii", errors="replace")
        return parse_stat(text)
    except (OSError, ValueError):
        return None
