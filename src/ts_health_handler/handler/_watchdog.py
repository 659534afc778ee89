"""The watchdog: a daemon thread that writes a READY worker's heartbeat at a bounded rate.

It runs beside the worker's main thread, so it keeps telling while ``handle()`` blocks (a
deadlock, a stuck kernel): the beat then shows the request running and for how long. It
sleeps until the next beat is due and writes one small file atomically every interval: one
wake-up per interval, whatever the traffic. What changes in between is told without it:
the first request after a beat that showed the worker idle writes its busy beat itself,
before the handler's code runs (:meth:`Watchdog.request_started`, through the tracker's
gate): so a process killed at once by its request (the OOM killer, a segfault) is seen in
the request, not idle. Beats that show the worker idle come at most one per interval, so
requests write at most one beat per interval between them; every other request only sets
the attributes the tracker had anyway. A process that is frozen as a whole, or whose GIL a
C extension holds, stops beating: readers see the file age (``record._beat``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from ..record import Beat, write_beat

__all__ = ["MIN_GAP_S", "Watchdog"]

#: The shortest time between two writes of the thread (a request's own beat aside).
MIN_GAP_S: Final = 0.25


class Watchdog:
    """Writes ``beat()`` to ``path`` now, every ``interval_s`` seconds, and when ``busy()``
    turns true after a beat that showed the worker idle (at most every :data:`MIN_GAP_S`),
    from a daemon thread.

    A failed write is kept in :attr:`error` and retried at the next interval: health
    checking never fails the worker. ``on_write(busy)`` is told of every beat written (or
    tried), under the watchdog's lock: whether it showed a request running.
    """

    def __init__(
        self,
        beat: Callable[[], Beat],
        path: Path,
        interval_s: float,
        busy: Callable[[], bool] = lambda: False,
        monotonic: Callable[[], float] = time.monotonic,
        on_write: Callable[[bool], None] = lambda busy: None,
    ) -> None:
        self._beat: Final = beat
        self._busy: Final = busy
        self._monotonic: Final = monotonic
        self._on_write: Final = on_write
        self.path: Final = path
        self.interval_s: Final = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.error: str | None = None
        #: When the last beat was written (monotonic), and whether it showed a request running.
        self._written = monotonic()
        self._seen_busy = False
        #: Beats written: the first at :meth:`start`, then by :meth:`tick`.
        self.writes = 0

    def start(self) -> None:
        """Write the first beat and start beating (once; later calls do nothing)."""
        if self._thread is not None:
            return
        self.beat_now()
        self._thread = threading.Thread(target=self._run, name="ts-health-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop beating (tests; a worker's watchdog lives as long as its process)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def beat_now(self) -> None:
        """Write one beat now (also before the worker ends itself after a fatal error)."""
        self._write(self._busy())

    def request_started(self) -> None:
        """A request starts: when the last beat showed the worker idle and the watchdog runs,
        write the beat that shows the request now, before the handler's code runs."""
        with self._lock:
            if not self._seen_busy and self._thread is not None:
                self._write_locked(self._busy())

    def _write(self, busy: bool) -> None:
        with self._lock:  # the thread, a request and an immediate beat never write at once
            self._write_locked(busy)

    def _write_locked(self, busy: bool) -> None:
        try:
            self._written, self._seen_busy = self._monotonic(), busy
            write_beat(self.path, self._beat())
            self.writes += 1
            self.error = None
        except Exception as exc:  # a full disk or a removed directory: keep serving
            self.error = f"{type(exc).__name__}: {exc}"
        self._on_write(busy)

    def tick(self) -> bool:
        """One look: write a beat when the interval has passed, or when a request runs after
        a beat that showed none and that beat is at least :data:`MIN_GAP_S` old. True when it
        wrote."""
        busy = self._busy()
        since = self._monotonic() - self._written
        if since >= self.interval_s or (busy and not self._seen_busy and since >= MIN_GAP_S):
            self._write(busy)
            return True
        return False

    def until_due(self) -> float:
        """Seconds until the next beat is due (a beat written by a request moves it on)."""
        return max(MIN_GAP_S, self.interval_s - (self._monotonic() - self._written))

    def _run(self) -> None:
        while not self._stop.wait(self.until_due()):
            self.tick()
