"""Which paths and methods ``ts-health serve`` answers: the model paths URL-encoded, the paths
that are almost right (404 with the list of paths, never a model's 404), bad targets (400),
other methods (405 with Allow), HEAD as GET, the query string cut at the first ``?`` (no
sockets)."""

from __future__ import annotations

import pytest

from tests.support.serve_support import (
    READY,
    TOKEN,
    ask,
    body_of,
    health,
    options,
    reply,
    snapshot,
)
from ts_health_handler.serve._routes import Answer

PATHS = (
    "/live, /ready, /v2/health/live, /v2/health/ready, /v2/models/{name}/ready, "
    "/v2/models/{name}/versions/{version}/ready, /status, /metrics, /"
)
NO_SUCH_PATH = {"error": f"no such path; see {PATHS}"}


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/ready", 405),
        ("DELETE", "/v2/models/m/ready", 405),
        ("PUT", "/metrics", 405),
        ("GET", "/nope", 404),
        ("POST", "/nope", 404),
        ("GET", "/ready/", 404),
        ("GET", "/v2/models//ready", 404),
        ("GET", "/v2/models/m/versions//ready", 404),
        ("GET", "/v2/models/m/version/1.0/ready", 404),
        ("GET", "/v2/models/%ff%fe/ready", 400),
        ("GET", "http://example.com/ready", 400),
        ("HEAD", "/ready", 200),
    ],
)
def test_bad_paths_and_methods(method: str, path: str, status: int) -> None:
    got, body, headers = ask(snapshot(READY), path, method=method)
    assert got == status
    if status != 200:
        assert isinstance(body["error"], str)
    if status == 405:
        assert headers["Allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("a/b", "/v2/models/a%2Fb/ready"),
        ("with space", "/v2/models/with%20space/ready"),
        ("ünï", "/v2/models/%C3%BCn%C3%AF/ready"),
        ("q?x", "/v2/models/q%3Fx/ready"),
    ],
)
def test_odd_model_names_url_encoded(name: str, path: str) -> None:
    snap = snapshot((name, (health(name),)))
    status, body, _ = ask(snap, path)
    assert (status, body["name"]) == (200, name)


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


def test_query_strings_are_ignored() -> None:
    assert ask(snapshot(READY), "/ready?verbose=1")[0] == 200


def test_the_query_string_is_cut_at_the_first_question_mark() -> None:
    assert reply(snapshot(READY), "/ready?a=1?b=2").status == 200
    assert reply(snapshot(READY), "/v2/models/m/ready?x=/?").status == 200
    got = reply(snapshot(READY), "/status?", opts=options(auth_token=TOKEN))
    assert got.status == 401
    assert reply(snapshot(READY), "/nope?/ready").status == 404
