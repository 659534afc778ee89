"""The ``ts-health`` command line: options, dispatch, and errors turned into exit codes.

Parsing needs only ``argparse`` and the options' names and defaults (``monitor._defaults``):
``--help`` and a usage error import nothing else. A command imports what it runs when it
runs, so ``ready`` never loads ``serve`` and no command loads what only another needs.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from .._errors import HealthError
from .._text import one_line
from .._version import __version__
from ..monitor import (
    DEFAULT_DESCRIBE_TIMEOUT,
    DEFAULT_INFERENCE_URL,
    DEFAULT_LISTEN,
    DEFAULT_MANAGEMENT_URL,
    DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_SERVE_INTERVAL,
    DEFAULT_STALE_AFTER,
    DEFAULT_STATE_DIR_SHOWN,
    DEFAULT_WAIT_INTERVAL,
    ENV_DESCRIBE_TIMEOUT,
    ENV_INFERENCE_URL,
    ENV_KEY_FILE,
    ENV_MANAGEMENT_URL,
    ENV_REQUEST_TIMEOUT,
    ENV_SERVE_TOKEN,
    ENV_STATE_DIR,
    ENV_TOKEN,
    ExitCode,
    ReadinessPolicy,
    exit_code_for,
    label_for,
    message_for,
    positive_seconds,
)

if TYPE_CHECKING:
    from ..monitor import Io, Settings

__all__ = ["build_parser", "main", "run"]

#: A command: resolved settings, the parsed arguments, where output goes; the exit code.
Command = Callable[["Settings", argparse.Namespace, "Io"], int]

EPILOG: Final = f"""\
exit codes:
  0  ok: alive / ready (degraded, saturated, unstable too with --allow-degraded,
     --allow-saturated, --allow-unstable)
  1  not ready: initializing, failing, unhealthy, stuck, saturated, unstable,
     degraded; /ping unhealthy; wait gave up
  2  usage or configuration error: bad option, bad URL, unreadable key file, key
     expired, token refused, unknown model
  3  unreachable: connection refused, timeout, unknown host
  4  an answer TorchServe would not give: not HTTP, not JSON, wrong shape
  5  internal error of ts-health

environment (options win):
  {ENV_INFERENCE_URL}, {ENV_MANAGEMENT_URL}, {ENV_TOKEN}, {ENV_KEY_FILE},
  {ENV_REQUEST_TIMEOUT}, {ENV_DESCRIBE_TIMEOUT}, {ENV_STATE_DIR}

Connection options work before and after the command. See docs/probe.md.
"""


def _probe(name: str) -> Command:
    """The probe's command ``name``, imported when it runs."""

    def command(settings: Settings, args: argparse.Namespace, io: Io) -> int:
        from ..probe import COMMANDS as PROBE_COMMANDS

        return PROBE_COMMANDS[name](settings, args, io)

    command.__name__ = command.__qualname__ = f"cmd_{name}"
    return command


def _serve(settings: Settings, args: argparse.Namespace, io: Io) -> int:
    # Imported here: the other commands never load the server (nor prometheus_client).
    from ..serve import cmd_serve

    return cmd_serve(settings, args, io)


#: The commands that keep running, for which :func:`main` turns the garbage collector back on.
LONG_RUNNING: Final = frozenset({"serve", "wait"})

#: Every command: the probe's, and ``serve``; only this module knows both.
COMMANDS: Final[dict[str, Command]] = {
    **{name: _probe(name) for name in ("ping", "ready", "status", "wait")},
    "serve": _serve,
}


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter, given the terminal's width: asking for it itself, it imports
    ``shutil`` (and with it zlib, bz2 and lzma) to build any parser, not only for ``--help``."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        width = _columns() - 2 if width is None else width
        super().__init__(prog, indent_increment, max_help_position, width)


