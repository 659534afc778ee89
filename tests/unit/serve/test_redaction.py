"""No answer of ``ts-health serve`` shows a token or a key, whatever TorchServe answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fake_torchserve import FakeTorchServe, running
from tests.support.serve_support import eventually, get, health, options, settings_for, snapshot
from tests.support.status_docs import status_doc
from ts_health_handler.serve import HealthApp, Request, View, answer

TOKEN = "tok-91c4e07d5ab2"
KEY = 'k"ey\\from-the-file'


@pytest.fixture
def fake() -> Iterator[FakeTorchServe]:
    with running() as server:
        server.on("/models?limit=100", (200, {"models": [{"modelName": "m"}]}))
        yield server


ECHO = f"GET /models/m HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\nHost: x".encode()


def test_a_torchserve_echoing_the_token_is_never_shown_by_serve(
    fake: FakeTorchServe, tmp_path: Path
) -> None:
    fake.on("/models/m", (502, ECHO))
    fake.on("/ping", (502, b"x" * 100 + ECHO))
    settings = settings_for(fake.url, state_dir=tmp_path, token=TOKEN)
    with HealthApp(settings, options(interval=0.05, stale_after=3.0)) as app:
        eventually(
            lambda: "m" in app.observer.snapshot.models and app.observer.snapshot.ping,
            what="a ping and a look",
        )
        bodies = {path: get(app.url, path).text for path in ("/status", "/", "/ready", "/live")}
        bodies["/metrics"] = get(app.url, "/metrics").text
    assert "<redacted>" in bodies["/status"]
    for path, body in bodies.items():
        assert TOKEN not in body, path
        assert TOKEN[:8] not in body, path  # nor a part of it, cut with the quote


def test_every_answer_redacts_the_secrets_of_its_view() -> None:
    # A token wherever TorchServe's answers put text: a model's name, its reason.
    name = f"m-{TOKEN}-{KEY}"
    document = status_doc("degraded", check={"status": "failed", "message": f"bad {KEY}"})
    healths = (health(name, status=document),)
    view = View(
        snapshot((name, healths)),
        settings_for(),
        options(),
        101.0,
        1_750_000_010.0,
        (TOKEN, KEY),
    )
    paths = ["/status", "/", "/metrics", "/ready", "/live", f"/v2/models/{name}/ready"]
    for path in paths:
        body = answer(Request("GET", path), view).body.decode("utf-8")
        for secret in (TOKEN, KEY, KEY.replace("\\", "\\\\").replace('"', '\\"')):
            assert secret not in body, (path, body[:300])
        assert "&quot;ey" not in body, path  # the key HTML-escaped on the page
    assert "<redacted>" in answer(Request("GET", "/status"), view).body.decode()
