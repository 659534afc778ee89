"""The ``ts-health`` commands: ask TorchServe through the client, judge, print."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, Final

from .._answers import ModelEntry
from .._client import TorchServeClient, Unreachable
from .._errors import ServerError
from .._state import InitRecord, RecordError, StateStore
from ._exit import ExitCode, UsageError, exit_code_for, label_for
from ._render import health_json, health_line, status_table
from ._settings import Settings, client_for
from ._verdict import ModelHealth, Observation, State, assess

__all__ = ["COMMANDS", "Io", "observe", "observe_entry", "observe_model"]

DEFAULT_WAIT_INTERVAL: Final = 1.0


@dataclass(frozen=True)
class Io:
    """Where output goes, and the clocks; replaced by tests."""

    stdout: IO[str]
    stderr: IO[str]
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep

    def emit(self, settings: Settings, text: str, document: dict[str, Any]) -> None:
        """The answer, on stdout: a verdict line or table, or the JSON document."""
        if settings.json:
            self.stdout.write(json.dumps(document, indent=2) + "\n")
        else:
            self.stdout.write(text + "\n")

    def error(self, code: ExitCode, message: str) -> None:
        """One error, on stderr: ``ts-health: unreachable: ...`` (also in ``--json`` mode)."""
        self.stderr.write(f"ts-health: {label_for(code)}: {message}\n")

    def unreachable(self, healths: list[ModelHealth]) -> None:
        """Each model that could not be asked is an error too, not only a state word."""
        for health in healths:
            if health.state is State.UNREACHABLE:
                self.error(ExitCode.UNREACHABLE, health.reason)


def read_record(
    settings: Settings, model: str, version: str
) -> tuple[InitRecord | None, str, str | None]:
    """``(record, path, error)`` of the persisted initialization record."""
    store = StateStore(settings.state_dir, model, version)
    try:
        return store.read(), str(store.path), None
    except RecordError as exc:
        return None, str(store.path), str(exc)
    except OSError as exc:
        return None, str(store.path), f"cannot read {store.path}: {exc.strerror or exc}"


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
    record, record_path, record_error = read_record(settings, entry.name, entry.version)
    seen = Observation(
        describe=entry,
        status=status,
        status_error=status_error,
        record=record,
        record_path=record_path,
        record_error=record_error,
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
    healthy, status = client_for(settings, clock=io.clock, wall=io.wall).ping()
    code = ExitCode.OK if healthy else ExitCode.NOT_READY
    word = "alive" if healthy else "unhealthy"
    io.emit(
        settings,
        f"{word}: the inference API at {settings.inference_url} answered /ping: {status}",
        {"command": "ping", "exit_code": code, "healthy": healthy, "status": status},
    )
    return code


def cmd_ready(settings: Settings, args: argparse.Namespace, io: Io) -> int:
    client = client_for(settings, clock=io.clock, wall=io.wall)
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


def cmd_status(settings: Settings, args: argparse.Namespace, io: Io) -> int:
    if args.model is None and args.version is not None:
        raise UsageError("--version needs a MODEL: ts-health status MODEL --version V")
    client = client_for(settings, clock=io.clock, wall=io.wall)
    ping_healthy: bool | None = None
    ping_status: str | None = None
    ping_error: str | None = None
    ping_code = ExitCode.OK
    try:
        ping_healthy, ping_status = client.ping()
        if not ping_healthy:
            ping_code = ExitCode.NOT_READY
    except ServerError as exc:
        ping_code = exit_code_for(exc)
        if ping_code is ExitCode.USAGE:
            raise
        ping_error = str(exc)
        io.error(ping_code, ping_error)
    if args.model is not None:
        names: list[str] = [args.model]
    else:
        try:
            names = client.models()
        except Unreachable as exc:
            return _status_unreachable(settings, io, exc, ping_status, ping_error)
    now = io.wall()

    def one(name: str) -> list[ModelHealth]:
        if args.version is not None:
            return [
                observe(client, settings, name, args.version, ping_healthy=ping_healthy, now=now)
            ]
        return observe_model(client, settings, name, ping_healthy=ping_healthy, now=now)

    if len(names) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(8, len(names))) as pool:
            results = [h for versions in pool.map(one, names) for h in versions]
    else:
        results = [h for n in names for h in one(n)]
    io.unreachable(results)
    codes = [ping_code, *(_exit_code(h, settings) for h in results)]
    code = ExitCode.UNREACHABLE if ExitCode.UNREACHABLE in codes else max(codes)
    document = {
        "command": "status",
        "exit_code": code,
        "server": {
            "inference_url": settings.inference_url,
            "management_url": settings.management_url,
            "ping": None
            if ping_status is None
            else {"healthy": ping_healthy, "status": ping_status},
            "ping_error": ping_error,
        },
        "models": [_json(h, settings) for h in results],
    }
    io.emit(
        settings, status_table(_server_line(settings, ping_status, ping_error), results), document
    )
    return code


def _server_line(settings: Settings, ping_status: str | None, ping_error: str | None) -> str:
    ping = f"/ping {ping_status}" if ping_status is not None else f"/ping failed: {ping_error}"
    return f"server {settings.inference_url} (management {settings.management_url}): {ping}"


def _status_unreachable(
    settings: Settings, io: Io, exc: Unreachable, ping_status: str | None, ping_error: str | None
) -> int:
    document = {
        "command": "status",
        "exit_code": ExitCode.UNREACHABLE,
        "server": {
            "inference_url": settings.inference_url,
            "management_url": settings.management_url,
            "ping": None if ping_status is None else {"status": ping_status},
            "ping_error": ping_error,
            "management_error": str(exc),
        },
        "models": [],
    }
    io.error(ExitCode.UNREACHABLE, str(exc))
    io.emit(settings, f"unreachable: {exc}", document)
    return ExitCode.UNREACHABLE


def cmd_wait(settings: Settings, args: argparse.Namespace, io: Io) -> int:
    started = io.clock()
    deadline = started + args.timeout
    last: ModelHealth | None = None
    last_error: ServerError | None = None
    while True:
        try:
            client = client_for(settings, clock=io.clock, deadline=deadline, wall=io.wall)
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


COMMANDS: Final[dict[str, Callable[[Settings, argparse.Namespace, Io], int]]] = {
    "ping": cmd_ping,
    "ready": cmd_ready,
    "status": cmd_status,
    "wait": cmd_wait,
}
