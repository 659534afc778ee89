"""What `main` and `run` do for start-up: a one-shot command runs without the garbage collector
(serve and wait keep it), and only the command named is given its options."""

from __future__ import annotations

import argparse
import gc
from collections.abc import Iterator

import pytest

from ts_health_handler.cli import _main


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, bool]]:
    """Every command replaced by one that notes whether the collector is on while it runs."""
    noted: dict[str, bool] = {}

    def command(name: str) -> _main.Command:
        def run(settings: object, args: argparse.Namespace, io: object) -> int:
            noted[name] = gc.isenabled()
            return 0

        return run

    for name in _main.COMMANDS:
        monkeypatch.setitem(_main.COMMANDS, name, command(name))
    was = gc.isenabled()
    yield noted
    assert gc.isenabled() is was
    if not was:  # pragma: no cover - pytest runs with the collector on
        gc.enable()


@pytest.mark.parametrize(
    ("argv", "collecting"),
    [
        (["ping"], False),
        (["ready", "m"], False),
        (["status"], False),
        (["wait", "m", "--timeout", "1"], True),
        (["serve"], True),
    ],
)
def test_the_collector_is_on_only_for_the_commands_that_keep_running(
    seen: dict[str, bool], argv: list[str], collecting: bool
) -> None:
    assert _main.main(argv) == 0
    assert seen == {argv[0]: collecting}
    assert gc.isenabled()


def test_main_turns_the_collector_back_on_when_the_command_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(argv: object = None, **_: object) -> int:
        assert not gc.isenabled()
        raise KeyboardInterrupt

    monkeypatch.setattr(_main, "run", broken)
    with pytest.raises(KeyboardInterrupt):
        _main.main(["ready", "m"])
    assert gc.isenabled()


def test_the_long_running_commands_exist() -> None:
    assert set(_main.COMMANDS) >= _main.LONG_RUNNING


def test_every_command_parsed_is_a_command_run() -> None:
    parser = _main.build_parser()
    parsed: dict[str, argparse.ArgumentParser]
    parsed = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr,assignment]
    assert list(parsed) == list(_main.COMMANDS)


def test_a_parser_for_some_commands_lists_every_command_and_builds_those_whole(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = _main.build_parser({"ready", "m"})
    listed = parser.format_help()
    for name in _main.COMMANDS:
        assert f"\n    {name}" in listed, listed
    args = parser.parse_args(["ready", "m", "--json", "--allow-degraded"])
    assert (args.command, args.model, args.json, args.allow_degraded) == ("ready", "m", True, True)
    # The others take no options of their own: run() builds the one its words name.
    with pytest.raises(SystemExit):
        parser.parse_args(["status", "--json"])
    assert "unrecognized arguments: --json" in capsys.readouterr().err
    whole = _main.build_parser()
    assert whole.parse_args(["status", "--json"]).json is True


def test_run_without_argv_reads_the_command_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The console script: run() takes sys.argv (after the program), and the command named
    # there is the one given its options.
    monkeypatch.setattr("sys.argv", ["ts-health", "ready", "--help"])
    assert _main.run() == 0
    shown = capsys.readouterr().out
    assert shown.startswith("usage: ts-health ready [-h]"), shown
    assert "count degraded (a failing user check) as ready" in shown  # its options listed
