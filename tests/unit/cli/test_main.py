"""Running ``ts-health``: each command given its settings, arguments and ``Io``, the environment
passed or the process's, the token redacted, every way a command can end (a health error's
line, exit code and ``--json`` document, an interrupt, an internal error as one cut line),
``main``'s streams; and the real process (console script, ``python -m``) that imports
neither torch nor ts. The parser: test_main_options.py; the help: test_main_help.py."""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_torchserve import FakeTorchServe
from tests.unit.probe.helpers import BIN, Result, closed_port
from ts_health_handler import cli
from ts_health_handler._errors import HealthError
from ts_health_handler.cli import _main, main, run
from ts_health_handler.monitor._exit import ExitCode, UsageError
from ts_health_handler.monitor._output import Io
from ts_health_handler.torchserve._errors import BadAnswer, Unreachable

# -- running a command -----------------------------------------------------------------------------


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


def test_the_token_is_a_secret_of_the_io(monkeypatch: pytest.MonkeyPatch) -> None:
    code, streams, _ = run_with(monkeypatch, UsageError("bad token tok-123"), token="tok-123")
    assert code == ExitCode.USAGE
    assert streams.err.getvalue() == "ts-health: error: bad token <redacted>\n"
    code, streams, _ = run_with(monkeypatch, UsageError("bad token tok-123"))
    assert streams.err.getvalue() == "ts-health: error: bad token tok-123\n"


# -- how a command ends ----------------------------------------------------------------------------


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


def test_internal_errors_are_one_line(
    ts_health: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> int:
        raise KeyError("oops")

    monkeypatch.setitem(cli.COMMANDS, "ping", broken)
    result = ts_health("ping")
    assert result.code == ExitCode.INTERNAL
    assert result.lines == ["ts-health: internal error: KeyError: 'oops' (please report it)"]


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


# -- main ------------------------------------------------------------------------------------------


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


# -- as a real process -----------------------------------------------------------------------


def test_probe_imports_neither_torch_nor_ts() -> None:
    code = (
        "import sys, ts_health_handler.probe, ts_health_handler.__main__; "
        "assert 'torch' not in sys.modules and 'ts' not in sys.modules, "
        "sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'ts'))"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_console_script(fake: FakeTorchServe, state_dir: Path) -> None:
    script = BIN / "ts-health"
    if not script.exists():
        pytest.skip("ts-health console script not installed next to the interpreter")
    env = dict(os.environ, TS_HEALTH_MANAGEMENT_URL=fake.url, TS_HEALTH_STATE_DIR=str(state_dir))
    done = subprocess.run(
        [str(script), "ready", "m"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == ExitCode.OK, done.stderr
    assert done.stdout.startswith("ready: model m 1.0:")


def test_python_dash_m(fake: FakeTorchServe) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ts_health_handler", "--inference-url", fake.url, "ping"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == ExitCode.OK, done.stderr
    url = f"http://127.0.0.1:{closed_port()}"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ts_health_handler",
            "status",
            "--management-url",
            url,
            "--inference-url",
            url,
            "--request-timeout",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == ExitCode.UNREACHABLE
    assert "Traceback" not in done.stderr + done.stdout
    assert done.stdout.strip().startswith("unreachable: cannot connect to the management API")
