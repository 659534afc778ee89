"""What ``ts-health``'s parser makes of a command line: each command's options and their
defaults, the connection options before and after the command, and the usage errors (one
line, exit code 2; the parser's own exit too). The help: tests/unit/cli/test_main_help.py."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from ts_health_handler.cli import _main, build_parser, run
from ts_health_handler.monitor._defaults import DEFAULT_WAIT_INTERVAL
from ts_health_handler.monitor._exit import ExitCode

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


def parse(*argv: str) -> dict[str, Any]:
    return vars(build_parser().parse_args(argv))


# -- each command's options ------------------------------------------------------------------------


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


# -- usage errors ----------------------------------------------------------------------------------


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


def test_a_usage_error_exits_the_parser_with_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["ready"], ["--nope"], []):
        with pytest.raises(SystemExit) as raised:
            build_parser().parse_args(argv)
        assert raised.value.code == 2
    assert capsys.readouterr().err.count(" (see ts-health") == 3


def test_a_system_exit_without_a_number_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def parse_args(self: Any, argv: Any = None) -> Any:
        raise SystemExit("a message instead of a code")

    monkeypatch.setattr(_main._Parser, "parse_args", parse_args)
    assert run(["ping"], environ={}) == ExitCode.USAGE
    monkeypatch.setattr(_main._Parser, "parse_args", lambda self, argv=None: sys.exit(7))
    assert run(["ping"], environ={}) == 7
