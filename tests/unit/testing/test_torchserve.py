"""The test runner's ``TorchServe`` (``testing._torchserve``) against a fake TorchServe: its
helpers keep the answers and raise ServerError with the log's tail, and each API gets its key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.describes import describe
from tests.support.fake_torchserve import MODEL_NOT_FOUND, WORKERS_FAILED, FakeTorchServe, running
from ts_health_handler.testing import ServerError, Tokens, TorchServe


@pytest.fixture
def fake() -> Iterator[FakeTorchServe]:
    with running() as server:
        yield server


def server(fake: FakeTorchServe, tmp_path: Path, token: Tokens | None = None) -> TorchServe:
    return TorchServe(fake.url, fake.url, fake.url, tmp_path, tmp_path, pid=0, token=token)


def test_the_runner_helpers_keep_their_answers_and_errors(
    fake: FakeTorchServe, tmp_path: Path
) -> None:
    ts = server(fake, tmp_path)
    (tmp_path / "ts_log.log").write_text("the log line\n", encoding="utf-8")
    fake.on("/models?url=m.mar&initial_workers=1&synchronous=true", (500, WORKERS_FAILED))
    assert ts.register("m.mar", check=False).status == 500
    with pytest.raises(ServerError) as caught:
        ts.register("m.mar")
    assert str(caught.value).startswith(
        "registering m.mar failed: HTTP 500 "
        '{"code": 500, "type": "InternalServerException", "message": "Failed to start workers"}'
        "\n--- ts_log.log (tail) ---\nthe log line"
    )
    fake.on("/models/m", (404, MODEL_NOT_FOUND))
    assert ts.unregister("m", check=False).status == 404
    with pytest.raises(ServerError, match="unregistering m failed: HTTP 404"):
        ts.unregister("m")
    fake.on("/predictions/m", (503, {"code": 503, "type": "ServiceUnavailableException"}))
    assert ts.infer("m", "x").status == 503
    fake.on("/models/m?min_worker=2&max_worker=2&synchronous=true", (200, {"status": "ok"}))
    assert ts.scale_workers("m", 2, 2).status == 200
    fake.on("/models/m/1.0", (200, describe("READY")))
    assert ts.describe("m", version="1.0") == describe("READY")
    assert ts.worker_statuses("m", version="1.0") == ["READY"]


def test_the_runner_sends_each_api_its_key(fake: FakeTorchServe, tmp_path: Path) -> None:
    keys = Tokens(inference="ik", management="mk")
    inference, management, metrics = (f"http://127.0.0.1:{port}" for port in (1, 2, 3))
    ts = TorchServe(inference, management, metrics, tmp_path, tmp_path, pid=0, token=keys)
    assert ts.auth_headers(f"{inference}/ping") == {"Authorization": "Bearer ik"}
    assert ts.auth_headers(f"{management}/models") == {"Authorization": "Bearer mk"}
    assert ts.auth_headers(f"{metrics}/metrics") == {}
    assert ts.client.inference.token == "ik"
    assert ts.client.management.token == "mk"
    local = server(fake, tmp_path, keys)
    fake.on("/models", (200, {"models": []}))
    local.request("GET", f"{fake.url}/models")
    local.request("GET", f"{fake.url}/models", auth=False)
    local.request("GET", f"{fake.url}/models", auth=False, headers={"Authorization": "Bearer y"})
    assert [token for _, token in fake.requests] == ["Bearer mk", None, "Bearer y"]
