"""Shared fakes for the core unit tests: a settable clock and a recording sleep.

The ``health_state_dir`` and ``ts_context`` fixtures come from the package's own pytest plugin
(``pytest11`` entry point), so using them here also checks that the plugin is registered.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ts_health_handler import HealthMixin

#: Without torchserve (the ``ts`` package) the tests that build TorchServe's own context are
#: skipped, with this reason, rather than failed: the standard-library half stays testable.
NEEDS_TS = "needs torchserve (the ts package): pip install torchserve==0.12.0"
TS_MISSING = importlib.util.find_spec("ts") is None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    error = call.excinfo.value if call.excinfo is not None else None
    missing = getattr(error, "name", None) or ""
    if (
        TS_MISSING
        and report.failed
        and isinstance(error, ModuleNotFoundError)
        and missing.split(".")[0] in ("ts", "torch")
    ):
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {NEEDS_TS}")


#: 2025-06-15T15:06:40.000Z
EPOCH = 1_750_000_000.0


class FakeClock:
    """Stands in for ``time.time``: only moves when told to."""

    def __init__(self, start: float = EPOCH) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeSleep:
    """Stands in for ``time.sleep``: records the call and advances the fake clock."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.clock.advance(seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sleep(clock: FakeClock) -> FakeSleep:
    return FakeSleep(clock)


@pytest.fixture
def fake_time(clock: FakeClock, sleep: FakeSleep) -> Callable[[Any], Any]:
    """Install the fake clock and sleep on a handler instance (before its first use)."""

    def install(handler: Any) -> Any:
        handler.health_clock = clock
        handler.health_sleep = sleep
        return handler

    return install


def _real_sleep_forbidden(seconds: float) -> None:
    raise AssertionError(f"a unit test reached the real health_sleep({seconds!r})")


@pytest.fixture
def no_real_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test in which the mixin would really sleep (a fake was not installed)."""
    monkeypatch.setattr(HealthMixin, "health_sleep", staticmethod(_real_sleep_forbidden))
