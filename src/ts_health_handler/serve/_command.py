"""``ts-health serve``: start the observer and the HTTP listener, stop both on a signal."""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
from collections.abc import Callable, Collection, Mapping
from types import FrameType
from typing import Final

from ..monitor import Io, Settings, UsageError, client_for
from ._http_server import HttpListener
from ._observer import ClientFactory, Observer, _default_client
from ._options import ServeOptions, serve_options
from ._routes import Answer, Request, View, answer

__all__ = ["HealthApp", "cmd_serve"]


class HealthApp:
    """The observer and the HTTP listener of ``ts-health serve``, started and stopped together.

    Tests use it in-process: ``with HealthApp(settings, options) as app: app.url``.
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
        self._clock = clock
        self._wall = wall
        #: Tokens and keys (a set the client fills as it reads the key file): no answer and
        #: no kept error shows them.
        self._secrets = secrets
        self.observer: Final = Observer(
            settings,
            options,
            client_factory=client_factory,
            clock=clock,
            wall=wall,
            secrets=secrets,
        )
        try:
            self.listener: Final = HttpListener((options.host, options.port), self.answer)
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {options.host}:{options.port}: {exc.strerror or exc}"
            ) from None
        self._thread = threading.Thread(
            target=self.listener.serve_forever,
            kwargs={"poll_interval": 0.5},
            name="ts-health-http",
            daemon=True,
        )

    @property
    def url(self) -> str:
        return self.listener.url

    def answer(self, request: Request) -> Answer:
        known = (*self._secrets, self.settings.token, self.options.auth_token)
        view = View(
            self.observer.snapshot,
            self.settings,
            self.options,
            self._clock(),
            self._wall(),
            tuple(s for s in known if s),
        )
        return answer(request, view)

    def start(self) -> HealthApp:
        self.observer.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        self.listener.shutdown()
        self.listener.server_close()
        self.observer.stop()

    def __enter__(self) -> HealthApp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _start_line(app: HealthApp) -> str:
    options, settings = app.options, app.settings
    watching = ", ".join(options.models) if options.models else "every registered model"
    line = (
        f"ts-health serve: listening on {app.url}; observing {watching} of the TorchServe at "
        f"{settings.management_url} every {options.interval:g} s (stale after "
        f"{options.stale_after:g} s)"
    )
    if options.auth_token:
        line += "; /status, /metrics and / need the bearer token"
    elif not options.loopback:
        line += (
            "; warning: /status, /metrics and / are open to anyone who can connect "
            "(set --auth-token-file)"
        )
    return line


def cmd_serve(
    settings: Settings,
    args: argparse.Namespace,
    io: Io,
    *,
    environ: Mapping[str, str] | None = None,
) -> int:
    """Serve until SIGTERM or SIGINT; exit 0 then.

    Its lines on stderr pass ``io`` as the other commands' do: tokens and keys (the key
    file's, as the observer reads it) redacted, control characters escaped.
    """
    options = serve_options(args, os.environ if environ is None else environ)
    if options.auth_token:
        io.secrets.add(options.auth_token)
    app = HealthApp(
        settings,
        options,
        client_factory=lambda s: client_for(s, secrets=io.secrets),
        secrets=io.secrets,
    )
    stop = threading.Event()
    caught: list[str] = []

    def on_signal(number: int, frame: FrameType | None) -> None:
        caught.append(signal.Signals(number).name)
        stop.set()

    previous = {
        number: signal.signal(number, on_signal) for number in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        app.start()
        io.err(_start_line(app))
        io.stderr.flush()
        while not stop.wait(1.0):
            pass
    finally:
        app.stop()
        for number, handler in previous.items():
            signal.signal(number, handler)
    io.err(f"ts-health serve: stopped ({', '.join(caught) or 'done'})")
    io.stderr.flush()
    return 0
