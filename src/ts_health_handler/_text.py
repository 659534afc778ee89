"""Cutting text to a bound: the one place that decides what a shortened message keeps.

Standard library only; both the handler side and the probe import it.
"""

from __future__ import annotations

from typing import Final

__all__ = ["TRUNCATED", "clip", "clip_utf8", "one_line"]

#: Put where text was cut away.
TRUNCATED: Final = "...[truncated]...\n"


def clip(text: str, limit: int, *, marker: str = TRUNCATED, keep: str = "end") -> str:
    """``text`` in at most ``limit`` characters, ``marker`` standing for what was cut.

    ``keep="end"`` keeps the end (where a traceback says what happened); ``keep="start"``
    keeps the beginning. A limit shorter than the marker keeps the text alone.
    """
    if len(text) <= limit:
        return text
    if limit <= len(marker):
        return text[len(text) - limit :] if keep == "end" else text[:limit]
    room = limit - len(marker)
    if keep == "end":
        return marker + text[len(text) - room :]
    return text[:room] + marker


def clip_utf8(text: str, limit: int, *, marker: str = TRUNCATED) -> str:
    """``text`` in at most ``limit`` UTF-8 bytes, the end kept (no character split)."""
    data = text.encode("utf-8", errors="replace")
    if len(data) <= limit:
        return text
    tail = data[len(data) - (limit - len(marker.encode("utf-8"))) :]
    return marker + tail.decode("utf-8", errors="ignore")


def one_line(text: str, limit: int | None = None) -> str:
    """``text`` with every run of whitespace (newlines too) made one space; then, with a
    ``limit``, cut to that many characters ending in ``...``."""
    flat = " ".join(text.split())
    if limit is None:
        return flat
    return clip(flat, limit, marker="...", keep="start")
