"""``ts-health serve``'s answers as pure functions of a hand-made snapshot (no sockets): what
readiness, liveness, /status, /metrics and the page say, and the bytes of an answer. The
bearer token: tests/unit/serve/test_routes_token.py; the paths and methods answered:
tests/unit/serve/test_routes_paths.py."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.describes import entry
from tests.support.serve_support import (
    READY,
    TOKEN,
    ask,
    body_of,
    health,
    options,
    reply,
    settings_for,
    snapshot,
)
from tests.support.status_docs import status_doc
from ts_health_handler._lifecycle import ModelState
from ts_health_handler.monitor._assess import ModelHealth, Observation, assess
from ts_health_handler.monitor._observe import PingResult
from ts_health_handler.monitor._report import status_json
from ts_health_handler.probe._render import status_table
from ts_health_handler.record import ErrorInfo, InitRecord
from ts_health_handler.serve import ModelSeen, Snapshot
from ts_health_handler.serve._metrics import CONTENT_TYPE
from ts_health_handler.serve._routes import Answer

FAILING_STATUS = status_doc(
    "failed", initialization={"error": {"type": "E", "message": "x", "at": "t", "attempt": 1}}
)


def test_ready_when_every_version_is_ready() -> None:
    snap = snapshot(READY, ("n", (health("n"), health("n", "2.0", default=False))))
    for path in ("/ready", "/v2/health/ready"):
        status, body, _ = ask(snap, path)
        assert status == 200
        assert body == {"ready": True, "reason": "3 model versions ready", "unready": []}


def test_one_unready_version_makes_the_server_unready_with_its_reason() -> None:
    loading = health("n", "2.0", workers=("UNLOADING",), default=False)
    snap = snapshot(READY, ("n", (health("n"), loading)))
    status, body, _ = ask(snap, "/ready")
    assert status == 503
    assert body["ready"] is False
    assert body["unready"] == [
        {"model": "n", "version": "2.0", "state": "initializing", "reason": loading.reason}
    ]


def test_model_ready_paths_follow_the_open_inference_protocol() -> None:
    loading = health("m", "2.0", workers=("UNLOADING",), default=False)
    snap = snapshot(("m", (health("m"), loading)))
    status, body, _ = ask(snap, "/v2/models/m/ready")
    assert (status, body["name"], body["ready"], body["version"]) == (200, "m", True, "1.0")
    status, body, _ = ask(snap, "/v2/models/m/versions/2.0/ready")
    assert (status, body["ready"], body["state"]) == (503, False, "initializing")
    assert body["reason"] == loading.reason
    status, body, _ = ask(snap, "/v2/models/m/versions/3.0/ready")
    assert status == 404
    assert body == {"error": "model 'm' version '3.0' is not registered"}
    status, body, _ = ask(snap, "/v2/models/other/ready")
    assert status == 404
    assert body == {"error": "model 'other' is not registered"}


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
    ("model", "allow_degraded", "expected"),
    [
        (health("m", status=status_doc("degraded")), False, 503),
        (health("m", status=status_doc("degraded")), True, 200),
        (health("m", remaining=0), False, 503),
        (health("m", remaining=0), True, 503),
        (health("m", status=FAILING_STATUS), True, 503),
    ],
    ids=["degraded", "degraded-allowed", "saturated", "saturated-never", "held-failure"],
)
def test_readiness_policy(model: Any, allow_degraded: bool, expected: int) -> None:
    snap = snapshot(("m", (model,)))
    assert ask(snap, "/ready", allow_degraded=allow_degraded)[0] == expected
    assert ask(snap, "/v2/models/m/ready", allow_degraded=allow_degraded)[0] == expected


def test_a_stale_observation_makes_every_readiness_answer_503() -> None:
    snap = snapshot(READY, at=100.0)
    late = 100.0 + 10.5
    for path in ("/ready", "/v2/health/ready", "/v2/models/m/ready"):
        status, body, _ = ask(snap, path, now=late)
        assert status == 503, path
        assert "observation stale (10 s)" in json.dumps(body)
    status, body, _ = ask(snap, "/live", now=late)
    assert (status, body["reason"]) == (503, "observation stale (10 s) (/ping)")


def test_one_stale_model_is_stale_alone() -> None:
    snap = snapshot(READY, ("slow", (health("slow"),)))
    models = dict(snap.models)
    models["slow"] = type(models["slow"])("slow", models["slow"].healths, 80.0)
    snap = Snapshot(**{**snap.__dict__, "models": models})
    status, body, _ = ask(snap, "/ready", now=95.0)
    assert status == 503
    assert body["unready"] == [
        {"model": "slow", "version": "1.0", "state": "ready", "reason": "observation stale (15 s)"}
    ]
    assert ask(snap, "/v2/models/m/ready", now=95.0)[0] == 200


def test_before_the_first_observation_nothing_is_ready_or_live() -> None:
    snap = Snapshot(started=100.0)
    status, body, _ = ask(snap, "/ready", now=100.5)
    assert status == 503
    assert body["reason"] == "cannot list the models: no observation yet (0 s)"
    assert ask(snap, "/live", now=100.5)[0] == 503
    assert ask(snap, "/v2/models/m/ready", now=100.5)[0] == 503


def test_no_models_registered_is_not_ready() -> None:
    status, body, _ = ask(snapshot(), "/ready")
    assert (status, body["reason"]) == (503, "no models registered")


def test_named_models_that_are_not_registered() -> None:
    snap = snapshot(READY)
    opts = options(models=("m", "ghost"))
    snap = Snapshot(**{**snap.__dict__, "names": ("m", "ghost")})
    status, body, _ = ask(snap, "/ready", opts=opts)
    assert status == 503
    assert body["unready"] == [
        {"model": "ghost", "version": None, "state": "unknown", "reason": "not observed yet"}
    ]


@pytest.mark.parametrize(
    ("ping", "live", "reason"),
    [
        (PingResult(True, "Healthy"), 200, "/ping answered Healthy"),
        (PingResult(False, "Unhealthy"), 503, "/ping answered Unhealthy"),
        (PingResult(error="cannot connect: refused"), 503, "/ping failed: cannot connect: refused"),
    ],
)
def test_liveness_is_torchserves_ping(ping: PingResult, live: int, reason: str) -> None:
    snap = snapshot(READY, ping=ping)
    for path in ("/live", "/v2/health/live"):
        status, body, _ = ask(snap, path)
        assert (status, body) == (live, {"live": live == 200, "reason": reason})


def test_status_is_the_document_of_ts_health_status_json() -> None:
    model = health("m")
    snap = snapshot(("m", (model,)))
    status, body, _ = ask(snap, "/status")
    assert status == 200
    expected = status_json(settings_for(), PingResult(True, "Healthy"), [model])
    assert body == json.loads(json.dumps(expected))


def test_metrics_parse_and_carry_states_and_reasons() -> None:
    failing = health("f", workers=("UNLOADING",))
    snap = snapshot(READY, ("f", (failing,)))
    status, body, _ = ask(snap, "/metrics")
    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    states = {
        (s.labels["model"], s.labels["state"]): s.value
        for s in families["ts_health_model_state"].samples
    }
    assert states[("m", "ready")] == 1
    assert states[("m", "failing")] == 0
    assert states[("f", "initializing")] == 1
    assert sum(v for (model, _), v in states.items() if model == "f") == 1
    reasons = families["ts_health_model_reason"].samples
    assert {(s.labels["model"], s.labels["state"], s.labels["kind"]) for s in reasons} == {
        ("f", "initializing", "loading"),
        ("m", "ready", "ok"),
    }
    ready = {s.labels["model"]: s.value for s in families["ts_health_model_ready"].samples}
    assert ready == {"m": 1.0, "f": 0.0}
    ages = families["ts_health_model_observation_age_seconds"].samples
    assert {s.value for s in ages} == {1.0}
    for name in (
        "ts_health_model_ready_workers",
        "ts_health_model_init_consecutive_failures",
        "ts_health_model_state_age_seconds",
        "ts_health_torchserve_up",
        "ts_health_observations",
    ):
        assert name in families


def test_page_escapes_and_shows_states_and_reasons() -> None:
    bad = health("<b>evil</b>", workers=("UNLOADING",))
    snap = snapshot(READY, ("<b>evil</b>", (bad,)))
    status, body, _ = ask(snap, "/")
    page = body.decode()
    assert status == 200
    assert "<b>evil</b>" not in page
    assert "&lt;b&gt;evil&lt;/b&gt;" in page
    assert "initializing" in page
    assert "ready" in page
    assert "<script" not in page
    assert "http://" not in page.split("<body>")[0]


def test_allow_saturated_counts_a_full_queue_as_ready_as_ts_health_ready_does() -> None:
    # The production Deployment's readiness policy: a busy pod still serves.
    snap = snapshot(("m", (health("m", remaining=0),)))
    assert ask(snap, "/ready")[0] == 503
    assert ask(snap, "/ready", allow_saturated=True)[0] == 200
    assert ask(snap, "/v2/models/m/ready", allow_saturated=True)[0] == 200
    failing = snapshot(("m", (health("m", status=FAILING_STATUS, remaining=0),)))
    assert ask(failing, "/ready", allow_saturated=True)[0] == 503  # never a held failure


def test_the_page_shows_the_head_and_tail_of_a_long_error_on_one_line() -> None:
    message = "weights missing:\n" + "x" * 400 + "\nin shard-b"
    record = InitRecord.started(
        None, model_name="m", model_version="1.0", now=1.0, worker_pid=11, server="1-1"
    ).failed(ErrorInfo("KeyError", message, "t", 1), now=2.0, duration_s=1.0, worker_pid=11)
    seen = Observation(describe=entry("UNLOADING"), record=record, now=3.0)
    _, body, _ = ask(snapshot(("m", (assess("m", "1.0", seen),))), "/")
    page = body.decode()
    cut = "weights missing: " + "x" * 81 + "..." + "x" * 88 + " in shard-b"
    assert f"attempt 1 failed: KeyError: {cut}</li>" in page


def test_the_workers_and_queue_cells_of_the_page_and_the_table() -> None:
    two = health("m", workers=("READY", "UNLOADING"), remaining=97)
    assert two.cells() == ("1/2", "0 pending, 97 free")
    assert two.cells(lambda q: f"{q.pending}/{q.remaining + q.pending}") == ("1/2", "0/97")
    assert ModelHealth("m", "1.0", ModelState.UNREACHABLE, "no answer").cells() == ("-", "-")
    _, body, _ = ask(snapshot(("m", (two,))), "/")
    assert "<td>1/2</td><td>0 pending, 97 free</td>" in body.decode()
    table = status_table("h", [two]).splitlines()
    assert table[2].split()[3:5] == ["1/2", "0/97"]


def test_status_before_the_first_look_says_nothing_is_ok() -> None:
    # --model m: the model list is known from the start, nothing else is.
    opts = options(models=("m",))
    unseen = Snapshot(started=100.0, names=("m",))
    assert ask(unseen, "/live", opts=opts, now=100.5)[0] == 503
    status, body, _ = ask(unseen, "/status", opts=opts, now=100.5)
    assert status == 200
    assert body["exit_code"] == 1
    assert body["server"]["ping"] is None
    assert body["server"]["ping_error"] == "no /ping answer yet"
    assert body["models"] == []
    # /ping answered, the model not observed yet: still not ok.
    pinged = dataclasses.replace(unseen, ping=PingResult(True, "Healthy"), ping_at=100.2)
    assert ask(pinged, "/live", opts=opts, now=100.5)[0] == 200
    assert ask(pinged, "/status", opts=opts, now=100.5)[1]["exit_code"] == 1
    # Without --model, nothing listed yet: not ok, and not called unreachable either.
    status, body, _ = ask(Snapshot(started=100.0), "/status", now=100.5)
    assert (body["exit_code"], body["server"]["management_error"]) == (1, "no observation yet")
    # A watched model whose observation failed is not ok either.
    ghost = ModelSeen("ghost", (), 100.0, "model 'ghost' is not registered", registered=False)
    failed = dataclasses.replace(snapshot(READY), names=("m", "ghost"))
    failed = dataclasses.replace(failed, models={**failed.models, "ghost": ghost})
    assert ask(failed, "/status")[1]["exit_code"] == 1
    # Once everything is observed and ready, ok.
    assert ask(snapshot(READY), "/status")[1]["exit_code"] == 0


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


# -- the bytes of an answer ----------------------------------------------------------------


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


def test_the_content_types_of_metrics_and_page() -> None:
    metrics = reply(snapshot(READY), "/metrics")
    assert (metrics.status, metrics.content_type, metrics.headers) == (200, CONTENT_TYPE, ())
    assert metrics.body.startswith(b"# HELP ")
    page = reply(snapshot(READY), "/")
    assert (page.status, page.content_type) == (200, "text/html; charset=utf-8")
    assert page.body.lstrip().lower().startswith(b"<!doctype html>")
