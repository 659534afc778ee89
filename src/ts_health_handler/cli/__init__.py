"""The ``ts-health`` command line: the one dispatcher above the probe's commands and serve."""

from __future__ import annotations

from ._main import COMMANDS, build_parser, main, run

__all__ = ["COMMANDS", "build_parser", "main", "run"]