def _columns() -> int:
    """The terminal's width as ``shutil.get_terminal_size()`` finds it: ``$COLUMNS``, else the
    width of the terminal on stdout, else 80."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    stdout = sys.__stdout__
    if columns <= 0 and stdout is not None:
        try:
            columns = os.get_terminal_size(stdout.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class _Parser(argparse.ArgumentParser):
    """Usage errors on one line, exit code 2."""

    def error(self, message: str) -> Any:  # argparse types this NoReturn
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


#: The connection options every command takes, in ``--help``'s order: each flag and what
#: ``add_argument`` is given for it.
_CONNECTION_OPTIONS: Final[tuple[tuple[str, dict[str, Any]], ...]] = (
    (
        "--inference-url",
        dict(
            metavar="URL",
            help=f"inference API (${ENV_INFERENCE_URL}, default {DEFAULT_INFERENCE_URL})",
        ),
    ),
    (
        "--management-url",
        dict(
            metavar="URL",
            help=f"management API (${ENV_MANAGEMENT_URL}, default {DEFAULT_MANAGEMENT_URL})",
        ),
    ),
    (
        "--token",
        dict(metavar="TOKEN", help=f"bearer token for both APIs (${ENV_TOKEN}); never printed"),
    ),
    (
        "--key-file",
        dict(
            metavar="PATH",
            help=f"TorchServe's key_file.json: management and inference keys (${ENV_KEY_FILE})",
        ),
    ),
    (
        "--renew-key",
        dict(
            action="store_true",
            help="renew the key file's management key through TorchServe's token API (with the "
            "API key) when it has expired or is about to; never the inference key",
        ),
    ),
    (
        "--request-timeout",
        dict(
            metavar="S",
            type=positive_seconds,
            help=f"seconds per request (${ENV_REQUEST_TIMEOUT}, "
            f"default {DEFAULT_REQUEST_TIMEOUT:g})",
        ),
    ),
    (
        "--describe-timeout",
        dict(
            metavar="S",
            type=positive_seconds,
            help="seconds for the customized describe, which waits behind inference "
            f"(${ENV_DESCRIBE_TIMEOUT}, default {DEFAULT_DESCRIBE_TIMEOUT:g})",
        ),
    ),
    (
        "--state-dir",
        dict(
            metavar="DIR",
            help=f"where workers persist initialization records (${ENV_STATE_DIR}, "
            f"default {DEFAULT_STATE_DIR_SHOWN})",
        ),
    ),
    ("--json", dict(action="store_true", help="print JSON for machines")),
)


def _add_connection_options(parser: argparse.ArgumentParser, *, subcommand: bool) -> None:
    """The connection options, a group of their own in ``parser``'s help; their defaults are
    argparse's (``None``, ``False`` for a flag), none in a subcommand."""
    group = parser.add_argument_group("connection options")
    for flag, options in _CONNECTION_OPTIONS:
        # In a subcommand, an option not given must not overwrite the one given before it.
        given = {**options, "default": argparse.SUPPRESS} if subcommand else options
        group.add_argument(flag, **given)


def _add_model_options(sub: argparse.ArgumentParser, *, optional: bool = False) -> None:
    """``MODEL`` (optional: every model when left out), ``--version`` and the readiness
    policy's options."""
    sub.add_argument("model", metavar="MODEL", nargs="?" if optional else None)
    sub.add_argument(
        "--version", metavar="V", help="model version (default: the model's default version)"
    )
    ReadinessPolicy.add_options(sub)


def _add_ping(ping: argparse.ArgumentParser) -> None:
    _add_connection_options(ping, subcommand=True)


def _add_ready(ready: argparse.ArgumentParser) -> None:
    _add_model_options(ready)
    _add_connection_options(ready, subcommand=True)


def _add_status(status: argparse.ArgumentParser) -> None:
    _add_model_options(status, optional=True)
    _add_connection_options(status, subcommand=True)


def _add_wait(wait: argparse.ArgumentParser) -> None:
    _add_model_options(wait)
    wait.add_argument(
        "--timeout",
        metavar="S",
        type=positive_seconds,
        required=True,
        help="give up after S seconds",
    )
    wait.add_argument(
        "--interval",
        metavar="S",
        type=positive_seconds,
        default=DEFAULT_WAIT_INTERVAL,
        help=f"seconds between polls (default {DEFAULT_WAIT_INTERVAL:g})",
    )
    wait.add_argument(
        "--fail-fast",
        action="store_true",
        help="stop at the first failed initialization instead of waiting for TorchServe's retries",
    )
    _add_connection_options(wait, subcommand=True)


