"""The client's changes (register, unregister, scale workers, infer) against a fake TorchServe:
the requests sent, the answers given back, the errors raised. The test runner's helpers on
them: tests/unit/testing/test_torchserve.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.describes import entry_json
from tests.support.fake_torchserve import MODEL_NOT_FOUND, WORKERS_FAILED, FakeTorchServe, running
from ts_health_handler.torchserve._client import (
    Api,
    BadAnswer,
    NotRegistered,
    Refused,
    Rejected,
    TorchServeClient,
)


@pytest.fixture
def fake() -> Iterator[FakeTorchServe]:
    with running() as server:
        yield server


def client(fake: FakeTorchServe, token: str | None = None) -> TorchServeClient:
    return TorchServeClient(
        Api("inference API", fake.url, token), Api("management API", fake.url, token)
    )


def test_register_sends_the_query_and_gives_the_answer(fake: FakeTorchServe) -> None:
    path = "/models?url=m.mar&initial_workers=2&synchronous=false&batch_size=4&x=true"
    fake.on(path, (202, {"status": "accepted"}))
    answer = client(fake).register(
        "m.mar", initial_workers=2, synchronous=False, batch_size=4, x=True
    )
    assert (answer.status, answer.json()) == (202, {"status": "accepted"})
    assert fake.calls[-1][:2] == ("POST", path)


def test_an_error_answer_is_rejected_and_held(fake: FakeTorchServe) -> None:
    fake.on("/models?url=m.mar&initial_workers=1&synchronous=true", (500, WORKERS_FAILED))
    with pytest.raises(Rejected) as caught:
        client(fake).register("m.mar")
    assert caught.value.response is not None
    assert caught.value.response.status == 500
    message = str(caught.value)
    assert message.startswith(f"the management API at {fake.url} answered POST /models?url=")
    assert message.endswith("with 500 InternalServerException: Failed to start workers")


def test_unregister_and_scale_name_an_unknown_model(fake: FakeTorchServe) -> None:
    fake.on("/models/m/2.0", (404, MODEL_NOT_FOUND))
    with pytest.raises(NotRegistered, match=r"model 'm' version '2\.0' is not registered"):
        client(fake).unregister("m", "2.0")
    assert fake.calls[-1][:2] == ("DELETE", "/models/m/2.0")
    fake.on("/models/m?min_worker=0&synchronous=true", (404, MODEL_NOT_FOUND))
    with pytest.raises(NotRegistered) as caught:
        client(fake).scale_workers("m", 0)
    assert isinstance(caught.value, Rejected)
    assert caught.value.response is not None


def test_scale_workers_sends_both_bounds(fake: FakeTorchServe) -> None:
    path = "/models/a%20b/1.0?min_worker=1&max_worker=3&synchronous=false"
    fake.on(path, (202, {"status": "Processing worker updates..."}))
    answer = client(fake).scale_workers("a b", 1, 3, version="1.0", synchronous=False)
    assert answer.status == 202
    assert fake.calls[-1][:2] == ("PUT", path)


def test_infer_posts_the_body_with_the_headers(fake: FakeTorchServe) -> None:
    fake.on("/predictions/m/1.0", (200, {"ok": True}))
    answer = client(fake, "k").infer(
        "m", b"hi", version="1.0", headers={"Content-Type": "text/plain"}
    )
    assert answer.json() == {"ok": True}
    method, path, headers, body = fake.calls[-1]
    assert (method, path, body) == ("POST", "/predictions/m/1.0", b"hi")
    assert headers["Content-Type"] == "text/plain"
    assert headers["Authorization"] == "Bearer k"


def test_a_refused_token_is_refused_whatever_the_method(fake: FakeTorchServe) -> None:
    fake.required["/predictions"] = "Bearer right"
    with pytest.raises(Refused, match="refused the token from None for POST /predictions/m"):
        client(fake, "wrong").infer("m")


def test_describe_json_is_the_list_as_written(fake: FakeTorchServe) -> None:
    fake.on("/models/m?customized=true", (200, [{**entry_json("READY"), "extra": 1}]))
    assert client(fake).describe_json("m", customized=True) == [{**entry_json("READY"), "extra": 1}]
    fake.on("/models/n", (200, {"not": "a list"}))
    with pytest.raises(BadAnswer, match="expected a list of models"):
        client(fake).describe_json("n")
