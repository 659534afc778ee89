"""Where a command's output goes: stdout for the answer, stderr for errors, secrets redacted.

Shared by the ``ts-health`` commands (probe and serve); standard library only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, Any, Final

from .._text import printable, redact
from ._exit import ExitCode, label_for

if TYPE_CHECKING:
    from ._assess import ModelHealth
    from ._settings import Settings

__all__ = ["Io"]


class Io:
    """Where output goes, and the clocks; replaced by tests.

    Everything written passes :meth:`clean`: secrets (tokens, keys) are replaced by
    ``<redacted>`` and text for people is made :func:`~.._text.printable` (ANSI sequences
    and other controls escaped); JSON escapes them itself.
    """

    __slots__ = ("clock", "secrets", "sleep", "stderr", "stdout", "wall")

    def __init__(
        self,
        stdout: IO[str],
        stderr: IO[str],
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        secrets: set[str] | None = None,
    ) -> None:
        self.stdout: Final = stdout
        self.stderr: Final = stderr
        self.clock: Final = clock
        self.wall: Final = wall
        self.sleep: Final = sleep
        #: Tokens and keys in use; filled as they are read (see :func:`client_for`).
        self.secrets: Final = set() if secrets is None else secrets

    def clean(self, text: str) -> str:
        # A copy of the set first (at once), while ts-health serve's observer may add keys.
        return printable(redact(text, tuple(self.secrets)))

    def out(self, text: str) -> None:
        self.stdout.write(self.clean(text) + "\n")

    def err(self, text: str) -> None:
        self.stderr.write(self.clean(text) + "\n")

    def emit(self, settings: Settings, text: str, document: dict[str, Any]) -> None:
        """The answer, on stdout: a verdict line or table, or the JSON document."""
        self.out(json.dumps(document, indent=2) if settings.json else text)

    def error(self, code: ExitCode, message: str) -> None:
        """One error, on stderr: ``ts-health: unreachable: ...`` (also in ``--json`` mode)."""
        self.err(f"ts-health: {label_for(code)}: {message}")

    def unreachable(self, healths: Sequence[ModelHealth]) -> None:
        """Each model that could not be asked is an error too, not only a state word."""
        for health in healths:
            if health.state.value == "unreachable":
                self.error(ExitCode.UNREACHABLE, health.reason)