def _add_serve(serve: argparse.ArgumentParser) -> None:
    # No defaults here: serve._options applies them (an option not given stays None).
    serve.add_argument(
        "--listen", metavar="HOST:PORT", help=f"where to listen (default {DEFAULT_LISTEN})"
    )
    serve.add_argument(
        "--interval",
        metavar="S",
        type=positive_seconds,
        help=f"seconds between observations (default {DEFAULT_SERVE_INTERVAL:g})",
    )
    serve.add_argument(
        "--stale-after",
        metavar="S",
        type=positive_seconds,
        help="readiness answers 503 when the observation is older "
        f"(default {DEFAULT_STALE_AFTER:g})",
    )
    serve.add_argument(
        "--model",
        metavar="NAME",
        action="append",
        dest="models",
        help="watch this model only (repeatable; default: every registered model)",
    )
    ReadinessPolicy.add_options(serve)
    serve.add_argument(
        "--auth-token-file",
        metavar="PATH",
        help=f"bearer token required for /status, /metrics and / (${ENV_SERVE_TOKEN})",
    )
    _add_connection_options(serve, subcommand=True)


#: Every command's parser, in ``--help``'s order: its line of help (its description too) and
#: what adds its options.
_SUBCOMMANDS: Final[dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]]] = {
    "ping": ("server liveness: GET /ping on the inference API", _add_ping),
    "ready": (
        "readiness: a READY worker, a health status that is not failing, a job queue not full",
        _add_ready,
    ),
    "status": ("every model (or MODEL) with its state and the reason", _add_status),
    "wait": ("block until MODEL is ready, has failed, or --timeout passes", _add_wait),
    "serve": ("per-model readiness over HTTP, Prometheus metrics, a page", _add_serve),
}


def build_parser(commands: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The ``ts-health`` argument parser (also used to check the Kubernetes examples).

    Args:
        commands: the commands given their options (default: every one); the others are
            listed with their help only. :func:`run` passes the words of its command line,
            so that the command it runs is built whole and the others cost nothing more.
    """
    parser = _Parser(
        prog="ts-health",
        description="Is a TorchServe model ready, and if not, why?",
        epilog=EPILOG,
        formatter_class=_Formatter,
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"ts-health {__version__} (ts-health-handler)",
        help="print the version and exit",
    )
    _add_connection_options(parser, subcommand=False)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_text, add_options) in _SUBCOMMANDS.items():
        sub = subparsers.add_parser(
            name, help=help_text, description=help_text, epilog=EPILOG, formatter_class=_Formatter
        )
        if commands is None or name in commands:
            add_options(sub)
    return parser


def run(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    io: Io | None = None,
) -> int:
    """Parse ``argv``, run the command, return the exit code; never raises, never a traceback."""
    environ = os.environ if environ is None else environ
    # The command argparse runs is one of the words given; only those commands get options.
    parser = build_parser(set(sys.argv[1:] if argv is None else argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed on one line
        return exc.code if isinstance(exc.code, int) else ExitCode.USAGE
    # Only now: --help and usage errors need neither.
    from ..monitor import Io, resolve_settings

    if args.command in LONG_RUNNING:
        gc.enable()

    io = io or Io(sys.stdout, sys.stderr)
    want_json = bool(getattr(args, "json", False))
    try:
        settings = resolve_settings(args, environ)
        if settings.token:
            io.secrets.add(settings.token)
        return COMMANDS[args.command](settings, args, io)
    except HealthError as exc:
        code, message = exit_code_for(exc), message_for(exc)
        io.err(f"ts-health: {label_for(code)}: {one_line(message)}")
        if want_json:
            import json

            document = {"command": args.command, "exit_code": code, "error": message}
            io.out(json.dumps(document, indent=2))
        return code
    except KeyboardInterrupt:
        io.err("ts-health: interrupted")
        return ExitCode.INTERRUPTED
    except Exception as exc:  # a bug of ours: still one line, never a traceback
        io.err(
            f"ts-health: internal error: {type(exc).__name__}: {one_line(str(exc), 300)} "
            "(please report it)"
        )
        return ExitCode.INTERNAL


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``ts-health``: UTF-8 out whatever the locale, then :func:`run`.

    Meant to end the process (``python -m ts_health_handler``, the console script): see the
    last step.
    """
    # A one-shot command's objects are nearly all the modules and classes its imports define,
    # alive until the process ends: the collector's passes over them while importing cost a
    # few milliseconds of a `ready` run (2 to 8 ms of CPU here) and free nothing. `run` turns
    # it back on for the commands that keep running (serve, wait).
    gc.disable()
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(encoding="utf-8", errors="backslashreplace")
    try:
        code = run(argv)
    finally:
        gc.enable()
    # The process ends next, and the interpreter's last garbage collection would walk every
    # object the imports made: about a tenth of a `ready` run. Nothing of ours waits on it
    # (no file is left open; stdout and stderr are flushed at exit all the same).
    gc.freeze()
    return code
