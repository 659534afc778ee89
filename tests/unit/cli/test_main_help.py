"""What ``ts-health --help`` shows: the exit codes and the environment, every option's metavar
and help, each command's description, the epilog as written, the version; and the help's
width, found as shutil would find it without importing shutil."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.unit.probe.helpers import Result
from ts_health_handler.cli import _main, build_parser, run
from ts_health_handler.monitor._exit import ExitCode

#: Each option's ``(command, option and metavar, help)`` as ``--help`` shows it.
CONNECTION_HELP = (
    (
        "--inference-url URL",
        "inference API ($TS_HEALTH_INFERENCE_URL, default http://127.0.0.1:8080)",
    ),
    (
        "--management-url URL",
        "management API ($TS_HEALTH_MANAGEMENT_URL, default http://127.0.0.1:8081)",
    ),
    ("--token TOKEN", "bearer token for both APIs ($TS_HEALTH_TOKEN); never printed"),
    (
        "--key-file PATH",
        "TorchServe's key_file.json: management and inference keys ($TS_HEALTH_KEY_FILE)",
    ),
    (
        "--renew-key",
        "renew the key file's management key through TorchServe's token API (with the API key)"
        " when it has expired or is about to; never the inference key",
    ),
    ("--request-timeout S", "seconds per request ($TS_HEALTH_REQUEST_TIMEOUT, default 5)"),
    (
        "--describe-timeout S",
        "seconds for the customized describe, which waits behind inference "
        "($TS_HEALTH_DESCRIBE_TIMEOUT, default 2)",
    ),
    (
        "--state-dir DIR",
        "where workers persist initialization records ($TS_HEALTH_STATE_DIR, "
        "default <tmp>/ts-health)",
    ),
    ("--json", "print JSON for machines"),
)


MODEL_HELP = (
    ("MODEL", ""),
    ("--version V", "model version (default: the model's default version)"),
    ("--allow-degraded", "count degraded (a failing user check) as ready"),
)


COMMAND_HELP = {
    "ping": "server liveness: GET /ping on the inference API",
    "ready": "readiness: a READY worker, a health status that is not failing, a job queue not full",
    "status": "every model (or MODEL) with its state and the reason",
    "wait": "block until MODEL is ready, has failed, or --timeout passes",
    "serve": "per-model readiness over HTTP, Prometheus metrics, a page",
}


OWN_HELP: dict[str, tuple[tuple[str, str], ...]] = {
    "ping": (),
    "ready": MODEL_HELP,
    "status": MODEL_HELP,
    "wait": (
        *MODEL_HELP,
        ("--timeout S", "give up after S seconds"),
        ("--interval S", "seconds between polls (default 1)"),
        (
            "--fail-fast",
            "stop at the first failed initialization instead of waiting for TorchServe's retries",
        ),
    ),
    "serve": (
        ("--listen HOST:PORT", "where to listen (default 127.0.0.1:8090)"),
        ("--interval S", "seconds between observations (default 2)"),
        ("--stale-after S", "readiness answers 503 when the observation is older (default 10)"),
        ("--model NAME", "watch this model only (repeatable; default: every registered model)"),
        ("--allow-saturated", "count saturated (a full job queue) as ready"),
        (
            "--auth-token-file PATH",
            "bearer token required for /status, /metrics and / ($TS_HEALTH_SERVE_TOKEN)",
        ),
    ),
}


def wide_help(monkeypatch: pytest.MonkeyPatch, *argv: str) -> str:
    """``ts-health [argv] --help`` on a terminal too wide for any line to wrap."""
    monkeypatch.setenv("COLUMNS", "1000")
    parser = build_parser()
    if argv:
        parser = parser._subparsers._group_actions[0].choices[argv[0]]  # type: ignore[union-attr]
    return parser.format_help()


def help_line(text: str, option: str) -> str:
    """The entry of ``--help`` that starts with ``option``, its help on the same line or
    the next (spaces squeezed)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("  ") and line.split()[: len(option.split())] == option.split():
            words = line.split()
            indent = len(line) - len(line.lstrip())
            for more in lines[i + 1 :]:
                if len(more) - len(more.lstrip()) <= indent:
                    break
                words += more.split()
            return " ".join(words)
    raise AssertionError(f"{option!r} not in {text}")


