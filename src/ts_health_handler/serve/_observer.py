"""The background loop: ask TorchServe every ``--interval`` seconds, keep the latest answer.

Each question (``/ping``, the model list, each model's describe) runs on a thread of a
:class:`_Pool`, at most one of each kind at a time: a hung describe delays only its own model,
whose observation then ages until the readiness answers call it stale. Every request is
bounded by the client's ``--request-timeout`` / ``--describe-timeout``, so a thread is never
lost for longer. The loop itself only hands out work, so it keeps its pace whatever TorchServe
does.

Whatever one look raises, the next interval looks again: a :class:`ServerError` is kept in the
snapshot as what went wrong, and so is any other exception (a bug, or an answer no one
foresaw), as one redacted line (``internal error: ...``); no thread of the observer ends on it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import threading
import time
from collections.abc import Callable, Collection, Mapping
from typing import Final

from .._errors import ServerError
from .._text import one_line, redact
from ..monitor import (
    ExitCode,
    PingResult,
    Settings,
    ask_ping,
    client_for,
    message_for,
    observe_model,
)
from ..torchserve import NotRegistered, TorchServeClient
from ._history import advance
from ._options import ServeOptions
from ._snapshot import ModelSeen, Snapshot

__all__ = ["Observer"]

#: Describes in flight at once: as ``ts-health status`` does, TorchServe is not flooded.
DESCRIBE_THREADS: Final = 8
#: Longest message kept of an unexpected exception.
MESSAGE_LIMIT: Final = 300

ClientFactory = Callable[[Settings], TorchServeClient]


def _default_client(settings: Settings) -> TorchServeClient:
    return client_for(settings)


class _Pool:
    """A thread pool (not TorchServe's workers): daemon threads taking jobs from a queue; a
    job already queued or running is skipped.

    Daemon threads, so that stopping never waits for a request in flight.
    """

    def __init__(self, count: int, name: str) -> None:
        self._jobs: queue.SimpleQueue[tuple[str, Callable[[], None]] | None] = queue.SimpleQueue()
        self._busy: set[str] = set()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
            for i in range(count)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def submit(self, key: str, job: Callable[[], None]) -> bool:
        with self._lock:
            if key in self._busy:
                return False
            self._busy.add(key)
        self._jobs.put((key, job))
        return True

    def stop(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)

    def _work(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            key, job = item
            try:
                # Each job keeps its own errors in the snapshot; the thread outlives any.
                with contextlib.suppress(Exception):
                    job()
            finally:
                with self._lock:
                    self._busy.discard(key)


class Observer:
    """Observes one TorchServe in the background; :attr:`snapshot` is the latest view.

    Args:
        settings: connection options, as the other commands resolve them.
        options: ``--interval``, ``--model``.
        client_factory: builds a client per round (a key file is read afresh each time).
        clock, wall: monotonic and epoch clocks (replaced by tests).
        secrets: tokens and keys (filled as they are read), redacted from the message of an
            unexpected exception before it is cut to one line.
    """

    def __init__(
        self,
        settings: Settings,
        options: ServeOptions,
        *,
        client_factory: ClientFactory = _default_client,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        secrets: Collection[str] = (),
    ) -> None:
        self.settings: Final = settings
        self.options: Final = options
        self._client_factory = client_factory
        self._secrets = secrets
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        self._snapshot = Snapshot(started=clock(), names=options.models if options.models else None)
        self._stop = threading.Event()
        self._server_jobs = _Pool(2, "ts-health-observe")
        self._model_jobs = _Pool(DESCRIBE_THREADS, "ts-health-describe")
        self._thread = threading.Thread(target=self._loop, name="ts-health-observer", daemon=True)

    @property
    def snapshot(self) -> Snapshot:
        """The latest view (a frozen value: read it without a lock)."""
        return self._snapshot

    def start(self) -> None:
        self._server_jobs.start()
        self._model_jobs.start()
        self._thread.start()

    def stop(self) -> None:
        """Stop asking; requests in flight are abandoned (their threads are daemons)."""
        self._stop.set()
        self._server_jobs.stop()
        self._model_jobs.stop()
        self._thread.join(timeout=1.0)

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = self._clock()
            self.round()
            self._stop.wait(max(0.0, self.options.interval - (self._clock() - started)))

    def round(self) -> None:
        """Hand out one round of questions (each skipped while its previous one runs)."""
        try:
            client = self._client_factory(self.settings)
        except Exception as exc:  # an unreadable key file: nothing can be asked
            failure = ExitCode.USAGE if isinstance(exc, ServerError) else ExitCode.INTERNAL
            self._ping_done(PingResult(error=self._message(exc), failure=failure))
            if not self.options.models:
                self._listed(None, self._message(exc))
            return
        self._server_jobs.submit("ping", lambda: self._ping_done(self._ping(client)))
        if not self.options.models:
            self._server_jobs.submit("models", lambda: self._list(client))
        for name in self._snapshot.names or ():
            self._submit_model(client, name)

    def _submit_model(self, client: TorchServeClient, name: str) -> None:
        self._model_jobs.submit(name, lambda: self._observe(client, name))

    def _list(self, client: TorchServeClient) -> None:
        try:
            names = client.models()
        except Exception as exc:
            self._listed(None, self._message(exc))
            return
        self._listed(tuple(names), None)
        for name in names:
            self._submit_model(client, name)

    def _observe(self, client: TorchServeClient, name: str) -> None:
        ping = self._snapshot.ping
        healthy = None if ping is None else ping.healthy
        try:
            healths = observe_model(
                client, self.settings, name, ping_healthy=healthy, now=self._wall()
            )
            seen = ModelSeen(name, tuple(healths), self._clock())
        except NotRegistered as exc:
            seen = ModelSeen(name, (), self._clock(), str(exc), registered=False)
        except Exception as exc:  # a refused token, a bad answer, a bug
            seen = ModelSeen(name, (), self._clock(), self._message(exc))
        self._seen(seen)

    def _ping(self, client: TorchServeClient) -> PingResult:
        try:
            return ask_ping(client)
        except ServerError as exc:  # a refused token: kept, shown, and /live fails
            return PingResult(error=message_for(exc), failure=ExitCode.USAGE)
        except Exception as exc:
            return PingResult(error=self._message(exc), failure=ExitCode.INTERNAL)

    def _message(self, exc: Exception) -> str:
        """What went wrong, as the snapshot keeps it: a :class:`ServerError`'s message as
        the other commands print it, any other exception as ``internal error: Type: ...``
        in one line; secrets redacted (before the text is cut)."""
        secrets = tuple(self._secrets)  # a copy at once: the set grows as keys are read
        if isinstance(exc, ServerError):  # one line already, its quotes bounded
            return redact(message_for(exc), secrets)
        text = f"internal error: {type(exc).__name__}: {exc}"
        return one_line(redact(text, secrets), MESSAGE_LIMIT)

    # -- swapping in a new snapshot ------------------------------------------------------

    def _update(self, change: Callable[[Snapshot], Snapshot]) -> None:
        with self._lock:
            self._snapshot = change(self._snapshot)

    def _ping_done(self, ping: PingResult) -> None:
        now = self._clock()

        def change(old: Snapshot) -> Snapshot:
            return dataclasses.replace(
                old,
                ping=ping,
                ping_at=now,
                observations=_count(old.observations, "ping"),
                errors=_count(old.errors, "ping") if ping.error else old.errors,
            )

        self._update(change)

    def _listed(self, names: tuple[str, ...] | None, error: str | None) -> None:
        now = self._clock()

        def change(old: Snapshot) -> Snapshot:
            if names is None:
                return dataclasses.replace(
                    old,
                    names_error=error,
                    observations=_count(old.observations, "models"),
                    errors=_count(old.errors, "models"),
                )
            kept = {n: old.models[n] for n in names if n in old.models}
            tracks = {k: t for k, t in old.tracks.items() if k[0] in kept}
            return dataclasses.replace(
                old,
                names=names,
                names_at=now,
                names_error=None,
                models=kept,
                tracks=tracks,
                observations=_count(old.observations, "models"),
            )

        self._update(change)

    def _seen(self, seen: ModelSeen) -> None:
        wall = self._wall()

        def change(old: Snapshot) -> Snapshot:
            if old.names is not None and seen.name not in old.names:
                return old  # unregistered while it was being described
            tracks = {k: t for k, t in old.tracks.items() if k[0] != seen.name}
            for health in seen.healths:
                key = (health.model, health.version)
                tracks[key] = advance(old.tracks.get(key), health.state, health.reason, wall)
            return dataclasses.replace(
                old,
                models={**old.models, seen.name: seen},
                tracks=tracks,
                observations=_count(old.observations, "model"),
                errors=_count(old.errors, "model") if seen.error else old.errors,
            )

        self._update(change)


def _count(counts: Mapping[str, int], kind: str) -> dict[str, int]:
    return {**counts, kind: counts.get(kind, 0) + 1}
