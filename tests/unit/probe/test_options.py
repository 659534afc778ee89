"""The connection options of every command: before or after the command, from the environment
and in which precedence, and each bad value one line with exit code 2."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.fake_torchserve import FakeTorchServe
from tests.support.key_files import SECRET
from tests.unit.probe.helpers import Result, closed_port, customized, document
from ts_health_handler import probe
from ts_health_handler.probe import ExitCode


def test_connection_options_before_and_after_the_command(
    fake: FakeTorchServe, ts_health: Callable[..., Result], state_dir: Path
) -> None:
    before = ts_health(
        "--management-url",
        fake.url,
        "--state-dir",
        str(state_dir),
        "status",
        "m",
        connect=False,
        env={"TS_HEALTH_INFERENCE_URL": fake.url},
    )
    after = ts_health(
        "status",
        "m",
        "--management-url",
        fake.url,
        "--state-dir",
        str(state_dir),
        connect=False,
        env={"TS_HEALTH_INFERENCE_URL": fake.url},
    )
    assert before.code == after.code == ExitCode.OK
    assert before.out == after.out


def test_option_after_the_command_wins_and_before_is_kept(
    fake: FakeTorchServe, ts_health: Callable[..., Result]
) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    # Given before only: kept although the subcommand defines the option too.
    assert ts_health("--inference-url", fake.url, "ping", connect=False).code == ExitCode.OK
    # Given on both sides: the later one counts.
    assert (
        ts_health("--inference-url", dead, "ping", "--inference-url", fake.url, connect=False).code
        == ExitCode.OK
    )


def test_environment_and_precedence(fake: FakeTorchServe, ts_health: Callable[..., Result]) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    env = {"TS_HEALTH_INFERENCE_URL": fake.url}
    assert ts_health("ping", env=env, connect=False).code == ExitCode.OK
    env = {"TS_HEALTH_INFERENCE_URL": dead}
    assert (
        ts_health("ping", "--inference-url", fake.url, env=env, connect=False).code == ExitCode.OK
    )
    assert ts_health("ping", env=env, connect=False).code == ExitCode.UNREACHABLE


def test_environment_timeouts(fake: FakeTorchServe, ts_health: Callable[..., Result]) -> None:
    fake.on("/models/m/1.0?customized=true", (200, customized(document())), delay=10)
    result = ts_health("ready", "m", env={"TS_HEALTH_DESCRIBE_TIMEOUT": "0.2"})
    assert "within 0.2 s" in result.out
    result = ts_health("ready", "m", env={"TS_HEALTH_REQUEST_TIMEOUT": "soon"})
    assert result.code == ExitCode.USAGE
    assert result.lines == [
        "ts-health: error: invalid $TS_HEALTH_REQUEST_TIMEOUT: expected a number of seconds "
        "above 0, got 'soon'"
    ]


def test_state_dir_from_environment(
    fake: FakeTorchServe, ts_health: Callable[..., Result], tmp_path: Path
) -> None:
    other = tmp_path / "elsewhere"
    result = ts_health(
        "ready",
        "m",
        "--json",
        "--inference-url",
        fake.url,
        "--management-url",
        fake.url,
        connect=False,
        env={"TS_HEALTH_STATE_DIR": str(other)},
    )
    assert result.json()["model"]["record_path"] == str(other / "m" / "1.0")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["ready", "m", "--management-url", "localhost:8081"],
            "invalid --management-url 'localhost:8081': expected http://HOST:PORT or https://HOST:PORT",
        ),
        (
            ["ping", "--inference-url", "http://h:notaport"],
            "invalid --inference-url 'http://h:notaport'",
        ),
        (
            ["ping", "--inference-url", f"http://user:{SECRET}@h:1"],
            "invalid --inference-url: credentials in the URL are not supported",
        ),
    ],
)
def test_bad_urls(ts_health: Callable[..., Result], argv: list[str], expected: str) -> None:
    result = ts_health(*argv, connect=False)
    assert result.code == ExitCode.USAGE
    (line,) = result.lines
    assert line.startswith("ts-health: error: " + expected)


def test_bad_url_from_environment(ts_health: Callable[..., Result]) -> None:
    result = ts_health("ping", connect=False, env={"TS_HEALTH_INFERENCE_URL": "ftp://x"})
    assert result.code == ExitCode.USAGE
    assert "invalid $TS_HEALTH_INFERENCE_URL 'ftp://x'" in result.err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], "ts-health: error: the following arguments are required: COMMAND"),
        (["ready"], "ts-health ready: error: the following arguments are required: MODEL"),
        (["wait", "m"], "ts-health wait: error: the following arguments are required: --timeout"),
        (
            ["ready", "m", "--request-timeout", "0"],
            "ts-health ready: error: argument --request-timeout: "
            "expected a number of seconds above 0, got '0'",
        ),
        (
            ["wait", "m", "--timeout", "nan"],
            "ts-health wait: error: argument --timeout: "
            "expected a number of seconds above 0, got 'nan'",
        ),
        (["probe"], "ts-health: error: argument COMMAND: invalid choice: 'probe'"),
    ],
)
def test_usage_errors_are_one_line(
    ts_health: Callable[..., Result], argv: list[str], expected: str
) -> None:
    result = ts_health(*argv, connect=False)
    assert result.code == ExitCode.USAGE
    (line,) = result.lines
    assert line.startswith(expected)


def test_status_version_needs_a_model(
    fake: FakeTorchServe, ts_health: Callable[..., Result]
) -> None:
    result = ts_health("status", "--version", "1.0")
    assert result.code == ExitCode.USAGE
    assert result.lines == [
        "ts-health: error: --version needs a MODEL: ts-health status MODEL --version V"
    ]
    assert fake.requests == []


def test_the_default_describe_timeout_leaves_room_for_the_default_check() -> None:
    # A describe waits up to check_timeout_s for health_check(); a probe that gives up first
    # would call a fresh worker with a hanging check "ready (status unknown)".
    from ts_health_handler import HealthConfig

    assert HealthConfig().check_timeout_s < probe.DEFAULT_DESCRIBE_TIMEOUT
