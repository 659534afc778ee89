"""``with_health``: a module-level function handler gets the record, the document and the
request counts of a class handler."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip(
    "ts", reason="needs torchserve (the ts package): pip install torchserve==0.12.0"
)

from ts_health_handler import with_health
from ts_health_handler.testing import set_requests


def echo(data: Any, context: Any) -> Any:
    if data is None:  # TorchServe's initialize call
        return None
    if any(item.get("body") == "fail" for item in data):
        raise ValueError("bad row")
    return [item.get("body") for item in data]


def test_the_initialize_call_then_requests_then_describe(ts_context: Any) -> None:
    handle = with_health(echo)
    assert handle.__name__ == "echo"
    context = ts_context("fn")
    assert handle(None, context) is None  # as ts/model_loader.py calls it, once
    set_requests(context, [{}, {}])
    assert handle([{"body": "a"}, {"body": "b"}], context) == ["a", "b"]
    set_requests(context, [{}])
    with pytest.raises(ValueError, match="bad row"):
        handle([{"body": "fail"}], context)
    set_requests(context, [{"describe": "True"}])
    [document] = handle([{}], context)
    assert document["status"] == "ready"
    assert document["initialization"]["phase"] == "ready"
    assert (document["requests"]["total"], document["requests"]["failed"]) == (3, 1)
    assert handle.health.health_status()["check"]["status"] == "not_configured"


def test_a_failing_initialize_call_is_recorded(ts_context: Any) -> None:
    def broken(data: Any, context: Any) -> Any:
        if data is None:
            raise OSError("weights missing")
        return data

    handle = with_health(broken)
    with pytest.raises(Exception, match="weights missing"):
        handle(None, ts_context("fn"))
    document = handle.health.health_status()
    assert document["status"] == "failed"
    assert document["initialization"]["error"]["type"] == "OSError"


def test_a_health_check_is_given_by_keyword(ts_context: Any) -> None:
    handle = with_health(health_check=lambda: {"healthy": False, "why": "no GPU"})(echo)
    handle(None, ts_context("fn"))
    document = handle.health.health_status()
    assert (document["status"], document["check"]["result"]["why"]) == ("degraded", "no GPU")


def test_what_cannot_be_a_function_handler_is_refused() -> None:
    async def generate(data: Any, context: Any) -> Any:
        return data

    with pytest.raises(TypeError, match=r"generate is an async def; TorchServe 0.12 calls"):
        with_health(generate)
    with pytest.raises(TypeError, match=r"with_health: 3 is not callable"):
        with_health(3)  # type: ignore[arg-type]
