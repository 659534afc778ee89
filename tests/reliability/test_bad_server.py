"""Bad server: the real ``ts-health`` CLI against servers that answer garbage, close the
connection, reset it, or never answer. Bounded time, the documented exit code
(docs/probe.md: 3 unreachable, 4 not an answer TorchServe would give), one line on stderr,
no traceback. No TorchServe needed: the servers are raw loopback sockets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.reliability.reliability_support import BadServer, ProbeRun, run_probe

EXIT_NOT_READY = 1
EXIT_UNREACHABLE = 3
EXIT_BAD_ANSWER = 4
#: --request-timeout given to the probe.
REQUEST_TIMEOUT = 1.0
#: --timeout of `ts-health wait`.
WAIT_TIMEOUT = 2.0
#: Start-up of a fresh Python process and slack for a loaded 2-core machine.
SLACK = 3.0

BEHAVIOURS = {
    "garbage": EXIT_BAD_ANSWER,
    "not-json": EXIT_BAD_ANSWER,
    "odd-length": EXIT_BAD_ANSWER,
    "deep-json": EXIT_BAD_ANSWER,
    "close": EXIT_UNREACHABLE,
    "reset": EXIT_UNREACHABLE,
    "silent": EXIT_UNREACHABLE,
}
#: Each command, and how many request timeouts it may spend one after the other.
COMMANDS: dict[str, tuple[list[str], float]] = {
    "ping": (["ping"], REQUEST_TIMEOUT),
    "ready": (["ready", "m"], REQUEST_TIMEOUT),
    "status": (["status"], 2 * REQUEST_TIMEOUT),
    "status-model": (["status", "m"], 2 * REQUEST_TIMEOUT),
    "wait": (["wait", "m", "--timeout", str(WAIT_TIMEOUT), "--interval", "0.5"], WAIT_TIMEOUT),
}


def _run(server: BadServer, args: list[str], tmp_path: Path, *extra: str) -> ProbeRun:
    return run_probe(
        [
            *args,
            "--inference-url",
            server.url,
            "--management-url",
            server.url,
            "--state-dir",
            str(tmp_path),
            "--request-timeout",
            str(REQUEST_TIMEOUT),
            "--describe-timeout",
            str(REQUEST_TIMEOUT),
            *extra,
        ],
        timeout=60,
    )


def _one_clear_line(run: ProbeRun) -> None:
    assert "Traceback" not in run.output, run.output
    lines = run.output.splitlines()
    assert len(lines) == 1, run.output


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("behaviour", list(BEHAVIOURS))
def test_probe_against_a_bad_server(behaviour: str, command: str, tmp_path: Path) -> None:
    args, budget = COMMANDS[command]
    with BadServer(behaviour, lifetime_s=30) as server:
        run = _run(server, args, tmp_path)
    assert server.connections >= 1, "the probe never connected"
    assert run.code == BEHAVIOURS[behaviour], (run.code, run.output)
    assert run.seconds <= budget + SLACK, f"took {run.seconds:.1f} s: {run.output}"
    assert "Traceback" not in run.output, run.output
    # Every error on stderr, one line each: status may meet two (/ping and the management API).
    errors = run.stderr.splitlines()
    assert len(errors) <= (2 if command.startswith("status") else 1), run.stderr
    assert all(line.startswith("ts-health: ") for line in errors), run.stderr
    if run.code > EXIT_NOT_READY:
        assert errors, f"exit {run.code} without an error on stderr: {run.output}"
    if command == "wait":  # as `ready` would for the last poll, after "timed out after ...: "
        timed_out = f"timed out after {WAIT_TIMEOUT:g} s waiting for model m: "
        if run.code == EXIT_BAD_ANSWER:  # no model state, only the error: once, on stderr
            assert not run.stdout, run.output
            assert errors[0].startswith(f"ts-health: bad answer: {timed_out}"), run.stderr
        else:
            assert run.stdout.startswith(timed_out + "unreachable: model m ?: "), run.output
    if command.startswith("status"):
        # A table: the server line (with /ping's failure), then the models or why none.
        assert run.output.strip(), "no output"
    else:
        # At most one line of answer (a model state such as `unreachable`) on stdout.
        assert len(run.stdout.splitlines()) <= 1, run.output


@pytest.mark.parametrize("command", ["ping", "ready", "status-model"])
@pytest.mark.parametrize("behaviour", ["garbage", "silent"])
def test_probe_json_output_against_a_bad_server(
    behaviour: str, command: str, tmp_path: Path
) -> None:
    args, _ = COMMANDS[command]
    with BadServer(behaviour, lifetime_s=30) as server:
        run = _run(server, args, tmp_path, "--json")
    assert run.code == BEHAVIOURS[behaviour], run.output
    assert "Traceback" not in run.output
    document = json.loads(run.stdout)  # stdout is one JSON document, whatever happened
    assert document["exit_code"] == run.code
    assert document["command"] == args[0]
    assert 1 <= len(run.stderr.splitlines()) <= (2 if command.startswith("status") else 1), (
        run.stderr
    )
    if "error" in document:  # an error: the same line as on stderr
        assert "\n" not in document["error"]
        assert document["error"] in run.stderr
    elif command == "ready":  # the model could not be reached: a state, with the reason
        assert document["model"]["state"] == "unreachable"
        assert "\n" not in document["model"]["reason"]
    else:
        assert document["server"]["ping"] is None
        assert document["server"]["ping_error"]


@pytest.mark.parametrize("behaviour", ["trickle-head", "trickle-body"])
def test_probe_is_bounded_against_a_slow_loris_server(behaviour: str, tmp_path: Path) -> None:
    lifetime = 8.0
    with BadServer(behaviour, lifetime_s=lifetime, trickle_s=0.2) as server:
        run = _run(server, ["ping"], tmp_path)
    assert "Traceback" not in run.output
    assert run.code == EXIT_UNREACHABLE, run.output
    assert run.seconds <= REQUEST_TIMEOUT + SLACK, (
        f"took {run.seconds:.1f} s with --request-timeout {REQUEST_TIMEOUT:g} (the server "
        f"gave up after {lifetime:g} s): {run.output}"
    )
