"""``ts-health serve`` over real loopback sockets against the fake TorchServe: the observer's
freshness and bounds, the HTTP server's limits, the command line and SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.describes import describe
from tests.support.fake_torchserve import FakeTorchServe, running
from tests.support.serve_support import address, eventually, get, options, raw, settings_for
from ts_health_handler.serve import HealthApp
from ts_health_handler.serve._http_server import MAX_REQUEST_LINE, _Slots


@pytest.fixture
def fake() -> Iterator[FakeTorchServe]:
    with running() as server:
        server.on("/ping", (200, {"status": "Healthy"}))
        models = [{"modelName": n, "modelUrl": f"{n}.mar"} for n in ("m", "slow")]
        server.on("/models?limit=100", (200, {"models": models}))
        for name in ("m", "slow"):
            server.on(f"/models/{name}", (200, describe("READY", name=name)))
            server.on(f"/models/{name}/1.0?customized=true", (200, describe("READY", name=name)))
        yield server


@pytest.fixture
def app(fake: FakeTorchServe, tmp_path: Path) -> Iterator[HealthApp]:
    settings = settings_for(fake.url, state_dir=tmp_path, request_timeout="30")
    with HealthApp(settings, options(interval=0.2, stale_after=3.0)) as started:
        yield started


def test_a_hung_describe_blocks_neither_other_models_nor_answers(
    fake: FakeTorchServe, app: HealthApp
) -> None:
    eventually(lambda: get(app.url, "/ready").status == 200, what="ready")
    slow = describe("READY", name="slow")
    fake.on("/models/slow/all", (200, slow), delay=30)  # hangs until released
    # m stays fresh; slow goes stale after --stale-after, and answers never wait.
    body = eventually(
        lambda: (r := get(app.url, "/ready")).status == 503 and r.json(), what="slow stale"
    )
    assert body["unready"][0]["model"] == "slow"
    assert body["unready"][0]["reason"].startswith("observation stale (")
    assert get(app.url, "/v2/models/m/ready").status == 200
    assert get(app.url, "/live").status == 200


def test_torchserve_stopped_makes_live_and_ready_fail(fake: FakeTorchServe, app: HealthApp) -> None:
    eventually(lambda: get(app.url, "/ready").status == 200, what="ready")
    fake.replace({})  # every path now 404: the wrong server, as far as ts-health can tell
    fake.server.shutdown()
    fake.server.server_close()
    live = eventually(lambda: (r := get(app.url, "/live")).status == 503 and r.json(), what="live")
    assert live["reason"].startswith("/ping failed: cannot connect to")
    eventually(lambda: get(app.url, "/ready").status == 503, timeout=10, what="ready 503")


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /" + b"a" * MAX_REQUEST_LINE + b" HTTP/1.1\r\n\r\n", b"414"),
        (b"GET /ready HTTP/1.1\r\nX: " + b"b" * 70000 + b"\r\n\r\n", b"431"),
        (b"GET /ready HTTP/1.1\r\n" + b"X: y\r\n" * 120 + b"\r\n", b"431"),
        (b"GET /ready HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", b"413"),
        (b"POST /ready HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", b"413"),
        (b"nonsense\r\n\r\n", b"400"),
        (b"GET /ready HTTP/9.9\r\n\r\n", b"505"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", b"400"),
    ],
    ids=[
        "long-line",
        "long-header",
        "many-headers",
        "body",
        "chunked",
        "garbage",
        "version",
        "tls",
    ],
)
def test_oversized_or_malformed_requests_are_refused(
    app: HealthApp, request_bytes: bytes, status: bytes
) -> None:
    reply = raw(app.url, request_bytes)
    assert reply.split(b" ", 2)[1] == status, reply[:200]
    assert b"application/json" in reply.split(b"\r\n\r\n", 1)[0]
    assert get(app.url, "/live").status in (200, 503)  # still serving


def test_head_has_no_body(app: HealthApp) -> None:
    reply = raw(app.url, b"HEAD /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 ")
    assert body == b""


def test_idle_connections_beyond_the_limit_are_displaced_by_a_request(
    fake: FakeTorchServe, tmp_path: Path
) -> None:
    settings = settings_for(fake.url, state_dir=tmp_path)
    with HealthApp(settings, options()) as app:
        app.listener.slots = _Slots(2)  # a small limit for the test
        idle = [socket.create_connection(address(app.url), timeout=10) for _ in range(2)]
        try:
            eventually(lambda: len(app.listener.slots) == 2, 5, "both idle connections in")
            reply = get(app.url, "/nope")
            assert reply.status == 404
            assert idle[0].recv(1) == b""  # the oldest was shut down, without an answer
            assert app.listener.slots.displaced == 1
        finally:
            for sock in idle:
                sock.close()


def test_serve_stops_cleanly_on_sigterm(fake: FakeTorchServe, tmp_path: Path) -> None:
    env = {**os.environ, "TS_HEALTH_STATE_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "ts_health_handler", "serve", "--listen", "127.0.0.1:0"]
    command += ["--inference-url", fake.url, "--management-url", fake.url]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stderr is not None
        first = process.stderr.readline()
        assert first.startswith("ts-health serve: listening on http://127.0.0.1:")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        rest = process.stderr.read()
        assert rest == "ts-health serve: stopped (SIGTERM)\n"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_serve_lines_on_stderr_pass_the_redaction_of_the_other_commands(
    fake: FakeTorchServe, tmp_path: Path
) -> None:
    token, auth = "s3cret-ts-token", "s3cret-serve-token"
    (tmp_path / "auth").write_text(auth)
    env = {**os.environ, "TS_HEALTH_STATE_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "ts_health_handler", "serve", "--listen", "127.0.0.1:0"]
    command += ["--inference-url", fake.url, "--management-url", fake.url, "--token", token]
    command += ["--auth-token-file", str(tmp_path / "auth")]
    command += ["--model", f"{token}\x1b[2J", "--model", f"x{auth}"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stderr is not None
        first = process.stderr.readline()
        assert "observing <redacted>\\x1b[2J, x<redacted> of the TorchServe" in first, first
        assert token not in first
        assert auth not in first
        assert "\x1b" not in first
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert process.stderr.read() == "ts-health serve: stopped (SIGTERM)\n"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_usage_errors_exit_2(fake: FakeTorchServe, tmp_path: Path) -> None:
    base = [sys.executable, "-m", "ts_health_handler", "serve"]
    for extra, message in (
        (["--listen", "nope"], "invalid --listen 'nope': expected HOST:PORT"),
        (["--interval", "5", "--stale-after", "4"], "--stale-after 4 must be longer"),
        (["--auth-token-file", str(tmp_path / "missing")], "cannot read --auth-token-file"),
    ):
        done = subprocess.run(base + extra, capture_output=True, text=True, timeout=30)
        assert done.returncode == 2, done.stderr
        assert message in done.stderr
        assert "Traceback" not in done.stderr


def test_the_probe_never_imports_the_server() -> None:
    code = (
        "import sys; from ts_health_handler.cli import main;"
        "assert 'prometheus_client' not in sys.modules;"
        "assert 'ts_health_handler.serve' not in sys.modules;"
        "assert 'http.server' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
