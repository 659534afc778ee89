"""What a look at TorchServe reports to machines (``monitor._report``): a model version's JSON,
its ``ok`` under the readiness policy, and the exit code and document of ``status --json``
(``ts-health serve`` answers ``/status`` with the same document)."""

from __future__ import annotations

import pytest

from tests.support.serve_support import health, settings_for
from ts_health_handler._lifecycle import ModelState, ReasonKind
from ts_health_handler.monitor._assess import ModelHealth
from ts_health_handler.monitor._exit import ExitCode
from ts_health_handler.monitor._observe import PingResult
from ts_health_handler.monitor._policy import ReadinessPolicy
from ts_health_handler.monitor._report import (
    health_json,
    model_exit_code,
    status_code,
    status_json,
    unreachable_document,
)

HEALTHY = PingResult(True, "Healthy")
UNREACHABLE = ModelHealth(
    "m", "?", ModelState.UNREACHABLE, "no answer", kind=ReasonKind.UNREACHABLE
)


def test_a_verdict_without_an_observation_has_only_its_words() -> None:
    assert health_json(UNREACHABLE) == {
        "model": "m",
        "version": "?",
        "default": True,
        "state": "unreachable",
        "ok": False,
        "reason": "no answer",
        "kind": "unreachable",
    }


def test_an_observed_verdict_carries_the_workers_queue_and_evidence() -> None:
    data = health_json(health("m", workers=("READY", "UNLOADING"), remaining=0, default=False))
    assert (data["state"], data["ok"], data["default"]) == ("saturated", False, False)
    assert data["workers"] == {"ready": 1, "total": 2, "min": 1, "max": 1}
    assert data["queue"] == {"pending": 100, "remaining_capacity": 0}
    assert data["status"]["status"] == "ready"
    assert (data["initialization"], data["previous_initialization"], data["heartbeats"]) == (
        None,
        None,
        [],
    )


@pytest.mark.parametrize(
    ("policy", "ok"),
    [
        (ReadinessPolicy(), False),
        (ReadinessPolicy(allow_degraded=True), False),
        (ReadinessPolicy(allow_saturated=True), True),
    ],
)
def test_ok_is_what_the_readiness_policy_admits(policy: ReadinessPolicy, ok: bool) -> None:
    assert health_json(health("m", remaining=0), policy)["ok"] is ok


def test_a_models_exit_code() -> None:
    plain, allowing = settings_for(), settings_for(allow_saturated=True)
    saturated = health("m", remaining=0)
    assert model_exit_code(health("m"), plain) is ExitCode.OK
    assert model_exit_code(saturated, plain) is ExitCode.NOT_READY
    assert model_exit_code(saturated, allowing) is ExitCode.OK
    assert model_exit_code(UNREACHABLE, allowing) is ExitCode.UNREACHABLE


@pytest.mark.parametrize(
    ("ping", "results", "complete", "code"),
    [
        (HEALTHY, [], True, ExitCode.OK),
        (HEALTHY, [], False, ExitCode.NOT_READY),
        (PingResult(False, "Unhealthy"), [], True, ExitCode.NOT_READY),
        (HEALTHY, ["ready", "saturated"], True, ExitCode.NOT_READY),
        (PingResult(error="bad", failure=ExitCode.BAD_ANSWER), ["saturated"], True, 4),
        (PingResult(error="refused", failure=ExitCode.UNREACHABLE), ["ready"], True, 3),
        (PingResult(error="bad", failure=ExitCode.BAD_ANSWER), ["unreachable"], True, 3),
    ],
    ids=[
        "ok",
        "incomplete",
        "ping-unhealthy",
        "worst-model",
        "bad-answer-over-not-ready",
        "unreachable-ping",
        "unreachable-model-over-a-worse-code",
    ],
)
def test_the_status_exit_code_is_unreachable_first_then_the_worst(
    ping: PingResult, results: list[str], complete: bool, code: int
) -> None:
    verdicts = {
        "ready": health("m"),
        "saturated": health("m", remaining=0),
        "unreachable": UNREACHABLE,
    }
    assert status_code(ping, [verdicts[w] for w in results], settings_for(), complete) == code


def test_the_status_document() -> None:
    settings = settings_for("http://inference:1", "http://management:2")
    document = status_json(settings, PingResult(False, "Unhealthy"), [health("m")])
    assert document == {
        "command": "status",
        "exit_code": ExitCode.NOT_READY,
        "server": {
            "inference_url": "http://inference:1",
            "management_url": "http://management:2",
            "ping": {"healthy": False, "status": "Unhealthy"},
            "ping_error": None,
        },
        "models": [health_json(health("m"))],
    }
    unasked = status_json(settings, PingResult(error="no /ping answer yet"), [])
    assert unasked["server"]["ping"] is None
    assert unasked["server"]["ping_error"] == "no /ping answer yet"


def test_the_document_when_the_models_cannot_be_listed() -> None:
    settings = settings_for("http://inference:1", "http://management:2")
    document = unreachable_document(settings, HEALTHY, "connection refused")
    assert document == {
        "command": "status",
        "exit_code": ExitCode.UNREACHABLE,
        "server": {
            "inference_url": "http://inference:1",
            "management_url": "http://management:2",
            "ping": {"status": "Healthy"},
            "ping_error": None,
            "management_error": "connection refused",
        },
        "models": [],
    }
    waiting = unreachable_document(settings, PingResult(), "not asked yet", ExitCode.NOT_READY)
    assert (waiting["exit_code"], waiting["server"]["ping"]) == (ExitCode.NOT_READY, None)
