"""A server with TorchServe 0.12's token authorization on, reached with key_file.json's keys."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.probe_cli import SCRIPT
from ts_health_handler.testing import Tokens, TorchServe

pytestmark = pytest.mark.integration

DENIED = "InvalidKeyException"


@pytest.mark.own_server
def test_token_auth_server_is_reached_with_the_key_file(
    tmp_path: Path,
    build_mar: Callable[..., Path],
    read_record: Callable[..., Any],
    serve_own: Callable[..., Any],
) -> None:
    store, state = tmp_path / "store", tmp_path / "state"
    mar = build_mar("empty_model", store)
    with serve_own(store, state_dir=state, token_auth=True) as server:
        assert isinstance(server, TorchServe)
        # The frontend writes key_file.json into its working directory.
        key_file = server.workdir / "key_file.json"
        raw = json.loads(key_file.read_text(encoding="utf-8"))
        assert set(raw) == {"management", "inference", "API"}
        assert server.token == Tokens.from_key_file(key_file)
        assert server.token is not None
        assert server.token.inference == raw["inference"]["key"]
        assert server.token.management == raw["management"]["key"]

        # Without a token every API refuses, /ping included; metrics need none.
        for url in (f"{server.inference_url}/ping", f"{server.management_url}/models"):
            denied = server.request("GET", url, auth=False)
            assert denied.status == 400, (url, denied.text)
            assert denied.json()["type"] == DENIED
        wrong = server.request(
            "GET",
            f"{server.management_url}/models",
            auth=False,
            headers={"Authorization": f"Bearer {server.token.inference}"},
        )
        assert wrong.status == 400, "the inference key must not open the management API"
        assert server.request("GET", f"{server.metrics_url}/metrics", auth=False).status == 200

        # With the keys: register, ping, infer, describe and the status document.
        server.register(mar.name)
        server.wait_until_ready("empty_model", timeout=120)
        assert server.ping() == (200, {"status": "Healthy"})
        answer = server.infer("empty_model", b"hi", headers={"Content-Type": "text/plain"})
        assert answer.status == 200, answer.text
        assert answer.json()["ok"] is True
        doc = server.status_document("empty_model")
        assert doc["status"] == "ready"
        assert doc["requests"]["total"] == 1
        record = read_record(state, "empty_model")
        assert record is not None
        assert record["phase"] == "ready"


@pytest.mark.own_server
def test_probe_renews_the_management_key_and_never_the_inference_key(
    tmp_path: Path,
    build_mar: Callable[..., Path],
    serve_own: Callable[..., Any],
) -> None:
    """TorchServe 0.12 facts behind ``--renew-key``: keys expire after token_expiration_min
    (a float, in minutes); ``/token?type=management`` with the API key rewrites the file."""
    import subprocess
    import sys
    import time

    store, state = tmp_path / "store", tmp_path / "state"
    mar = build_mar("empty_model", store)
    with serve_own(
        store, state_dir=state, token_auth=True, config={"token_expiration_min": "0.1"}
    ) as server:
        server.register(mar.name)
        server.wait_until_ready("empty_model", timeout=120)
        key_file = server.workdir / "key_file.json"
        before = Tokens.from_key_file(key_file)
        assert before.management_expires_at is not None

        def probe(*args: str) -> subprocess.CompletedProcess[str]:
            command = [sys.executable, "-m", "ts_health_handler", *args]
            command += ["--key-file", str(key_file), "--state-dir", str(state)]
            command += ["--inference-url", server.inference_url]
            command += ["--management-url", server.management_url]
            return subprocess.run(command, capture_output=True, text=True, timeout=60)

        assert probe("ready", "empty_model").returncode == 0
        time.sleep(max(0.0, before.management_expires_at - time.time()) + 0.5)
        expired = probe("ready", "empty_model")
        assert expired.returncode == 2, expired.stdout + expired.stderr
        assert "key expired at" in expired.stderr
        assert "/token?type=management" in expired.stderr

        renewed = probe("ready", "empty_model", "--renew-key")
        assert renewed.returncode == 0, renewed.stdout + renewed.stderr
        after = Tokens.from_key_file(key_file)
        assert after.management != before.management
        assert after.inference == before.inference, "the inference key belongs to clients"
        assert after.api == before.api
        # TorchServe refuses the old management key at once.
        old = server.request(
            "GET",
            f"{server.management_url}/models",
            auth=False,
            headers={"Authorization": f"Bearer {before.management}"},
        )
        assert old.status == 400


@pytest.mark.own_server
def test_a_token_with_a_trailing_newline_reaches_a_token_server(
    tmp_path: Path, build_mar: Callable[..., Path], serve_own: Callable[..., Any]
) -> None:
    store, state = tmp_path / "store", tmp_path / "state"
    build_mar("empty_model", store)
    with serve_own(store, state_dir=state, token_auth=True) as server:
        assert server.token is not None
        key = server.token.inference
        # The usual shape of a Kubernetes secret file, or of `echo "$KEY" > file`.
        env = {
            **os.environ,
            "TS_HEALTH_TOKEN": key + "\n",
            "TS_HEALTH_INFERENCE_URL": server.inference_url,
            "TS_HEALTH_MANAGEMENT_URL": server.management_url,
            "TS_HEALTH_STATE_DIR": str(state),
        }
        env.pop("TS_HEALTH_KEY_FILE", None)
        done = subprocess.run(
            [str(SCRIPT), "ping"], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done
        # The management API refuses the inference key: a usage error that names no key.
        refused = subprocess.run(
            [str(SCRIPT), "status"], env=env, capture_output=True, text=True, timeout=60
        )
        assert refused.returncode == 2, refused
        assert key not in refused.stdout + refused.stderr
        assert "refused the token from $TS_HEALTH_TOKEN" in refused.stderr
