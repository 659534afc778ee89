"""Inside TorchServe, the first request after a beat that showed the worker idle is on disk
before the handler's code runs: a process killed at once by its request is seen in it."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.unit.handler.mixin_model import Make, Model
from ts_health_handler.handler import _tracker as tracker_module
from ts_health_handler.handler._identity import Identity
from ts_health_handler.record._beat import Beat, read_beat


class Watching(Model):
    """Reads its own heartbeat file while it handles a request."""

    def handle(self, data: Any, context: Any) -> Any:
        serving = self._ts_health._serving
        self.seen: list[Beat | None] = [
            *getattr(self, "seen", []),
            read_beat(serving.watchdog.path),
        ]
        return super().handle(data, context)


@pytest.fixture
def beating(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process is worker 9000 of a TorchServe: READY workers beat."""
    monkeypatch.setattr(
        tracker_module, "current_identity", lambda: Identity("100-5", "9000", os.getpid())
    )


#: The longest interval: the watchdog thread (real time) writes nothing while a test runs.
QUIET: dict[str, Any] = {"heartbeat_interval_s": 60}


@pytest.mark.parametrize("faults", [None, {"inference_delay_s": 0.5}])
def test_the_beat_shows_the_request_before_the_handler_runs(
    make: Make, beating: None, faults: Any
) -> None:
    handler, context = make(Watching, {**QUIET, "faults": faults or {}})
    handler.initialize(context)
    tracker = handler._ts_health
    watchdog = tracker._serving.watchdog
    try:
        assert tracker.requests.gated  # the first beat showed the worker idle
        handler.handle([{"body": "a"}], context)
        [seen] = handler.seen
        assert seen is not None
        assert seen.in_flight_since == tracker.requests.last_started
        assert seen.requests == 1
        # That beat showed a request: the next requests write nothing (faults still gate).
        writes = watchdog.writes
        handler.handle([{"body": "b"}], context)
        handler.handle([{"body": "c"}], context)
        assert watchdog.writes == writes
        assert tracker.requests.gated is (faults is not None)
        assert handler.seen[-1] == seen
    finally:
        watchdog.stop()


def test_a_beat_that_shows_the_worker_idle_gates_the_next_request(
    make: Make, beating: None
) -> None:
    handler, context = make(Watching, QUIET)
    handler.initialize(context)
    tracker = handler._ts_health
    watchdog = tracker._serving.watchdog
    try:
        handler.handle([{"body": "a"}], context)
        assert not tracker.requests.gated
        watchdog.beat_now()  # the interval's beat, between requests: idle
        assert tracker.requests.gated
        handler.handle([{"body": "b"}], context)
        latest = handler.seen[-1]
        assert latest is not None
        assert (latest.requests, latest.in_flight_since) == (2, tracker.requests.last_started)
    finally:
        watchdog.stop()
