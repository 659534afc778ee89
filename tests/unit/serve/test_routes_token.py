"""The bearer token of ``ts-health serve`` (--auth-token-file): the paths it guards, its parsing
as RFC 6750 says, the 401 answer to the letter, and the readiness and liveness answers that
leave out every reason without it (no sockets)."""

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
from ts_health_handler.monitor._observe import PingResult
from ts_health_handler.serve._routes import Answer


def test_the_token_guards_status_metrics_and_page_and_reasons() -> None:
    snap = snapshot(("m", (health("m", workers=("UNLOADING",)),)))
    opts = options(auth_token=TOKEN)
    for path in ("/status", "/metrics", "/"):
        status, body, headers = ask(snap, path, opts=opts)
        assert status == 401
        assert headers["WWW-Authenticate"] == 'Bearer realm="ts-health"'
        assert ask(snap, path, opts=opts, authorization="Bearer wrong")[0] == 401
        assert ask(snap, path, opts=opts, authorization=f"Bearer {TOKEN}")[0] == 200
    status, body, _ = ask(snap, "/ready", opts=opts)
    assert status == 503
    assert body == {
        "ready": False,
        "unready": [{"model": "m", "version": "1.0", "state": "initializing"}],
    }
    status, body, _ = ask(snap, "/ready", opts=opts, authorization=f"Bearer {TOKEN}")
    assert "reason" in body
    assert "reason" in body["unready"][0]
    status, body, _ = ask(snap, "/v2/models/m/ready", opts=opts)
    assert "reason" not in body
    assert body["state"] == "initializing"


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
