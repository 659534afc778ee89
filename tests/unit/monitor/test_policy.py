"""The readiness policy: one value decides ``ok``, the exit codes and serve's ready answers."""

from __future__ import annotations

import pytest

from ts_health_handler.cli import build_parser
from ts_health_handler.monitor._policy import ALLOWS, READY_ONLY, ReadinessPolicy
from ts_health_handler.monitor._settings import resolve_settings
from ts_health_handler.probe import ModelState

POLICIES = {
    "default": READY_ONLY,
    "degraded": ReadinessPolicy(allow_degraded=True),
    "saturated": ReadinessPolicy(allow_saturated=True),
    "both": ReadinessPolicy(allow_degraded=True, allow_saturated=True),
}
ADMITTED = {
    "default": {ModelState.READY},
    "degraded": {ModelState.READY, ModelState.DEGRADED},
    "saturated": {ModelState.READY, ModelState.SATURATED},
    "both": {ModelState.READY, ModelState.DEGRADED, ModelState.SATURATED},
}


@pytest.mark.parametrize("name", POLICIES)
def test_admits_ready_always_and_each_allowed_state_alone(name: str) -> None:
    admitted = {state for state in ModelState if POLICIES[name].admits(state)}
    assert admitted == ADMITTED[name]


def test_every_field_allows_a_state() -> None:
    # A field allow_<word> whose word is not a state would silently admit nothing.
    for name in ReadinessPolicy._fields:
        assert name.startswith("allow_"), name
        state = ModelState(name.removeprefix("allow_"))
        assert state is not ModelState.READY
        assert ReadinessPolicy._field_defaults[name] is False
        assert ReadinessPolicy(**{name: True}).admits(state)
        assert ALLOWS[name]  # the option's help


@pytest.mark.parametrize("command", ["ready", "status", "wait", "serve"])
def test_each_command_resolves_the_same_policy_from_its_options(command: str) -> None:
    argv = [command, "m"] if command != "serve" else [command]
    if command == "wait":
        argv += ["--timeout", "1"]
    parser = build_parser()
    plain = resolve_settings(parser.parse_args(argv), {})
    allowing = resolve_settings(
        parser.parse_args([*argv, "--allow-degraded", "--allow-saturated"]), {}
    )
    assert plain.readiness == READY_ONLY
    assert allowing.readiness == POLICIES["both"]


@pytest.mark.parametrize("command", ["ready", "serve"])
def test_the_options_keep_their_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--allow-degraded count degraded (a failing user check) as ready" in text
    assert "--allow-saturated count saturated (a full job queue) as ready" in text
