"""Typed reads of a persisted record's JSON: each complaint names the file and the field.

Standard library only; read by the record (``_record``), the beats (``_beat``), the deaths
(``_deaths``) and the files (``_store``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from .._errors import HealthError
from .._lifecycle import InitPhase
from .._text import clip

__all__ = ["GONE", "RecordError", "duration_s", "field", "load", "mapping", "phase"]


class RecordError(HealthError):
    """A persisted record is missing fields, has wrong types or is not JSON.

    Attributes:
        path: the record file.
    """

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path: Final = str(path)
        super().__init__(f"unreadable health record {self.path}: {reason}")


_MISSING: Final = object()


def mapping(raw: Any, where: str, name: str = "") -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        if name:
            raise RecordError(where, f"field {name!r} is {type(raw).__name__}, expected an object")
        raise RecordError(where, f"expected a JSON object, got {type(raw).__name__}")
    return raw


def field(
    data: Mapping[str, Any],
    key: str,
    kind: Any,
    where: str,
    default: Any = _MISSING,
    prefix: str = "",
) -> Any:
    key_name = prefix + key
    if key not in data:
        if default is _MISSING:
            raise RecordError(where, f"missing field {key_name!r}")
        return default
    value = data[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    # bool is an int subclass; a record never stores booleans in these fields.
    if isinstance(value, bool) or not isinstance(value, kinds):
        expected = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
        shown = clip(repr(value), 80, marker="...")
        raise RecordError(where, f"field {key_name!r} is {shown}, expected {expected}")
    return value


def duration_s(value: int | float | None, where: str) -> float | None:
    """The record's ``last_duration_s``: ``None``, or a finite number of seconds >= 0."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except OverflowError:  # a JSON integer beyond a float's range
        seconds = math.inf
    if not math.isfinite(seconds) or seconds < 0:
        raise RecordError(where, "field 'last_duration_s' is not a finite number of seconds >= 0")
    return seconds


def phase(value: str, where: str) -> InitPhase:
    try:
        return InitPhase(value)
    except ValueError:
        allowed = ", ".join(p.value for p in InitPhase)
        raise RecordError(where, f"phase {value!r}, expected one of {allowed}") from None


RecordError.__module__ = "ts_health_handler"


def load(path: Path) -> Any:
    """The JSON value in ``path``, or :data:`GONE` when the file does not exist.

    Raises:
        RecordError: not UTF-8 JSON. OSError: unreadable.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return GONE
    try:
        # Decoding inside the try: a file that is not UTF-8 is a bad file too.
        return json.loads(data.decode("utf-8"))
    except ValueError as exc:
        raise RecordError(path, f"not JSON ({exc})") from None
    except RecursionError:
        raise RecordError(path, "not JSON (nested too deeply)") from None


#: What :func:`load` returns for a file that does not exist.
GONE: Final = object()
