"""The ``ts-health`` commands: ask TorchServe through the client, judge, print."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, Final

from .._errors import ServerError
from .._lifecycle import ModelState
from ..monitor import (
    DEFAULT_WAIT_INTERVAL,
    ExitCode,
    Io,
    ModelHealth,
    PingResult,
    Settings,
    UsageError,
    ask_ping,
    client_for,
    exit_code_for,
    message_for,
    model_exit_code,
    model_json,
    model_ok,
    observe,
    observe_model,
    status_json,
    unreachable_document,
)
from ..torchserve import Refused, Unreachable
from ._render import health_line, status_table

__all__ = ["COMMANDS", "DEFAULT_WAIT_INTERVAL", "server_line"]


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
    code = model_exit_code(health, settings)
    io.unreachable([health])
    document = {
        "command": "ready",
        "exit_code": code,
        "model": model_json(health, settings),
    }
    io.emit(settings, health_line(health), document)
    return code


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
    document = status_json(settings, ping, results)
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
        except Refused as exc:
            if settings.token or not settings.key_file:
                # A token given as such (or none) is refused for good: only a key file is
                # rewritten (TorchServe writes new keys when it restarts).
                waited = io.clock() - started
                return _wait_error(settings, io, exit_code_for(exc), message_for(exc), waited)
            last, last_error = None, exc
            health = None
        except ServerError as exc:  # not up yet, not registered yet, key file not written yet
            last, last_error = None, exc
            health = None
        waited = io.clock() - started
        if health is not None:
            stop = health.state is ModelState.UNHEALTHY or (
                health.state is ModelState.FAILING and (args.fail_fast or health.held)
            )
            if model_ok(health, settings) or stop:
                code = model_exit_code(health, settings)
                return _wait_done(settings, io, code, health_line(health), waited, health)
        if io.clock() >= deadline:
            break
        io.sleep(max(0.0, min(args.interval, deadline - io.clock())))
    # What `ready` would print for the last poll, after how long it waited: a verdict on
    # stdout (with its error on stderr when unreachable), or only an error, once, on stderr.
    timed_out = f"timed out after {args.timeout:g} s waiting for model {args.model}: "
    if last is not None:
        io.unreachable([last])
        code = model_exit_code(last, settings)
        return _wait_done(settings, io, code, timed_out + health_line(last), waited, last)
    assert last_error is not None
    return _wait_error(
        settings, io, exit_code_for(last_error), timed_out + message_for(last_error), waited
    )


def _wait_error(settings: Settings, io: Io, code: ExitCode, text: str, waited: float) -> int:
    """Only an error, once, on stderr (and the JSON document on stdout with ``--json``)."""
    io.error(code, text)
    if settings.json:
        io.emit(settings, text, _wait_document(settings, code, text, waited, None))
    return code


def _wait_done(
    settings: Settings, io: Io, code: int, text: str, waited: float, health: ModelHealth
) -> int:
    document = _wait_document(settings, code, text, waited, health)
    io.emit(settings, f"{text} (after {waited:.1f} s)" if code == ExitCode.OK else text, document)
    return code


def _wait_document(
    settings: Settings, code: int, text: str, waited: float, health: ModelHealth | None
) -> dict[str, Any]:
    return {
        "command": "wait",
        "exit_code": code,
        "waited_s": round(waited, 3),
        "reason": text,
        "model": None if health is None else model_json(health, settings),
    }


COMMANDS: Final[dict[str, Callable[[Settings, argparse.Namespace, Io], int]]] = {
    "ping": cmd_ping,
    "ready": cmd_ready,
    "status": cmd_status,
    "wait": cmd_wait,
}
