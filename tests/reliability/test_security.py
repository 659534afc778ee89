"""Security: no environment variable, token or ``key_file.json`` content in the status
document, the records, or the probe's output (text and JSON); tracebacks in the record and
the status are bounded in size.

The server (``rel_server``) runs with token authorization on and secret markers in its
environment (``SECRET_ENV``); the test first checks that the workers really have them, so
that a leak would be seen.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.reliability.reliability_support import (
    SECRET_ENV,
    SECRET_MARKER,
    ProbeRun,
    record_path,
    worker_pids,
)
from ts_health_handler.testing import TorchServe

pytestmark = pytest.mark.integration

TRACEBACK_LIMIT = 300
MESSAGE_LIMIT = 2000
#: A failure message far above every limit.
LONG_MESSAGE = "weights checksum mismatch " + "x" * 20_000


@pytest.fixture(scope="module")
def models(rel_model: Callable[..., str]) -> tuple[str, str]:
    secret = rel_model("empty_model", "secret_model", {"minWorkers": 1, "maxWorkers": 1})
    held = rel_model(
        "empty_model",
        "held_model",
        {
            "minWorkers": 1,
            "maxWorkers": 1,
            "health": {
                "on_init_failure": "hold",
                "traceback_limit": TRACEBACK_LIMIT,
                "faults": {"fail_initialize": LONG_MESSAGE},
            },
        },
    )
    return secret, held


def _forbidden(server: TorchServe) -> dict[str, str]:
    assert server.token is not None
    key_file = (server.workdir / "key_file.json").read_text(encoding="utf-8")
    values = {
        "inference key": server.token.inference,
        "management key": server.token.management,
        "key_file.json": key_file.strip(),
        **{f"${name}": value for name, value in SECRET_ENV.items()},
        "the secret marker": SECRET_MARKER,
        # Names too: an environment dump would show them.
        **{f"name {name}": name for name in SECRET_ENV},
    }
    if server.token.api:
        values["API key"] = server.token.api
    return values


def _assert_clean(text: str, forbidden: dict[str, str], where: str) -> None:
    for what, value in forbidden.items():
        assert value not in text, f"{what} found in {where}"


def test_nothing_secret_in_status_records_or_probe_output(
    rel_server: TorchServe,
    models: tuple[str, str],
    rel_state_dir: Path,
    probe: Callable[..., ProbeRun],
) -> None:
    secret, held = models
    forbidden = _forbidden(rel_server)
    # The secrets are really there to leak: in every worker's environment.
    for name in (secret, held):
        for pid in worker_pids(rel_server, name):
            environ = Path(f"/proc/{pid}/environ").read_bytes().decode("utf-8", "replace")
            assert SECRET_MARKER in environ

    assert rel_server.token is not None
    answer = rel_server.infer(secret, b"hi", headers={"Content-Type": "text/plain"})
    assert answer.status == 200
    texts: dict[str, str] = {}
    for name in (secret, held):
        url = f"{rel_server.management_url}/models/{name}?customized=true"
        response = rel_server.request("GET", url, timeout=30)
        assert response.status == 200, response.text
        texts[f"customized describe of {name}"] = response.text
        texts[f"record of {name}"] = record_path(rel_state_dir, name).read_text(encoding="utf-8")

    key_file = str(rel_server.workdir / "key_file.json")
    runs = {
        "status --json": probe("status", "--json"),
        "status": probe("status"),
        "ready secret --json": probe("ready", secret, "--json"),
        "ready held": probe("ready", held),
        "wait secret --json": probe("wait", secret, "--timeout", "10", "--json"),
        "ping --token": probe("ping", "--token", rel_server.token.inference, key_file=False),
        "ping --token --json": probe(
            "ping", "--json", "--token", rel_server.token.inference, key_file=False
        ),
        # One token for both APIs: the management API refuses the inference key.
        "status --token (refused)": probe(
            "status", secret, "--token", rel_server.token.inference, key_file=False
        ),
        "status --json --token (refused)": probe(
            "status", secret, "--json", "--token", rel_server.token.inference, key_file=False
        ),
        "$TS_HEALTH_TOKEN (refused)": probe(
            "ping", key_file=False, env={"TS_HEALTH_TOKEN": rel_server.token.management}
        ),
        "$TS_HEALTH_KEY_FILE": probe(
            "ready", secret, "--json", key_file=False, env={"TS_HEALTH_KEY_FILE": key_file}
        ),
    }
    assert runs["status --json"].code == 1  # held_model is failing (and more may be)
    assert runs["ready secret --json"].code == 0, runs["ready secret --json"].output
    assert runs["ping --token"].code == 0, runs["ping --token"].output
    assert runs["status --token (refused)"].code == 2, runs["status --token (refused)"].output
    assert runs["$TS_HEALTH_TOKEN (refused)"].code == 2, runs["$TS_HEALTH_TOKEN (refused)"].output
    assert runs["$TS_HEALTH_KEY_FILE"].code == 0, runs["$TS_HEALTH_KEY_FILE"].output
    for label, run in runs.items():
        # The probe never shows a traceback of its own; the JSON carries the recorded
        # initialization tracebacks of failed models, which are data, not a probe crash.
        assert "Traceback" not in run.stderr, (label, run.stderr)
        if "--json" not in label:
            assert "Traceback" not in run.stdout, (label, run.stdout)
        texts[f"ts-health {label}"] = run.output
    # The probe's JSON carries our whole status document and the record.
    status_json = json.loads(runs["status --json"].stdout)
    assert any(m["model"] == secret and m["status"] for m in status_json["models"])

    for where, text in texts.items():
        _assert_clean(text, forbidden, where)


def test_tracebacks_and_messages_are_bounded(
    rel_server: TorchServe,
    models: tuple[str, str],
    rel_state_dir: Path,
    probe: Callable[..., ProbeRun],
) -> None:
    _, held = models
    document = rel_server.status_document(held)
    assert document["status"] == "failed"
    error = document["initialization"]["error"]
    assert error["type"] == "ts_health_handler.InitializationError", error["type"]
    # clip() keeps the head and the end of a long message (and of a traceback).
    assert error["message"].endswith(LONG_MESSAGE[-100:])
    assert len(error["message"]) <= MESSAGE_LIMIT
    assert error["traceback"] is not None
    assert len(error["traceback"]) <= TRACEBACK_LIMIT
    # Head and tail: where the traceback starts and the error it ends in, the cut between.
    assert error["traceback"].startswith("Traceback (most recent call last)")
    assert "...[truncated]...\n" in error["traceback"]

    path = record_path(rel_state_dir, held)
    record = json.loads(path.read_text(encoding="utf-8"))
    assert len(record["last_error"]["message"]) <= MESSAGE_LIMIT
    assert len(record["last_error"]["traceback"]) <= TRACEBACK_LIMIT
    assert all(e["traceback"] is None for e in record["recent_errors"])
    # Whatever the failure, the record stays small: 6 messages and one traceback at most.
    assert path.stat().st_size <= 6 * (MESSAGE_LIMIT + 400) + TRACEBACK_LIMIT + 2000

    # The probe's text is one line with the reason cut short; its JSON keeps the bounded record.
    run = probe("ready", held)
    assert run.code == 1
    assert len(run.stdout.splitlines()) == 1
    assert "xxxxxxxxxx" in run.stdout
    assert len(run.stdout) < 1000, len(run.stdout)
    run = probe("ready", held, "--json")
    model = json.loads(run.stdout)["model"]
    assert model["state"] == "failing"
    assert len(model["reason"]) < 1000
    assert len(model["status"]["initialization"]["error"]["traceback"]) <= TRACEBACK_LIMIT

    # Held failure: inference is answered 503 with the (bounded) reason, nothing more.
    answer = rel_server.infer(held, b"x", headers={"Content-Type": "text/plain"})
    assert answer.status == 503
    assert len(answer.text) < 2 * MESSAGE_LIMIT + 500
