"""Text that leaves us: cut to a bound, one line, safe for a terminal, valid UTF-8.

The one place that decides what a shortened message keeps and which characters may reach a
terminal, a log or a file. Standard library only; the handler side and the probe import it.
Exception messages are user text: they may hold ANSI escape sequences, C0/C1 controls, lone
surrogates (bytes that were not UTF-8, decoded with ``surrogateescape``) or a megabyte.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

__all__ = [
    "REDACTED",
    "TRUNCATED",
    "clip",
    "clip_utf8",
    "one_line",
    "printable",
    "redact",
    "secret_forms",
    "valid_utf8",
]

#: Put where text was cut away.
TRUNCATED: Final = "...[truncated]...\n"
#: Put where a secret (a token, a key) was.
REDACTED: Final = "<redacted>"

# C0 controls but tab and newline, DEL, C1 controls, the line/paragraph separators and the
# bidirectional overrides that can make a terminal show text out of order. Patterns, not
# compiled: ``re`` compiles each on its first use (its own cache) and plain ASCII text never
# needs them, so ``ts-health``'s start-up does not pay for compiling them.
_UNPRINTABLE: Final = "[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
_SURROGATE: Final = "[\ud800-\udfff]"
#: Whitespace that :func:`printable` keeps.
_KEPT: Final = str.maketrans("\t\n", "  ")


def clip(text: str, limit: int, *, marker: str = TRUNCATED) -> str:
    """``text`` in at most ``limit`` characters: its head and its tail around ``marker``.

    Both ends matter: the start of a message says what failed, the end of a traceback says
    where. A limit too small for the marker keeps the tail alone.
    """
    if len(text) <= limit:
        return text
    room = limit - len(marker)
    if room <= 0:
        return text[len(text) - limit :]
    head = room // 2
    return text[:head] + marker + text[len(text) - (room - head) :]


def clip_utf8(text: str, limit: int, *, marker: str = TRUNCATED) -> str:
    """``text`` (made :func:`valid_utf8`) in at most ``limit`` UTF-8 bytes, head and tail."""
    text = valid_utf8(text)
    if len(text.encode("utf-8")) <= limit:
        return text
    room = limit - len(marker.encode("utf-8"))
    data = text.encode("utf-8")
    head = data[: room // 2].decode("utf-8", errors="ignore")
    tail = data[len(data) - (room - room // 2) :].decode("utf-8", errors="ignore")
    return head + marker + tail


def one_line(text: str, limit: int | None = None) -> str:
    """``text`` with every run of whitespace (newlines too) made one space; then, with a
    ``limit``, cut to that many characters, ``...`` standing for the middle."""
    flat = " ".join(text.split())
    if limit is None:
        return flat
    return clip(flat, limit, marker="...")


def secret_forms(secret: str) -> tuple[str, ...]:
    """How ``secret`` can appear in what we write: as it is, and inside a JSON string (a
    ``"`` or ``\\`` escaped; tokens hold no controls, ``clean_token`` refuses them)."""
    escaped = secret.replace("\\", "\\\\").replace('"', '\\"')
    return (secret,) if escaped == secret else (secret, escaped)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (in each of its :func:`secret_forms`) as ``<redacted>``.

    Longest first, so that a secret holding another is replaced whole. Redact before
    cutting: a secret cut in two is no longer found.
    """
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret:
            for form in secret_forms(secret):
                text = text.replace(form, REDACTED)
    return text


def valid_utf8(text: str) -> str:
    """``text`` with each lone surrogate written as ``\\udcff``: encodable as UTF-8."""
    if text.isascii() or not re.search(_SURROGATE, text):
        return text
    return re.sub(_SURROGATE, lambda m: f"\\u{ord(m.group()):04x}", text)


def printable(text: str) -> str:
    """``text`` safe for a terminal: controls (ESC of ANSI sequences included) and lone
    surrogates written as ``\\x1b``/``\\u009b``/``\\udcff`` escapes; tab and newline kept."""
    if text.isascii() and text.translate(_KEPT).isprintable():
        return text  # the usual case, without a regular expression
    text = valid_utf8(text)
    if not re.search(_UNPRINTABLE, text):
        return text
    return re.sub(_UNPRINTABLE, _escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}"