# -- what --help shows -----------------------------------------------------------------------------


def test_help_lists_exit_codes_and_environment(ts_health: Callable[..., Result]) -> None:
    result = ts_health("--help", connect=False)
    assert result.code == ExitCode.OK
    for text in (
        "exit codes:",
        "3  unreachable",
        "TS_HEALTH_KEY_FILE",
        "ping",
        "ready",
        "status",
        "wait",
    ):
        assert text in result.out
    assert ts_health("wait", "--help", connect=False).code == ExitCode.OK


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from ts_health_handler import __version__

    assert run(["--version"], environ={}) == ExitCode.OK
    assert capsys.readouterr().out == f"ts-health {__version__} (ts-health-handler)\n"


def test_the_main_help(monkeypatch: pytest.MonkeyPatch) -> None:
    text = wide_help(monkeypatch)
    assert text.startswith("usage: ts-health [-h] [--version] [--inference-url URL]")
    assert "COMMAND ...\n\nIs a TorchServe model ready, and if not, why?\n" in text
    assert help_line(text, "--version") == "--version print the version and exit"
    assert "\nconnection options:\n" in text
    for option, words in CONNECTION_HELP:
        assert help_line(text, option) == f"{option} {words}"
    for name, words in COMMAND_HELP.items():
        assert help_line(text, name) == f"{name} {words}"
    assert text.endswith(_main.EPILOG)


def test_the_epilog_word_for_word() -> None:
    # Every help ends with it (below); here its text, which those tests take from the module.
    assert _main.EPILOG == (
        "exit codes:\n"
        "  0  ok: alive / ready (degraded, saturated, unstable too with --allow-degraded,\n"
        "     --allow-saturated, --allow-unstable)\n"
        "  1  not ready: initializing, failing, unhealthy, stuck, saturated, unstable,\n"
        "     degraded; /ping unhealthy; wait gave up\n"
        "  2  usage or configuration error: bad option, bad URL, unreadable key file, key\n"
        "     expired, token refused, unknown model\n"
        "  3  unreachable: connection refused, timeout, unknown host\n"
        "  4  an answer TorchServe would not give: not HTTP, not JSON, wrong shape\n"
        "  5  internal error of ts-health\n"
        "\n"
        "environment (options win):\n"
        "  TS_HEALTH_INFERENCE_URL, TS_HEALTH_MANAGEMENT_URL, TS_HEALTH_TOKEN, "
        "TS_HEALTH_KEY_FILE,\n"
        "  TS_HEALTH_REQUEST_TIMEOUT, TS_HEALTH_DESCRIBE_TIMEOUT, TS_HEALTH_STATE_DIR\n"
        "\n"
        "Connection options work before and after the command. See docs/probe.md.\n"
    )


@pytest.mark.parametrize("command", sorted(COMMAND_HELP))
def test_each_commands_help(command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    text = wide_help(monkeypatch, command)
    assert text.startswith(f"usage: ts-health {command} [-h]")
    assert f"\n\n{COMMAND_HELP[command]}\n\n" in text
    for option, words in (*OWN_HELP[command], *CONNECTION_HELP):
        assert help_line(text, option) == f"{option} {words}".strip()
    assert "connection options:\n" in text
    # The epilog as written, not re-wrapped.
    assert text.endswith(_main.EPILOG)


def test_help_and_version_through_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["wait", "--help"], environ={}) == ExitCode.OK
    assert "--fail-fast" in capsys.readouterr().out
    assert run(["ready", "--version"], environ={}) == ExitCode.USAGE
    assert capsys.readouterr().err.splitlines()[-1] == (
        "ts-health ready: error: argument --version: expected one argument "
        "(see ts-health ready --help)"
    )


