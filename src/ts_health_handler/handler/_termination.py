"""The termination log: one line that Kubernetes shows as the container's last words."""

from __future__ import annotations

from typing import Final

from .._text import clip_utf8
from ..record import ErrorInfo

__all__ = ["TERMINATION_LIMIT", "TERMINATION_MARKER", "write_termination_log"]

#: Kubernetes keeps at most 4096 bytes of a termination message.
TERMINATION_LIMIT: Final = 4096
#: Stands for the cut-away start of a termination message (which is one line).
TERMINATION_MARKER: Final = "...[truncated]... "


def write_termination_log(path: str, model: str, version: str, error: ErrorInfo) -> str | None:
    """Write why ``initialize()`` failed to ``path``; return why it could not be, if so."""
    message = (
        f"model {model} {version} failed to initialize "
        f"(attempt {error.attempt}): {error.type}: {error.message}"
    )
    # One line (Kubernetes shows it as is); a long one keeps its head and its tail.
    text = clip_utf8(" ".join(message.splitlines()), TERMINATION_LIMIT, marker=TERMINATION_MARKER)
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        return f"termination_log {path}: {exc}"
    return None
