"""Which server and which worker thread an initialization attempt belongs to.

Standard library only. A record must belong to one registration of one server (see
``docs/status.md``, "Identity"), and neither the worker's parent pid nor the time is enough:
under ``cpu_launcher_enable=true`` the parent is a launcher started anew for every attempt,
and two servers on one host may share a state directory. What a worker can establish:

- the **server**: the TorchServe frontend, the Java process running
  ``org.pytorch.serve.ModelServer`` among the worker's ancestors, named by its pid and its
  start time (``/proc/<pid>/stat`` field 22, clock ticks since boot; read by ``_proc``), so
  that a restarted server, even one given the same pid, is another server;
- the **worker thread**: TorchServe's worker id, which is the port in the worker's command
  line (``--sock-name <tmp>/.ts.sock.9000`` or ``--port 9000``). TorchServe 0.12 keeps one
  worker thread, id and ``startTime`` through every retry of a failing worker, and gives a
  new registration (or a scale-up) new ids (``WorkLoadManager``'s port counter only grows).

The probe sees the same worker ids, with each thread's ``startTime`` and worker pid, in
``GET /models/{name}``; ``_records`` matches the two.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from .._proc import PROC, read_stat

__all__ = ["Identity", "current_identity", "frontend", "worker_id"]

#: The frontend's main class, in its command line.
FRONTEND_MAIN: Final = b"org.pytorch.serve.ModelServer"
#: Ancestors looked at: worker <- launcher (cpu_launcher_enable) <- shell <- frontend.
MAX_ANCESTORS: Final = 6
_PORT: Final = re.compile(r"(?:\.ts\.sock\.|^)(\d{1,5})$")


@dataclass(frozen=True)
class Identity:
    """The server and worker thread of the running process."""

    #: ``"<pid>-<start ticks>"`` of the TorchServe frontend (else of the parent process).
    server: str
    #: TorchServe's worker id (the worker's port), ``None`` outside a TorchServe worker.
    worker: str | None
    pid: int


def current_identity(
    argv: Sequence[str] | None = None, proc: Path = PROC, pid: int | None = None
) -> Identity:
    """The identity of this process (``argv``, ``/proc`` and ``pid`` replaceable for tests)."""
    own = os.getpid() if pid is None else pid
    found = frontend(own, proc)
    if found is None:
        server = f"{os.getppid() if pid is None else 0}-0"
    else:
        server = f"{found[0]}-{found[1]}"
    worker = worker_id(sys.argv if argv is None else argv)
    rank = os.environ.get("LOCAL_RANK", "0")
    if worker is not None and rank != "0":
        # torchrun: every rank runs the handler under the worker's id; TorchServe describes
        # one worker, whose run is rank 0's. The other ranks keep runs of their own.
        worker = f"{worker}.rank{rank}"
    return Identity(server, worker, own)


def worker_id(argv: Sequence[str]) -> str | None:
    """The port in ``--sock-name .../.ts.sock.<port>`` or ``--port <port>``, else ``None``."""
    for flag in ("--sock-name", "--port"):
        for i, arg in enumerate(argv):
            value = None
            if arg == flag and i + 1 < len(argv):
                value = argv[i + 1]
            elif arg.startswith(flag + "="):
                value = arg.split("=", 1)[1]
            if value is not None:
                match = _PORT.search(value)
                if match:
                    return match.group(1)
    return None


def frontend(pid: int, proc: Path = PROC) -> tuple[int, int] | None:
    """``(pid, start ticks)`` of the TorchServe frontend among ``pid``'s ancestors; without
    one, of the parent; ``None`` where ``/proc`` cannot tell."""
    own = read_stat(pid, proc)
    if own is None:
        return None
    first: tuple[int, int] | None = None
    current = own.ppid
    for _ in range(MAX_ANCESTORS):
        if current < 1:  # the parent of PID 1 (a frontend run as PID 1 is looked at)
            break
        stat = read_stat(current, proc)
        if stat is None:
            break
        if first is None:
            first = (current, stat.start_ticks)
        try:
            cmdline = (proc / str(current) / "cmdline").read_bytes()
        except OSError:
            cmdline = b""
        if FRONTEND_MAIN in cmdline:
            return current, stat.start_ticks
        current = stat.ppid
    return first
