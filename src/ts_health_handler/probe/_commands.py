"""The ``ts-health`` commands: ask TorchServe through the client, judge, print."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Final

from .._answers import ModelEntry
from .._client import TorchServeClient, Unreachable
from .._errors import ServerError
from .._state import InitRecord, RecordError, StateStore, read_record
from .._text import printable
from ._exit import ExitCode, UsageError, exit_code_for, label_for
from ._match import Match, match
from ._render import health_json, health_line, status_table
from ._settings import Settings, client_for
from ._verdict import ModelHealth, Observation, State, assess

__all__ = [
    "COMMANDS",
    "Io",
    "PingResult",
    "ask_ping",
    "observe",
    "observe_entry",
    "observe_model",
    "status_code",
    "status_document",
    "unreachable_document",
]

DEFAULT_WAIT_INTERVAL: Final = 1.0


@dataclass(frozen=True)
class Io:
    """Where output goes, and the clocks; replaced by tests.

    Everything written passes :meth:`clean`: secrets (tokens, keys) are replaced by
    ``<redacted>`` and text for people is made :func:`~.._text.printable` (ANSI sequences
    and other controls escaped); JSON escapes them itself.
    """

    stdout: IO[str]
    stderr: IO[str]
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    #: Tokens and keys in use; filled as they are read (see :func:`client_for`).
    secrets: set[str] = field(default_factory=set)

    def clean(self, text: str) -> str:
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "<redacted>")
        return printable(text)

    def out(self, text: str) -> None:
        self.stdout.write(self.clean(text) + "\n")

    def err(self, text: str) -> None:
        self.stderr.write(self.clean(text) + "\n")

    def emit(self, settings: Settings, text: str, document: dict[str, Any]) -> None:
        """The answer, on stdout: a verdict line or table, or the JSON document."""
        self.out(json.dumps(document, indent=2) if settings.json else text)

    def error(self, code: ExitCode, message: str) -> None:
        """One error, on stderr: ``ts-health: unreachable: ...`` (also in ``--json`` mode)."""
        self.err(f"ts-health: {label_for(code)}: {message}")

    def unreachable(self, healths: Sequence[ModelHealth]) -> None:
        """Each model that could not be asked is an error too, not only a state word."""
        for health in healths:
            if health.state is State.UNREACHABLE:
                self.error(ExitCode.UNREACHABLE, health.reason)


def read_records(settings: Settings, entry: ModelEntry) -> tuple[Match, str, str | None]:
    """The record of the registration ``entry`` describes (and the newest other one), the
    path to show for it, and why a record file could not be read (when none is current).

    The path is the current record's file; else an unreadable file's; else the directory.
    """
    store = StateStore(settings.state_dir, entry.name, entry.version)
    found: list[tuple[str, InitRecord]] = []
    errors: list[tuple[str, str]] = []
    try:
        paths = store.files()
    except OSError as exc:
        paths = []
        errors.append(
            (str(store.directory), f"cannot read {store.directory}: {exc.strerror or exc}")
        )
    for path in paths:
        try:
            record = read_record(path)
        except RecordError as exc:
            errors.append((str(path), str(exc)))
            continue
        except OSError as exc:
            errors.append((str(path), f"cannot read {path}: {exc.strerror or exc}"))
            continue
        if record is not None:
            found.append((str(path), record))
    matched = match(entry, found)
    if matched.path is not None:
        return matched, matched.path, None
    if errors:
        return matched, errors[0][0], errors[0][1]
    return matched, str(store.directory), None


def observe(
    client: TorchServeClient,
    settings: Settings,
    model: str,
    version: str | None,
    *,
    ping_healthy: bool | None,
    now: float,
) -> ModelHealth:
    """One version of ``model`` (``None``: the default version), judged."""
    try:
        entry = client.describe(model, version)
    except Unreachable as exc:
        return ModelHealth(model, version or "?", State.UNREACHABLE, str(exc))
    return observe_entry(client, settings, entry, ping_healthy=ping_healthy, now=now)


def observe_model(
    client: TorchServeClient,
    settings: Settings,
    model: str,
    *,
    ping_healthy: bool | None,
    now: float,
) -> list[ModelHealth]:
    """Every registered version of ``model``, judged, the default version first.

    ``GET /models/{name}/all`` lists the versions; TorchServe marks none as the default, so
    with more than one the default is asked for too (``GET /models/{name}``).
    """
    try:
        entries = client.describe_all(model, "all")
        default = entries[0] if len(entries) == 1 else client.describe(model)
    except Unreachable as exc:
        return [ModelHealth(model, "?", State.UNREACHABLE, str(exc))]
    ordered = [default, *(e for e in entries if e.version != default.version)]
    return [
        observe_entry(client, settings, entry, ping_healthy=ping_healthy, now=now, default=i == 0)
        for i, entry in enumerate(ordered)
    ]


def observe_entry(
    client: TorchServeClient,
    settings: Settings,
    entry: ModelEntry,
    *,
    ping_healthy: bool | None,
    now: float,
    default: bool = True,
) -> ModelHealth:
    """Judge one described version: its status document (when a worker is READY) and its
    record, then :func:`assess`."""
    status: dict[str, Any] | None = None
    status_error: str | None = "not asked: no READY worker"
    if entry.ready_workers:
        status, status_error = client.status_document(entry.name, entry.version)
    records, record_path, record_error = read_records(settings, entry)
    seen = Observation(
        describe=entry,
        status=status,
        status_error=status_error,
        record=records.current,
        record_path=record_path,
        record_error=record_error,
        previous=records.previous,
        ping_healthy=ping_healthy,
        now=now,
        default=default,
    )
    return assess(entry.name, entry.version, seen)


def _ok(health: ModelHealth, settings: Settings) -> bool:
    return health.ok(settings.allow_degraded, settings.allow_saturated)


def _json(health: ModelHealth, settings: Settings) -> dict[str, Any]:
    return health_json(health, settings.allow_degraded, settings.allow_saturated)


def _exit_code(health: ModelHealth, settings: Settings) -> ExitCode:
    if _ok(health, settings):
        return ExitCode.OK
    return ExitCode.UNREACHABLE if health.state is State.UNREACHABLE else ExitCode.NOT_READY


def cmd_ping(settings: Settings, args: argparse.Namespace, io: Io) -> int:
    healthy, status = client_for(settings, clock=io.clock, wall=io.wall, secrets=io.secrets).ping()
    code = ExitCode.OK if healthy else ExitCode.NOT_READY
    word = "alive" if healthy else "unhealthy"
    io.emit(
        settings,
        f"{word}: the inference API at {settings.inference_url} answered /ping: {status}",
        {"command": "ping", "exit_code": code, "healthy": healthy, "status": status},
    )
    return code


def cmd_ready(settings: Settings, args: argparse.Namespace, io: Io) -> int:
    client = client_for(settings, clock=io.clock, wall=io.wall, secrets=io.secrets)
    health = observe(client, settings, args.model, args.version, ping_healthy=None, now=io.wall())
    code = _exit_code(health, settings)
    io.unreachable([health])
    document = {
        "command": "ready",
        "exit_code": code,
        "model": _json(health, settings),
    }
    io.emit(settings, health_line(health), document)
    return code


@dataclass(frozen=True)
class PingResult:
    """What ``/ping`` said for ``status``: healthy or not and its text, or why it failed."""

    healthy: bool | None = None
    status: str | None = None
    error: str | None = None
    code: ExitCode = ExitCode.OK


def ask_ping(client: TorchServeClient) -> PingResult:
    """``/ping``, with a failure kept as ``error`` (a refused token still raises)."""
    try:
        healthy, status = client.ping()
    except ServerError as exc:
        code = exit_code_for(exc)
        if code is ExitCode.USAGE:
            raise
        return PingResult(error=str(exc), code=code)
    return PingResult(healthy, status, None, ExitCode.OK if healthy else ExitCode.NOT_READY)


def status_code(ping: PingResult, results: Sequence[ModelHealth], settings: Settings) -> int:
    """The exit code of ``status``: unreachable wins, then the worst of the others."""
    codes = [ping.code, *(_exit_code(h, settings) for h in results)]
    return ExitCode.UNREACHABLE if ExitCode.UNREACHABLE in codes else max(codes)


def status_document(
    settings: Settings, ping: PingResult, results: Sequence[ModelHealth]
) -> dict[str, Any]:
    """The ``status --json`` document (fields in ``docs/probe.md``); ``ts-health serve``
    answers ``/status`` with it too."""
    return {
        "command": "status",
        "exit_code": status_code(ping, results, settings),
        "server": {
            "inference_url": settings.inference_url,
            "management_url": settings.management_url,
            "ping": None
            if ping.status is None
            else {"healthy": ping.healthy, "status": ping.status},
            "ping_error": ping.error,
        },
        "models": [_json(h, settings) for h in results],
    }


def unreachable_document(settings: Settings, ping: PingResult, error: str) -> dict[str, Any]:
    """The ``status --json`` document when the management API cannot list the models."""
    return {
        "command": "status",
        "exit_code": ExitCode.UNREACHABLE,
        "server": {
            "inference_url": settings.inference_url,
            "management_url": settings.management_url,
            "ping": None if ping.status is None else {"status": ping.status},
            "ping_error": ping.error,
            "management_error": error,
        },
        "models": [],
    }


def cmd_status(settings: Settings, args: argparse.Namespace, io: Io) -> int:
    if args.model is None and args.version is not None:
        raise UsageError("--version needs a MODEL: ts-health status MODEL --version V")
    client = client_for(settings, clock=io.clock, wall=io.wall, secrets=io.secrets)
    ping = ask_ping(client)
    if ping.error is not None:
        io.error(ping.code, ping.error)
    if args.model is not None:
        names: list[str] = [args.model]
    else:
        try:
            names = client.models()
        except Unreachable as exc:
            io.error(ExitCode.UNREACHABLE, str(exc))
            io.emit(settings, f"unreachable: {exc}", unreachable_document(settings, ping, str(exc)))
            return ExitCode.UNREACHABLE
    now = io.wall()

    def one(name: str) -> list[ModelHealth]:
        if args.version is not None:
            return [
                observe(client, settings, name, args.version, ping_healthy=ping.healthy, now=now)
            ]
        return observe_model(client, settings, name, ping_healthy=ping.healthy, now=now)

    if len(names) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(8, len(names))) as pool:
            results = [h for versions in pool.map(one, names) for h in versions]
    else:
        results = [h for n in names for h in one(n)]
    io.unreachable(results)
    document = status_document(settings, ping, results)
    io.emit(settings, status_table(server_line(settings, ping), results), document)
    return int(document["exit_code"])


def server_line(settings: Settings, ping: PingResult) -> str:
    """The first line of the ``status`` table: the server and what ``/ping`` said."""
    shown = f"/ping {ping.status}" if ping.status is not None else f"/ping failed: {ping.error}"
    return f"server {settings.inference_url} (management {settings.management_url}): {shown}"


def cmd_wait(settings: Settings, args: argparse.Namespace, io: Io) -> int:
    started = io.clock()
    deadline = started + args.timeout
    last: ModelHealth | None = None
    last_error: ServerError | None = None
    while True:
        try:
            client = client_for(
                settings, clock=io.clock, deadline=deadline, wall=io.wall, secrets=io.secrets
            )
            health = observe(
                client, settings, args.model, args.version, ping_healthy=None, now=io.wall()
            )
            last, last_error = health, None
        except ServerError as exc:  # not up yet, not registered yet, key file not written yet
            last, last_error = None, exc
            health = None
        waited = io.clock() - started
        if health is not None:
            stop = health.state is State.UNHEALTHY or (
                health.state is State.FAILING and (args.fail_fast or health.held)
            )
            if _ok(health, settings) or stop:
                code = _exit_code(health, settings)
                return _wait_done(settings, io, code, health_line(health), waited, health)
        if io.clock() >= deadline:
            break
        io.sleep(max(0.0, min(args.interval, deadline - io.clock())))
    if last is not None:
        reason, code = health_line(last), _exit_code(last, settings)
        io.unreachable([last])
    else:
        assert last_error is not None
        reason, code = str(last_error), exit_code_for(last_error)
        io.error(code, reason)
    text = f"timed out after {args.timeout:g} s waiting for model {args.model}: {reason}"
    return _wait_done(settings, io, code, text, waited, last)


def _wait_done(
    settings: Settings, io: Io, code: int, text: str, waited: float, health: ModelHealth | None
) -> int:
    document = {
        "command": "wait",
        "exit_code": code,
        "waited_s": round(waited, 3),
        "reason": text,
        "model": None if health is None else _json(health, settings),
    }
    io.emit(settings, f"{text} (after {waited:.1f} s)" if code == ExitCode.OK else text, document)
    return code


def cmd_serve(settings: Settings, args: argparse.Namespace, io: Io) -> int:
    # Imported here: the other commands never load the server (nor prometheus_client).
    from ..serve import cmd_serve as serve

    return serve(settings, args, io)


COMMANDS: Final[dict[str, Callable[[Settings, argparse.Namespace, Io], int]]] = {
    "ping": cmd_ping,
    "ready": cmd_ready,
    "status": cmd_status,
    "wait": cmd_wait,
    "serve": cmd_serve,
}
