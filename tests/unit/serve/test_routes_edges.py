"""``ts-health serve``'s answers to the letter: exact bodies, headers, error messages, the
bearer token's parsing, and the paths that are almost right (no sockets)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from tests.support.serve_support import health, options, reply, snapshot
from ts_health_handler.monitor._observe import PingResult
from ts_health_handler.serve import ModelSeen, Snapshot
from ts_health_handler.serve._metrics import CONTENT_TYPE
from ts_health_handler.serve._routes import Answer

TOKEN = "edge-token"
READY = ("m", (health("m"),))
PATHS = (
    "/live, /ready, /v2/health/live, /v2/health/ready, /v2/models/{name}/ready, "
    "/v2/models/{name}/versions/{version}/ready, /status, /metrics, /"
)
NO_SUCH_PATH = {"error": f"no such path; see {PATHS}"}


def body_of(got: Answer) -> Any:
    assert got.content_type == "application/json"
    return json.loads(got.body)


def test_a_json_answer_is_indented_by_two_and_ends_with_a_newline() -> None:
    got = reply(snapshot(READY), "/live")
    assert got == Answer(
        200,
        "application/json",
        b'{\n  "live": true,\n  "reason": "/ping answered Healthy"\n}\n',
    )


def test_a_json_answer_keeps_non_ascii_names_as_utf_8() -> None:
    snap = snapshot(("ünï", (health("ünï"),)))
    got = reply(snap, "/v2/models/%C3%BCn%C3%AF/ready")
    assert got.status == 200
    assert '"name": "ünï"'.encode() in got.body
    assert b"\\u" not in got.body


def test_the_401_answer_to_the_letter() -> None:
    got = reply(snapshot(READY), "/status", opts=options(auth_token=TOKEN))
    assert got == Answer(
        401,
        "application/json",
        b'{\n  "error": "this path needs the bearer token of --auth-token-file"\n}\n',
        (("WWW-Authenticate", 'Bearer realm="ts-health"'),),
    )


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        (f"Bearer {TOKEN}", 200),
        (f"bearer {TOKEN}", 200),
        (f"BEARER {TOKEN}", 200),
        (f"Bearer  {TOKEN} ", 200),
        (f"Bearer {TOKEN}x", 401),
        (f"Basic {TOKEN}", 401),
        (TOKEN, 401),
        (f"Bearer{TOKEN}", 401),
        ("Bearer", 401),
        ("", 401),
        (None, 401),
    ],
)
def test_the_bearer_token_is_parsed_as_rfc_6750_says(
    authorization: str | None, status: int
) -> None:
    opts = options(auth_token=TOKEN)
    got = reply(snapshot(READY), "/status", opts=opts, authorization=authorization)
    assert got.status == status
    assert (got.status == 401) == (got.headers != ())


def test_without_a_token_configured_every_request_is_authorized() -> None:
    for authorization in (None, "", "Basic x", "Bearer whatever"):
        got = reply(snapshot(READY), "/", authorization=authorization)
        assert (got.status, got.content_type, got.headers) == (200, "text/html; charset=utf-8", ())
        two = snapshot(READY, ("n", (health("n"),)))
        assert body_of(reply(two, "/ready", authorization=authorization)) == {
            "ready": True,
            "reason": "2 model versions ready",
            "unready": [],
        }


def test_the_content_types_of_metrics_and_page() -> None:
    metrics = reply(snapshot(READY), "/metrics")
    assert (metrics.status, metrics.content_type, metrics.headers) == (200, CONTENT_TYPE, ())
    assert metrics.body.startswith(b"# HELP ")
    page = reply(snapshot(READY), "/")
    assert (page.status, page.content_type) == (200, "text/html; charset=utf-8")
    assert page.body.lstrip().lower().startswith(b"<!doctype html>")


def test_readiness_without_the_token_leaves_out_every_reason() -> None:
    loading = health("m", "2.0", workers=("UNLOADING",), default=False)
    snap = snapshot(("m", (health("m"), loading)))
    opts = options(auth_token=TOKEN)
    got = reply(snap, "/v2/health/ready", opts=opts)
    assert (got.status, body_of(got)) == (
        503,
        {"ready": False, "unready": [{"model": "m", "version": "2.0", "state": "initializing"}]},
    )
    got = reply(snap, "/ready", opts=opts, authorization=f"Bearer {TOKEN}")
    assert (got.status, body_of(got)) == (
        503,
        {
            "ready": False,
            "reason": "1 of 2 model versions not ready",
            "unready": [
                {
                    "model": "m",
                    "version": "2.0",
                    "state": "initializing",
                    "reason": loading.reason,
                }
            ],
        },
    )
    assert [(p, reply(snap, p, opts=opts).status) for p in ("/live", "/v2/health/live")] == [
        ("/live", 200),
        ("/v2/health/live", 200),
    ]
    assert body_of(reply(snap, "/live", opts=opts)) == {"live": True}
    assert body_of(reply(snap, "/live", opts=opts, authorization=f"Bearer {TOKEN}")) == {
        "live": True,
        "reason": "/ping answered Healthy",
    }


def test_unlive_answers_503_with_and_without_reasons() -> None:
    snap = snapshot(READY, ping=PingResult(False, "Unhealthy"))
    got = reply(snap, "/v2/health/live", opts=options(auth_token=TOKEN))
    assert (got.status, body_of(got)) == (503, {"live": False})


def test_the_model_answer_to_the_letter() -> None:
    loading = health("m", "2.0", workers=("UNLOADING",), default=False)
    snap = snapshot(("m", (health("m"), loading)))
    got = reply(snap, "/v2/models/m/ready")
    assert (got.status, body_of(got)) == (
        200,
        {
            "name": "m",
            "ready": True,
            "version": "1.0",
            "state": "ready",
            "reason": health("m").reason,
        },
    )
    got = reply(snap, "/v2/models/m/versions/2.0/ready", opts=options(auth_token=TOKEN))
    assert (got.status, body_of(got)) == (
        503,
        {"name": "m", "ready": False, "version": "2.0", "state": "initializing"},
    )
    got = reply(snap, "/v2/models/m/versions/1.0/ready")
    assert (got.status, body_of(got)["version"]) == (200, "1.0")


@pytest.mark.parametrize(
    ("target", "error"),
    [
        ("/v2/models/ghost/ready", "model 'ghost' is not registered"),
        ("/v2/models/m/versions/9/ready", "model 'm' version '9' is not registered"),
        ("/v2/models/gh%27ost/ready", 'model "gh\'ost" is not registered'),
    ],
)
def test_an_unknown_model_is_404_with_its_name(target: str, error: str) -> None:
    got = reply(snapshot(READY), target)
    assert (got.status, body_of(got), got.headers) == (404, {"error": error}, ())


@pytest.mark.parametrize(
    "target",
    [
        "/v2/models//ready",
        "/v2/models//versions/1.0/ready",
        "/v2/models/m/versions//ready",
        "/v2/models/m/version/1.0/ready",
        "/v2/models/m/live",
        "/v2/models/m/versions/1.0/live",
        "/v2/models/m/ready/x",
        "/v2/models/m/versions/1.0/ready/x",
        "/v2/models/m/x/1.0/x/ready",
        "/v2/model/m/ready",
        "/v1/models/m/ready",
        "/v2/models/ready",
        "/models/m/ready",
        "/ready/",
        "/status/",
        "//ready",
        "/READY",
        "/nope",
    ],
)
def test_paths_that_are_almost_right_are_404_with_the_list_of_paths(target: str) -> None:
    snap = snapshot(READY, ("", (health(""),)))
    for method in ("GET", "POST"):
        got = reply(snap, target, method=method)
        assert (got.status, body_of(got), got.headers) == (404, NO_SUCH_PATH, ())


@pytest.mark.parametrize(
    ("target", "error"),
    [
        ("http://example.com/ready", "the request target must be a path starting with /"),
        ("*", "the request target must be a path starting with /"),
        ("", "the request target must be a path starting with /"),
        ("?/ready", "the request target must be a path starting with /"),
        ("/v2/models/%ff/ready", "the path is not valid UTF-8 once percent-decoded"),
        ("/v2/%C3/m", "the path is not valid UTF-8 once percent-decoded"),
    ],
)
def test_bad_targets_are_400_with_the_reason(target: str, error: str) -> None:
    got = reply(snapshot(READY), target)
    assert (got.status, body_of(got), got.headers) == (400, {"error": error}, ())


@pytest.mark.parametrize(
    "target", ["/ready", "/live", "/status", "/metrics", "/", "/v2/models/m/ready"]
)
def test_other_methods_are_405_with_allow(target: str) -> None:
    for method in ("POST", "PUT", "DELETE", "OPTIONS", "get", "head"):
        got = reply(snapshot(READY), target, method=method, opts=options(auth_token=TOKEN))
        assert got == Answer(
            405,
            "application/json",
            b'{\n  "error": "only GET and HEAD"\n}\n',
            (("Allow", "GET, HEAD"),),
        )


def test_head_is_answered_like_get() -> None:
    for target in ("/ready", "/live", "/status", "/v2/models/m/ready"):
        assert reply(snapshot(READY), target, method="HEAD") == reply(snapshot(READY), target)


def test_the_query_string_is_cut_at_the_first_question_mark() -> None:
    assert reply(snapshot(READY), "/ready?a=1?b=2").status == 200
    assert reply(snapshot(READY), "/v2/models/m/ready?x=/?").status == 200
    got = reply(snapshot(READY), "/status?", opts=options(auth_token=TOKEN))
    assert got.status == 401
    assert reply(snapshot(READY), "/nope?/ready").status == 404


def test_status_before_anything_is_known() -> None:
    got = reply(Snapshot(started=100.0), "/status")
    assert (got.status, body_of(got)) == (
        200,
        {
            "command": "status",
            "exit_code": 1,
            "server": {
                "inference_url": "http://127.0.0.1:1",
                "management_url": "http://127.0.0.1:1",
                "ping": None,
                "ping_error": "no /ping answer yet",
                "management_error": "no observation yet",
            },
            "models": [],
        },
    )


def test_status_when_the_models_cannot_be_listed_is_unreachable() -> None:
    snap = Snapshot(
        started=100.0, ping=PingResult(True, "Healthy"), names_error="cannot connect: refused"
    )
    got = reply(snap, "/status")
    assert (got.status, body_of(got)) == (
        200,
        {
            "command": "status",
            "exit_code": 3,
            "server": {
                "inference_url": "http://127.0.0.1:1",
                "management_url": "http://127.0.0.1:1",
                "ping": {"status": "Healthy"},
                "ping_error": None,
                "management_error": "cannot connect: refused",
            },
            "models": [],
        },
    )


def test_status_is_ok_only_when_every_listed_model_was_observed_without_error() -> None:
    ready = snapshot(READY, ("n", (health("n"),)))
    assert body_of(reply(ready, "/status"))["exit_code"] == 0
    unseen = dataclasses.replace(ready, models={"m": ready.models["m"]})
    assert body_of(reply(unseen, "/status"))["exit_code"] == 1
    failed = ModelSeen("n", (), 100.0, "token refused")
    broken = dataclasses.replace(ready, models={**ready.models, "n": failed})
    assert body_of(reply(broken, "/status"))["exit_code"] == 1
    first = dataclasses.replace(ready, models={"n": ready.models["n"]})
    assert body_of(reply(first, "/status"))["exit_code"] == 1
