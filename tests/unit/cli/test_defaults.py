"""Every environment variable's name and every default of ``ts-health`` is written once, in
``monitor/_defaults.py``: the command line (``cli/``) and ``serve/`` take them from there, and
``--help`` still names every variable."""

from __future__ import annotations

import argparse
import ast
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ts_health_handler import record, serve
from ts_health_handler.cli import build_parser
from ts_health_handler.monitor import _defaults

SRC = Path(__file__).resolve().parents[3] / "src" / "ts_health_handler"
#: The modules that must take every name and default from ``monitor/_defaults.py``.
SCANNED = sorted([*(SRC / "cli").rglob("*.py"), *(SRC / "serve").rglob("*.py")])
ENVIRONMENT = {name: value for name, value in vars(_defaults).items() if name.startswith("ENV_")}
DEFAULTS = {name: value for name, value in vars(_defaults).items() if name.startswith("DEFAULT_")}
#: A help text that states a default itself: "(default 2)", "default: 10".
STATED_DEFAULT = re.compile(r"\bdefault:? [0-9]")


def literals(source: str) -> Iterator[tuple[int, object]]:
    """Every constant in ``source`` (docstrings and each f-string's text included), by line."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant):
            yield node.lineno, node.value


def misplaced(source: str) -> list[tuple[int, str]]:
    """What ``source`` writes itself that belongs in ``monitor/_defaults.py``, by line."""
    found: list[tuple[int, str]] = []
    texts = [v for v in DEFAULTS.values() if isinstance(v, str)]
    for line, value in literals(source):
        if not isinstance(value, str):
            continue
        shown = repr(value if len(value) <= 60 else f"{value[:57]}...")
        if "TS_HEALTH_" in value:
            found.append((line, f"a variable's name in {shown}"))
        found += [(line, f"the default {t!r} in {shown}") for t in texts if t in value]
        if STATED_DEFAULT.search(value):
            found.append((line, f"a default stated in {shown}"))
    for node in ast.walk(ast.parse(source)):
        # A number has no text to look for: no DEFAULT_ or ENV_ constant of its own, and no
        # argparse default written as a number.
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Constant):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id.startswith(("DEFAULT_", "ENV_")):
                    found.append((node.lineno, f"{target.id} defined here"))
        if isinstance(node, ast.keyword) and node.arg == "default":
            value = node.value
            if isinstance(value, ast.Constant) and type(value.value) in (int, float):
                found.append((value.lineno, f"default={value.value!r}"))
    return found


def test_the_scan_reads_the_command_line_and_serve() -> None:
    names = {path.relative_to(SRC).as_posix() for path in SCANNED}
    assert {"cli/_main.py", "serve/_options.py", "serve/_command.py"} <= names
    assert "monitor/_defaults.py" not in names


def test_the_scan_finds_each_kind_of_misplaced_name_or_default() -> None:
    source = '''
"""Reads $TS_HEALTH_STATE_DIR."""
DEFAULT_PORT = 8090
ENV_X: Final = "X"
parser.add_argument("--interval", default=2.0, help="seconds (default 2)")
parser.add_argument("--listen", help=f"where (default 127.0.0.1:8090, {port})")
parser.add_argument("--url", help=f"${ENV_INFERENCE_URL}, default http://127.0.0.1:8080")
parser.add_argument("--flag", action="store_true", default=False)
'''
    assert sorted(line for line, _ in misplaced(source)) == [2, 3, 4, 5, 5, 6, 6, 7]


@pytest.mark.parametrize("path", SCANNED, ids=lambda path: path.relative_to(SRC).as_posix())
def test_no_name_nor_default_is_written_outside_the_defaults(path: Path) -> None:
    assert misplaced(path.read_text(encoding="utf-8")) == []


def test_serve_and_the_records_use_the_defaults_modules_names() -> None:
    assert serve.ENV_SERVE_TOKEN == _defaults.ENV_SERVE_TOKEN
    assert serve.DEFAULT_LISTEN == _defaults.DEFAULT_LISTEN
    assert serve.DEFAULT_INTERVAL == _defaults.DEFAULT_SERVE_INTERVAL
    assert serve.DEFAULT_STALE_AFTER == _defaults.DEFAULT_STALE_AFTER
    assert record.ENV_STATE_DIR == _defaults.ENV_STATE_DIR


def test_the_state_directory_shown_is_the_one_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_defaults.ENV_STATE_DIR, raising=False)
    tmp, name = _defaults.DEFAULT_STATE_DIR_SHOWN.split("/")
    assert tmp == "<tmp>"
    assert record.resolve_state_dir() == Path(tempfile.gettempdir()) / name


def helps(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """``ts-health --help`` and each command's ``--help``, by command ("" for the first)."""
    monkeypatch.setenv("COLUMNS", "100")
    parser = build_parser()
    commands: dict[str, argparse.ArgumentParser]
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr,assignment]
    return {"": parser.format_help(), **{n: p.format_help() for n, p in commands.items()}}


def test_the_help_names_every_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = helps(monkeypatch)
    assert sorted(texts) == ["", "ping", "ready", "serve", "status", "wait"]
    assert len(ENVIRONMENT) == 8
    for name in ENVIRONMENT.values():
        assert any(f"${name}" in text for text in texts.values()), name
    # Each help lists, after the options, the variables every command reads; serve's token is
    # named by --auth-token-file.
    common = set(ENVIRONMENT.values()) - {_defaults.ENV_SERVE_TOKEN}
    for command, text in texts.items():
        listed = text.split("\nenvironment (options win):\n", 1)[1].split("\n\n", 1)[0]
        assert set(re.findall(r"TS_HEALTH_\w+", listed)) == common, command
        for name in common:
            assert f"${name}" in text, (command, name)
    assert f"(${_defaults.ENV_SERVE_TOKEN})" in texts["serve"]