# -- the help's width ------------------------------------------------------------------------------


class Stdout:
    """``sys.__stdout__`` on a terminal whose descriptor is 1 (all else the real stream's)."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def fileno(self) -> int:
        return 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@contextlib.contextmanager
def terminal(
    monkeypatch: pytest.MonkeyPatch, answer: Any = 100, columns: str | None = None
) -> Iterator[None]:
    """A terminal of ``answer`` columns on stdout (an exception: none) and ``$COLUMNS``;
    undone before the test ends (the test runner writes to ``sys.__stdout__``)."""

    def get_terminal_size(fd: int) -> os.terminal_size:
        assert fd == 1
        if isinstance(answer, Exception):
            raise answer
        return os.terminal_size((answer, 24))

    with monkeypatch.context() as patch:
        if columns is None:
            patch.delenv("COLUMNS", raising=False)
        else:
            patch.setenv("COLUMNS", columns)
        patch.setattr(sys, "__stdout__", Stdout(sys.__stdout__))
        patch.setattr(os, "get_terminal_size", get_terminal_size)
        yield


@pytest.mark.parametrize(
    ("columns", "answer", "expected"),
    [
        (None, 100, 100),
        ("70", 100, 70),
        ("1", 100, 1),
        ("0", 100, 100),
        ("-5", 100, 100),
        ("wide", 100, 100),
        ("", 100, 100),
        (None, 0, 80),
        (None, OSError("not a terminal"), 80),
        (None, ValueError("closed"), 80),
        (None, AttributeError("no fileno"), 80),
        ("0", OSError("not a terminal"), 80),
    ],
)
def test_the_width_is_what_shutil_would_find(
    columns: str | None, answer: Any, expected: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    with terminal(monkeypatch, answer, columns):
        ours, shutils = _main._columns(), shutil.get_terminal_size().columns
    assert ours == expected
    # Before 3.11, shutil passed on a terminal's width of 0 instead of falling back to 80.
    if not (isinstance(answer, int) and answer == 0 and sys.version_info < (3, 11)):
        assert shutils == expected


def test_without_stdout_the_width_is_80(monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as patch:
        patch.delenv("COLUMNS", raising=False)
        patch.setattr(sys, "__stdout__", None)
        columns = _main._columns()
    assert columns == 80


def test_the_formatter_leaves_two_columns_like_argparse(monkeypatch: pytest.MonkeyPatch) -> None:
    with terminal(monkeypatch):
        formatter = _main._Formatter("p")
        given = _main._Formatter("p", 3, 30, 50)
    assert (formatter._width, formatter._indent_increment) == (98, 2)
    assert formatter._max_help_position == 24
    assert (given._width, given._indent_increment, given._max_help_position) == (50, 3, 30)
    assert isinstance(formatter, argparse.RawDescriptionHelpFormatter)


def test_the_formatter_never_asks_shutil_for_the_width(monkeypatch: pytest.MonkeyPatch) -> None:
    # argparse's own way imports shutil (and zlib, bz2, lzma) for any parser: ours does not.
    def get_terminal_size(*args: Any) -> os.terminal_size:
        raise AssertionError("shutil.get_terminal_size asked")

    with terminal(monkeypatch, 100):
        monkeypatch.setattr(shutil, "get_terminal_size", get_terminal_size)
        formatter = _main._Formatter("p")
        text = build_parser().format_help()
        monkeypatch.undo()
    assert formatter._width == 98
    assert text.startswith("usage: ts-health")


def test_the_help_wraps_as_argparse_would(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    for argv in ([], ["ping"], ["wait"], ["serve"]):
        ours = build_parser()
        if argv:
            ours = ours._subparsers._group_actions[0].choices[argv[0]]  # type: ignore[union-attr]
        text = ours.format_help()
        ours.formatter_class = argparse.RawDescriptionHelpFormatter
        assert text == ours.format_help()
