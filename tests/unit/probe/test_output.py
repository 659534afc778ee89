"""What reaches the terminal: hostile text escaped, valid UTF-8 whatever the locale, and never a
token or key, on any path, in text or JSON, nor in a repr."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.describes import describe
from tests.support.fake_torchserve import FakeTorchServe
from tests.support.key_files import SECRET, write_key_file
from tests.unit.probe.helpers import BIN, NOW, Result
from ts_health_handler import cli, probe
from ts_health_handler.probe import ExitCode
from ts_health_handler.record import ErrorInfo, InitRecord, StateStore, utc_iso

HOSTILE = "boom \x1b[2J\x1b]0;pwned\x07 \x9b31m \u202eevil \udcff end"


def hostile_record(state_dir: Path) -> None:
    def fail(previous: InitRecord | None) -> InitRecord:
        started = InitRecord.started(
            previous, model_name="m", model_version="1.0", now=NOW - 5, worker_pid=7, server="1"
        )
        error = ErrorInfo("builtins.ValueError", HOSTILE, utc_iso(NOW - 4), 1)
        return started.failed(error, now=NOW - 4, duration_s=1.0, worker_pid=7)

    StateStore(state_dir, "m", "1.0").update(fail)


def test_hostile_error_text_reaches_the_terminal_escaped(
    fake: FakeTorchServe, ts_health: Callable[..., Result], state_dir: Path
) -> None:
    hostile_record(state_dir)
    fake.on("/models/m", (200, describe("UNLOADING")))
    result = ts_health("ready", "m", wall=lambda: NOW)
    assert result.code == ExitCode.NOT_READY
    for raw in ("\x1b", "\x07", "\x9b", "\u202e", "\udcff"):
        assert raw not in result.out
    assert "boom \\x1b[2J\\x1b]0;pwned\\x07 \\u009b31m \\u202eevil \\udcff end" in result.out
    # JSON keeps the message whole, escaped by JSON itself.
    data = ts_health("ready", "m", "--json", wall=lambda: NOW).json()
    assert data["model"]["initialization"]["last_error"]["message"].startswith("boom \x1b[2J")


@pytest.mark.parametrize("encoding", ["utf-8:strict", "ascii:strict", "latin-1"])
def test_output_is_valid_utf8_whatever_the_locale(
    fake: FakeTorchServe, state_dir: Path, encoding: str
) -> None:
    hostile_record(state_dir)
    fake.on("/models/m", (200, describe("UNLOADING")))
    env = {**os.environ, "PYTHONIOENCODING": encoding, "LC_ALL": "C", "LANG": "C"}
    connection = ["--inference-url", fake.url, "--management-url", fake.url]
    connection += ["--state-dir", str(state_dir)]
    for argv in (["ready", "m"], ["status"], ["ready", "m", "--json"]):
        done = subprocess.run(
            [str(BIN / "ts-health"), *argv, *connection],
            capture_output=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert done.returncode == ExitCode.NOT_READY, done
        text = done.stdout.decode("utf-8")  # strict: raises on anything but UTF-8
        assert "\x1b" not in text
        assert "Traceback" not in done.stderr.decode("utf-8")


def test_token_never_printed_in_json_or_repr(
    fake: FakeTorchServe, ts_health: Callable[..., Result]
) -> None:
    result = ts_health("status", "--json", "--token", SECRET)
    assert result.code == ExitCode.OK
    settings = probe.resolve_settings(
        cli.build_parser().parse_args(["ping", "--token", SECRET]), {}
    )
    assert SECRET not in repr(settings)
    client = probe.client_for(settings)
    assert SECRET not in repr(client.inference) + repr(client.management)


ECHOES: list[tuple[str, Any]] = [
    # A server (or a proxy in front of it) that echoes the key it was sent.
    ("refused", (400, {"code": 400, "type": "InvalidKeyException", "message": "{key}"})),
    ("unexpected status", (503, {"code": 503, "type": "Oops", "message": "got {key}"})),
    ("not JSON", (200, b"key was {key}")),
    ("wrong shape", (200, {"status": ["{key}"]})),
]


@pytest.mark.parametrize(("path", "answer"), ECHOES, ids=[e[0] for e in ECHOES])
@pytest.mark.parametrize("how", ["token", "key-file"])
@pytest.mark.parametrize("command", ["ping", "status", "ready"])
def test_no_error_path_prints_a_key(
    fake: FakeTorchServe,
    ts_health: Callable[..., Result],
    tmp_path: Path,
    path: str,
    answer: Any,
    how: str,
    command: str,
) -> None:
    key = f"inf-{SECRET}"
    status, body = answer
    if isinstance(body, bytes):
        body = body.replace(b"{key}", key.encode())
    else:
        body = json.loads(json.dumps(body).replace("{key}", key))
    for route in ("/ping", "/models/m", "/models/m/all", "/models?limit=100"):
        fake.on(route, (status, body))
    auth = (
        ["--token", key]
        if how == "token"
        else ["--key-file", str(write_key_file(tmp_path / "key_file.json"))]
    )
    argv = [command] + (["m"] if command == "ready" else [])
    for extra in ([], ["--json"]):
        result = ts_health(*argv, *extra, *auth)
        assert result.code != ExitCode.OK
        # the fixture asserts the secret is nowhere in the output
        assert "<redacted>" in result.out + result.err or path != "refused"


def test_an_internal_error_holding_a_key_prints_it_redacted(
    ts_health: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> int:
        raise ValueError(f"Invalid header value b'Bearer {SECRET}'")

    monkeypatch.setitem(cli.COMMANDS, "ping", broken)
    result = ts_health("ping", "--token", SECRET)
    assert result.code == ExitCode.INTERNAL
    assert "Bearer <redacted>" in result.err
