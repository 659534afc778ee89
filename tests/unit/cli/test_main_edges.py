"""``ts-health``'s parser and dispatcher to the letter: every option's value, default and
help, usage errors, the help's width, and each way a command can end."""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import shutil
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from ts_health_handler import cli
from ts_health_handler._errors import HealthError
from ts_health_handler.cli import _main, build_parser, main, run
from ts_health_handler.monitor._defaults import DEFAULT_WAIT_INTERVAL
from ts_health_handler.monitor._exit import ExitCode, UsageError
from ts_health_handler.monitor._output import Io
from ts_health_handler.torchserve._errors import BadAnswer, Unreachable

CONNECTION = {
    "inference_url": None,
    "management_url": None,
    "token": None,
    "key_file": None,
    "renew_key": False,
    "request_timeout": None,
    "describe_timeout": None,
    "state_dir": None,
    "json": False,
}
POLICY = {"allow_degraded": False, "allow_saturated": False, "allow_unstable": False}
MODEL = {"version": None, **POLICY}

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


def parse(*argv: str) -> dict[str, Any]:
    return vars(build_parser().parse_args(argv))


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


# -- what the parser makes of a command line ------------------------------------------------


def test_each_command_parses_to_exactly_its_options_and_defaults() -> None:
    assert parse("ping") == {**CONNECTION, "command": "ping"}
    assert parse("ready", "m") == {**CONNECTION, "command": "ready", "model": "m", **MODEL}
    assert parse("status") == {**CONNECTION, "command": "status", "model": None, **MODEL}
    assert parse("wait", "m", "--timeout", "3") == {
        **CONNECTION,
        "command": "wait",
        "model": "m",
        **MODEL,
        "timeout": 3.0,
        "interval": DEFAULT_WAIT_INTERVAL,
        "fail_fast": False,
    }
    assert parse("serve") == {
        **CONNECTION,
        "command": "serve",
        "listen": None,
        "interval": None,
        "stale_after": None,
        "models": None,
        **POLICY,
        "auth_token_file": None,
    }


CONNECTION_ARGS = (
    "--inference-url",
    "http://i:1",
    "--management-url",
    "http://m:2",
    "--token",
    "t",
    "--key-file",
    "k.json",
    "--renew-key",
    "--request-timeout",
    "1.5",
    "--describe-timeout",
    "2.5",
    "--state-dir",
    "/s",
    "--json",
)
CONNECTION_SET = {
    "inference_url": "http://i:1",
    "management_url": "http://m:2",
    "token": "t",
    "key_file": "k.json",
    "renew_key": True,
    "request_timeout": 1.5,
    "describe_timeout": 2.5,
    "state_dir": "/s",
    "json": True,
}


@pytest.mark.parametrize("command", ["ping", "ready", "status", "wait", "serve"])
def test_connection_options_work_before_and_after_the_command(command: str) -> None:
    rest = {"ready": ["m"], "wait": ["m", "--timeout", "1"]}.get(command, [])
    before = parse(*CONNECTION_ARGS, command, *rest)
    after = parse(command, *rest, *CONNECTION_ARGS)
    assert {k: before[k] for k in CONNECTION_SET} == CONNECTION_SET
    assert {k: after[k] for k in CONNECTION_SET} == CONNECTION_SET
    # Not given after the command: what was given before it stands.
    mixed = parse("--token", "a", "--json", "--renew-key", command, *rest, "--state-dir", "/x")
    assert (mixed["token"], mixed["json"], mixed["renew_key"], mixed["state_dir"]) == (
        "a",
        True,
        True,
        "/x",
    )


def test_the_model_options() -> None:
    got = parse("ready", "m", "--version", "2.0", "--allow-degraded", "--allow-unstable")
    assert (got["model"], got["version"], got["allow_degraded"], got["allow_unstable"]) == (
        "m",
        "2.0",
        True,
        True,
    )
    assert parse("status", "m", "--allow-saturated")["model"] == "m"
    assert parse("status", "--allow-saturated")["allow_saturated"] is True


def test_the_options_of_wait() -> None:
    got = parse("wait", "m", "--timeout", "0.5", "--interval", "0.25", "--fail-fast")
    assert (got["timeout"], got["interval"], got["fail_fast"]) == (0.5, 0.25, True)


