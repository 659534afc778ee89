"""The status document returned by ``describe_handle()`` and the user check that feeds it.

Standard library only. The document's schema ships as ``schema/status.v1.json``; every field is
documented in ``docs/status.md``.
"""

from __future__ import annotations

import json
import platform
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from typing import Any, Final

from ._states import CheckStatus, HealthStatus
from ._version import __version__

__all__ = ["CheckResult", "CheckRunner", "CheckStatus", "HealthStatus", "library_versions"]

STATUS_SCHEMA_VERSION: Final = 1
#: Longest JSON text of a user check result kept in the status.
RESULT_LIMIT: Final = 4000


@dataclass(frozen=True)
class CheckResult:
    """One run of ``health_check()``."""

    status: CheckStatus
    result: Any = None
    error: str | None = None
    duration_s: float | None = None

    @property
    def healthy(self) -> bool:
        return self.status in (CheckStatus.OK, CheckStatus.NOT_CONFIGURED)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "result": self.result,
            "error": self.error,
            "duration_s": self.duration_s,
        }


def _json_safe(value: Any) -> Any:
    """``value`` as plain JSON, or its bounded ``repr`` when it is not serialisable."""
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return repr(value)[:RESULT_LIMIT]
    if len(text) > RESULT_LIMIT:
        return text[:RESULT_LIMIT]
    return value


def interpret(returned: Any, duration_s: float) -> CheckResult:
    """Turn what ``health_check()`` returned into a :class:`CheckResult`.

    ``True`` is ok and ``False`` failed; a dict is ok unless it holds ``"healthy": false``;
    anything else is an error, since a check that cannot say yes or no is not a pass.
    """
    if returned is True:
        return CheckResult(CheckStatus.OK, True, None, duration_s)
    if returned is False:
        return CheckResult(CheckStatus.FAILED, False, "health_check() returned False", duration_s)
    if isinstance(returned, dict):
        safe = _json_safe(returned)
        if returned.get("healthy", True) is False:
            return CheckResult(
                CheckStatus.FAILED, safe, "health_check() reported healthy: false", duration_s
            )
        return CheckResult(CheckStatus.OK, safe, None, duration_s)
    return CheckResult(
        CheckStatus.ERROR,
        _json_safe(returned),
        f"health_check() returned {type(returned).__name__}; expected True, False or a dict",
        duration_s,
    )


class CheckRunner:
    """Runs a check in a daemon thread and waits at most ``timeout_s`` for it.

    TorchServe gives describe no timeout and queues it on the worker, so a hanging user
    check must not hang describe. A check still running from an earlier call is not started
    again: the answer is a timeout naming how long it has run, so threads never pile up.
    """

    def __init__(self, check: Callable[[], Any], clock: Callable[[], float]) -> None:
        self._check: Final = check
        self._clock: Final = clock
        self._lock = threading.Lock()
        self._running: threading.Thread | None = None
        self._started = 0.0
        self._outcome: CheckResult | None = None

    def run(self, timeout_s: float) -> CheckResult:
        with self._lock:
            if self._running is not None and self._running.is_alive():
                waited = self._clock() - self._started
                return CheckResult(
                    CheckStatus.TIMEOUT,
                    None,
                    f"health_check() still running after {waited:.1f} s (limit {timeout_s:g} s)",
                    round(waited, 6),
                )
            self._outcome = None
            self._started = self._clock()
            thread = threading.Thread(target=self._call, name="ts-health-check", daemon=True)
            self._running = thread
            thread.start()
        thread.join(timeout_s)
        outcome = self._outcome
        if thread.is_alive() or outcome is None:
            return CheckResult(
                CheckStatus.TIMEOUT,
                None,
                f"health_check() did not answer within {timeout_s:g} s",
                round(timeout_s, 6),
            )
        return outcome

    def _call(self) -> None:
        started = self._clock()
        # The user's check may raise anything, SystemExit included (uncaught, it would end the
        # thread with no outcome, misreported as a timeout): report it, never crash.
        try:
            returned = self._check()
        except BaseException as exc:
            duration = round(self._clock() - started, 6)
            # check.error is documented as one line: join a multi-line message.
            error = " ".join(f"{type(exc).__name__}: {exc}".splitlines())[:RESULT_LIMIT]
            self._outcome = CheckResult(CheckStatus.ERROR, None, error, duration)
            return
        self._outcome = interpret(returned, round(self._clock() - started, 6))


@cache
def library_versions() -> dict[str, str | None]:
    """Versions worth knowing when reading a status; looked up once per process."""

    def installed(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {
        "ts_health_handler": __version__,
        "torchserve": installed("torchserve"),
        "torch": installed("torch"),
        "python": platform.python_version(),
    }
