"""After ``initialize()``: a READY worker's watch over its requests and its heartbeat.

TorchServe keeps a worker READY while every request fails (a corrupt CUDA context stays
corrupt) and while one request hangs. :class:`Serving` counts failed requests in a row,
recognises fatal errors (``health.fatal_errors``, and repeated CUDA out-of-memory errors),
applies ``health.on_fatal_error`` and feeds the watchdog's heartbeat (``_watchdog``). Only
the failure path of ``handle()`` calls it; a successful request costs it nothing (the
streak is told from the count of calls that returned, ``Requests.ok``, which holds also
while many calls run at once).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

from .._text import clip, valid_utf8
from ..record import MESSAGE_LIMIT, Beat, ErrorInfo, utc_iso
from ._config import FatalErrorPolicy, HealthConfig
from ._requests import Requests
from ._watchdog import Watchdog

if TYPE_CHECKING:
    from .._lifecycle import ServingMode

__all__ = ["Serving", "qualified_name"]

#: Exit status of a worker that ends itself after a fatal error (EX_SOFTWARE).
FATAL_EXIT_STATUS: Final = 70
#: Time left to answer the failing request before the worker ends itself.
FATAL_EXIT_DELAY_S: Final = 0.5
_OOM: Final = re.compile(r"OutOfMemoryError|CUDA out of memory", re.IGNORECASE)


class Serving:
    """One READY worker's request health: the failure streak, a fatal error, the heartbeat.

    Args:
        requests: the worker's counters and calls in flight, which the beat reports.
        mode: how TorchServe serves the model (the beat names it).
        always_gated: every call goes through the tracker's gate, whatever the beats.
        worker: TorchServe's worker id; ``None`` outside TorchServe (unit tests with a mocked
            context): the streak is counted, but there is no heartbeat and no restart (only
            TorchServe would start the next process).
        beat_path: this worker thread's beat file (``None``: no heartbeat).
        exit_later: ``(delay_s, status)``: end the process after the delay (a daemon timer
            calling ``os._exit``; replaced in tests).
    """

    def __init__(
        self,
        requests: Requests,
        mode: ServingMode,
        config: HealthConfig,
        worker: str | None,
        beat_path: Path | None,
        clock: Callable[[], float],
        exit_later: Callable[[float, int], None] | None = None,
        always_gated: bool = False,
    ) -> None:
        self._requests: Final = requests
        self._mode: Final = mode
        self._always_gated: Final = always_gated
        self._config: Final = config
        self._worker: Final = worker
        self._clock: Final = clock
        self._exit_later: Final = exit_later or _exit_later
        self._patterns: Final = tuple(re.compile(p, re.IGNORECASE) for p in config.fatal_errors)
        #: Failed requests in a row, and the count of calls that had returned at the
        #: latest failure.
        self._streak = 0
        self._mark = -1
        self._oom_streak = 0
        self.last_error: ErrorInfo | None = None
        self.fatal: ErrorInfo | None = None
        self.restarting = False
        self.describe_at: float | None = None
        self.watchdog: Final = (
            None
            if beat_path is None or worker is None
            else Watchdog(
                self.beat,
                beat_path,
                config.heartbeat_interval_s,
                self._busy,
                on_write=self._beaten,
            )
        )

    @property
    def consecutive_failures(self) -> int:
        """Failed requests since the last success (0 once a request after them succeeded)."""
        return self._streak if self._mark == self._requests.ok else 0

    def failed(self, exc: BaseException, count: int) -> None:
        """``handle()`` raised ``exc`` for a batch of ``count`` requests."""
        returned = self._requests.ok
        in_a_row = self._mark == returned
        self._streak = self._streak + count if in_a_row else count
        self._mark = returned
        kind = qualified_name(type(exc))
        error = ErrorInfo(
            type=kind,
            message=clip(valid_utf8(str(exc)), MESSAGE_LIMIT),
            at=utc_iso(self._clock()),
            attempt=self._requests.total,
        )
        self.last_error = error
        text = f"{kind}: {error.message}"
        if _OOM.search(text):
            self._oom_streak = self._oom_streak + 1 if in_a_row else 1
        else:
            self._oom_streak = 0
        fatal = any(p.search(text) for p in self._patterns) or (
            self._oom_streak >= self._config.oom_fatal_after
        )
        if fatal and self.fatal is None:
            self.fatal = error
            if self._config.on_fatal_error is FatalErrorPolicy.RESTART and self.watchdog:
                self._restart()

    def _restart(self) -> None:
        """Tell the heartbeat, then end the process once the failing request is answered."""
        self.restarting = True
        if self.watchdog is not None:
            self.watchdog.beat_now()
        self._exit_later(FATAL_EXIT_DELAY_S, FATAL_EXIT_STATUS)

    def request_started(self) -> None:
        """The tracker's gate, at the start of a request: the watchdog's beat, if it is due."""
        if self.watchdog is not None:
            self.watchdog.request_started()

    def _beaten(self, busy: bool) -> None:
        """A beat was written: after one that showed the worker idle, the next request goes
        through the gate (which writes its busy beat); after a busy one, no request does."""
        self._requests.gated = not busy or self._always_gated

    def _busy(self) -> bool:
        """A request is running (one attribute read)."""
        return self._requests.busy

    def beat(self) -> Beat:
        """The heartbeat now (read by the watchdog thread beside the calls)."""
        requests = self._requests
        running = requests.in_flight()
        spans = requests.spans
        config = self._config
        return Beat(
            worker=self._worker or "",
            pid=os.getpid(),
            at=self._clock(),
            interval_s=config.heartbeat_interval_s,
            requests=requests.total,
            failed=requests.failed,
            consecutive_failures=self.consecutive_failures,
            in_flight_since=running.oldest_started,
            last_request_at=requests.last_started,
            in_flight=running.requests,
            request_ids=running.oldest_ids,
            open_requests=None if spans is None else len(spans.open),
            open_since=None if spans is None else spans.oldest(),
            mode=self._mode.value,
            parent_pid=os.getppid(),
            describe_at=self.describe_at,
            last_error=self.last_error,
            fatal=self.fatal,
            restarting=self.restarting,
            stuck_after_s=config.stuck_threshold_s,
            response_timeout_s=config.response_timeout_s,
            failing_after=config.failing_after_requests,
            unstable_after_deaths=config.unstable_after_deaths,
            death_window_s=config.death_window_s,
        )


def _exit_later(delay_s: float, status: int) -> None:
    timer = threading.Timer(delay_s, os._exit, args=(status,))
    timer.daemon = True
    timer.start()


def qualified_name(kind: type) -> str:
    """``module.Qualname`` of a class; builtins (``OSError``) go without their module."""
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"