def test_the_options_of_serve() -> None:
    got = parse(
        "serve",
        "--listen",
        "0.0.0.0:9",
        "--interval",
        "3",
        "--stale-after",
        "7.5",
        "--model",
        "a",
        "--model",
        "b",
        "--allow-saturated",
        "--auth-token-file",
        "/t",
    )
    assert {k: got[k] for k in ("listen", "interval", "stale_after", "models")} == {
        "listen": "0.0.0.0:9",
        "interval": 3.0,
        "stale_after": 7.5,
        "models": ["a", "b"],
    }
    assert (got["allow_saturated"], got["auth_token_file"]) == (True, "/t")


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["--nope", "ping"], "unrecognized arguments: --nope"),
        (
            ["--request-timeout", "0", "ping"],
            "argument --request-timeout: expected a number of seconds above 0, got '0'",
        ),
        (
            ["--describe-timeout", "x", "ping"],
            "argument --describe-timeout: expected a number of seconds above 0, got 'x'",
        ),
    ],
)
def test_usage_errors_of_the_main_parser(
    argv: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(argv, environ={}) == ExitCode.USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines()[-1] == f"ts-health: error: {error} (see ts-health --help)"


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["ready"], "the following arguments are required: MODEL"),
        (["wait", "m"], "the following arguments are required: --timeout"),
        (["wait"], "the following arguments are required: MODEL, --timeout"),
        (
            ["wait", "m", "--timeout", "-1"],
            "argument --timeout: expected a number of seconds above 0, got '-1'",
        ),
        (
            ["wait", "m", "--timeout", "1", "--interval", "inf"],
            "argument --interval: expected a number of seconds above 0, got 'inf'",
        ),
        (
            ["serve", "--interval", "0"],
            "argument --interval: expected a number of seconds above 0, got '0'",
        ),
        (
            ["serve", "--stale-after", "no"],
            "argument --stale-after: expected a number of seconds above 0, got 'no'",
        ),
        (
            ["ping", "--request-timeout", "nan"],
            "argument --request-timeout: expected a number of seconds above 0, got 'nan'",
        ),
        (["ping", "m"], "unrecognized arguments: m"),
    ],
)
def test_usage_errors_of_a_command(
    argv: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(argv, environ={}) == ExitCode.USAGE
    err = capsys.readouterr().err
    prog = "ts-health" if argv[-1] == "m" and argv[0] == "ping" else f"ts-health {argv[0]}"
    assert err.splitlines()[-1] == f"{prog}: error: {error} (see {prog} --help)"


# -- what --help shows ----------------------------------------------------------------------


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


# -- the help's width -----------------------------------------------------------------------


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


# -- running a command ----------------------------------------------------------------------


class Streams:
    def __init__(self) -> None:
        self.out, self.err = io.StringIO(), io.StringIO()
        self.io = Io(self.out, self.err)


def run_with(
    monkeypatch: pytest.MonkeyPatch, raised: BaseException | None, *argv: str, token: str = ""
) -> tuple[int, Streams, list[Any]]:
    streams = Streams()
    calls: list[Any] = []

    def command(settings: Any, args: argparse.Namespace, io: Io) -> int:
        calls.append((settings, args, io))
        if raised is not None:
            raise raised
        return 42

    monkeypatch.setitem(cli.COMMANDS, "status", command)
    env = {"TS_HEALTH_TOKEN": token} if token else {}
    code = run(["status", *argv], environ=env, io=streams.io)
    return code, streams, calls


def test_run_hands_the_command_its_settings_arguments_and_io(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, streams, calls = run_with(monkeypatch, None, "--inference-url", "http://h:1")
    assert code == 42
    [(settings, args, given_io)] = calls
    assert given_io is streams.io
    assert (settings.inference_url, args.command, args.inference_url) == (
        "http://h:1",
        "status",
        "http://h:1",
    )
    assert (streams.out.getvalue(), streams.err.getvalue()) == ("", "")


def test_run_reads_the_environment_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TS_HEALTH_INFERENCE_URL", "http://process:1")
    streams = Streams()
    seen: list[str] = []
    monkeypatch.setitem(cli.COMMANDS, "ping", lambda s, a, i: seen.append(s.inference_url) or 0)
    env = {"TS_HEALTH_INFERENCE_URL": "http://given:2"}
    assert run(["ping"], environ=env, io=streams.io) == 0
    assert run(["ping"], io=streams.io) == 0
    assert seen == ["http://given:2", "http://process:1"]


def test_the_token_is_a_secret_of_the_io(monkeypatch: pytest.MonkeyPatch) -> None:
    code, streams, _ = run_with(monkeypatch, UsageError("bad token tok-123"), token="tok-123")
    assert code == ExitCode.USAGE
    assert streams.err.getvalue() == "ts-health: error: bad token <redacted>\n"
    code, streams, _ = run_with(monkeypatch, UsageError("bad token tok-123"))
    assert streams.err.getvalue() == "ts-health: error: bad token tok-123\n"


@pytest.mark.parametrize(
    ("error", "code", "label"),
    [
        (UsageError("bad\n  option"), ExitCode.USAGE, "error"),
        (Unreachable("cannot connect"), ExitCode.UNREACHABLE, "unreachable"),
        (BadAnswer("not JSON"), ExitCode.BAD_ANSWER, "bad answer"),
        (HealthError("other"), ExitCode.USAGE, "error"),
    ],
)
def test_a_health_error_is_one_line_and_its_exit_code(
    error: HealthError, code: int, label: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    got, streams, _ = run_with(monkeypatch, error)
    assert got == code
    assert streams.err.getvalue() == f"ts-health: {label}: {' '.join(str(error).split())}\n"
    assert streams.out.getvalue() == ""


def test_with_json_a_health_error_is_also_a_document(monkeypatch: pytest.MonkeyPatch) -> None:
    got, streams, _ = run_with(monkeypatch, Unreachable("cannot\nconnect"), "--json")
    assert got == ExitCode.UNREACHABLE
    assert streams.err.getvalue() == "ts-health: unreachable: cannot connect\n"
    assert streams.out.getvalue() == (
        '{\n  "command": "status",\n  "exit_code": 3,\n  "error": "cannot\\nconnect"\n}\n'
    )
    assert json.loads(streams.out.getvalue())["exit_code"] == 3


def test_a_bad_setting_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    streams = Streams()
    code = run(["ping", "--inference-url", "ftp://x", "--json"], environ={}, io=streams.io)
    assert code == ExitCode.USAGE
    [line] = streams.err.getvalue().splitlines()
    assert line == (
        "ts-health: error: invalid --inference-url 'ftp://x': "
        "expected http://HOST:PORT or https://HOST:PORT"
    )
    assert json.loads(streams.out.getvalue())["command"] == "ping"


def test_an_interrupt_is_exit_130(monkeypatch: pytest.MonkeyPatch) -> None:
    got, streams, _ = run_with(monkeypatch, KeyboardInterrupt())
    assert got == ExitCode.INTERRUPTED == 130
    assert (streams.out.getvalue(), streams.err.getvalue()) == ("", "ts-health: interrupted\n")


def test_an_internal_error_is_cut_to_300_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    got, streams, _ = run_with(monkeypatch, RuntimeError("a" * 200 + "\n" + "b" * 200))
    assert got == ExitCode.INTERNAL
    line = streams.err.getvalue()
    assert line.startswith("ts-health: internal error: RuntimeError: aaa")
    assert line.endswith("bbb (please report it)\n")
    message = line.removeprefix("ts-health: internal error: RuntimeError: ")
    message = message.removesuffix(" (please report it)\n")
    assert len(message) == 300
    assert "..." in message
    assert "\n" not in message


def test_a_system_exit_without_a_number_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def parse_args(self: Any, argv: Any = None) -> Any:
        raise SystemExit("a message instead of a code")

    monkeypatch.setattr(_main._Parser, "parse_args", parse_args)
    assert run(["ping"], environ={}) == ExitCode.USAGE
    monkeypatch.setattr(_main._Parser, "parse_args", lambda self, argv=None: sys.exit(7))
    assert run(["ping"], environ={}) == 7


def test_the_commands_are_named_and_dispatched(monkeypatch: pytest.MonkeyPatch) -> None:
    assert list(_main.COMMANDS) == ["ping", "ready", "status", "wait", "serve"]
    for name in ("ping", "ready", "status", "wait"):
        command = _main.COMMANDS[name]
        assert (command.__name__, command.__qualname__) == (f"cmd_{name}", f"cmd_{name}")
    import ts_health_handler.serve as serve
    from ts_health_handler.probe import _commands

    calls: list[tuple[str, str, str, Io]] = []

    def recorder(code: int) -> Any:
        def command(settings: Any, args: argparse.Namespace, io: Io) -> int:
            calls.append((settings.management_url, args.command, args.state_dir, io))
            return code

        return command

    for name in ("ping", "ready", "status", "wait"):
        monkeypatch.setitem(_commands.COMMANDS, name, recorder(7))
    monkeypatch.setattr(serve, "cmd_serve", recorder(9))
    streams = Streams()
    env = {"TS_HEALTH_MANAGEMENT_URL": "http://m:3"}
    for argv in (["ping"], ["ready", "m"], ["status"], ["wait", "m", "--timeout", "1"]):
        assert run([*argv, "--state-dir", "/s"], environ=env, io=streams.io) == 7
    assert run(["serve", "--state-dir", "/s"], environ=env, io=streams.io) == 9
    assert calls == [
        ("http://m:3", name, "/s", streams.io)
        for name in ("ping", "ready", "status", "wait", "serve")
    ]


def test_a_probe_command_hands_its_arguments_to_the_probe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # COMMANDS is built at import; _probe made afresh is what a mutated copy would build.
    from ts_health_handler.probe import _commands

    seen: list[tuple[Any, ...]] = []
    monkeypatch.setitem(_commands.COMMANDS, "ready", lambda *given: seen.append(given) or 3)
    command = _main._probe("ready")
    assert (command.__name__, command.__qualname__) == ("cmd_ready", "cmd_ready")
    settings, args, given_io = object(), argparse.Namespace(), Streams().io
    assert command(settings, args, given_io) == 3  # type: ignore[arg-type]
    assert seen == [(settings, args, given_io)]


def test_run_without_an_io_writes_to_stdout_and_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(["status", "--json", "--management-url", "ftp://x"], environ={}) == 2
    captured = capsys.readouterr()
    assert captured.err == (
        "ts-health: error: invalid --management-url 'ftp://x': "
        "expected http://HOST:PORT or https://HOST:PORT\n"
    )
    assert json.loads(captured.out) == {
        "command": "status",
        "exit_code": 2,
        "error": "invalid --management-url 'ftp://x': expected http://HOST:PORT or https://HOST:PORT",
    }


def test_a_usage_error_exits_the_parser_with_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["ready"], ["--nope"], []):
        with pytest.raises(SystemExit) as raised:
            build_parser().parse_args(argv)
        assert raised.value.code == 2
    assert capsys.readouterr().err.count(" (see ts-health") == 3


# -- main -------------------------------------------------------------------------------------


def ascii_stream() -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(), encoding="ascii", errors="strict")


def test_main_writes_utf_8_and_freezes_the_heap(monkeypatch: pytest.MonkeyPatch) -> None:
    out, err = ascii_stream(), ascii_stream()
    gc.unfreeze()
    try:
        with monkeypatch.context() as patch:
            patch.setattr(sys, "stdout", out)
            patch.setattr(sys, "stderr", err)
            code = main(["--version"])
        frozen = gc.get_freeze_count()
    finally:
        gc.unfreeze()
    assert (code, frozen > 0) == (ExitCode.OK, True)
    for stream in (out, err):
        assert (stream.encoding, stream.errors) == ("utf-8", "backslashreplace")
    out.flush()
    assert out.buffer.getvalue().startswith(b"ts-health ")  # type: ignore[attr-defined]


def test_main_passes_its_arguments_and_returns_the_code(monkeypatch: pytest.MonkeyPatch) -> None:
    out, err = io.StringIO(), io.StringIO()  # no reconfigure: left as they are
    try:
        with monkeypatch.context() as patch:
            patch.setattr(sys, "stdout", out)
            patch.setattr(sys, "stderr", err)
            code = main(["nope"])
    finally:
        gc.unfreeze()
    assert code == ExitCode.USAGE
    assert "invalid choice: 'nope'" in err.getvalue()
