"""Options of ``ts-health serve`` that the other commands do not have, resolved once."""

from __future__ import annotations

import argparse
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

# Defined with every other option's name and default, for --help; DEFAULT_INTERVAL is serve's
# name for its interval (the package exports it).
from ..monitor import DEFAULT_LISTEN, DEFAULT_STALE_AFTER, ENV_SERVE_TOKEN, UsageError
from ..monitor import DEFAULT_SERVE_INTERVAL as DEFAULT_INTERVAL

__all__ = [
    "DEFAULT_INTERVAL",
    "DEFAULT_LISTEN",
    "DEFAULT_STALE_AFTER",
    "ENV_SERVE_TOKEN",
    "ServeOptions",
    "parse_listen",
    "serve_options",
]

#: Longest accepted bearer token file: a token, not a document.
TOKEN_FILE_LIMIT: Final = 4096


@dataclass(frozen=True)
class ServeOptions:
    """Where to listen, how often to look, what to watch, and the bearer token (hidden)."""

    host: str
    port: int
    interval: float = DEFAULT_INTERVAL
    stale_after: float = DEFAULT_STALE_AFTER
    #: The models named with ``--model``; empty: every registered model.
    models: tuple[str, ...] = ()
    #: Required for ``/status``, ``/metrics`` and ``/`` when set.
    auth_token: str | None = None

    def __repr__(self) -> str:  # never show the token
        token = "set" if self.auth_token else "none"
        return f"ServeOptions({self.host!r}, {self.port}, models={self.models!r}, token={token})"

    @property
    def loopback(self) -> bool:
        """Whether only this machine can connect."""
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) as ``(host, port)``; port 0 picks a free one."""
    host, sep, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not sep or not host or not 0 <= port <= 65535:
        raise UsageError(f"invalid --listen {text!r}: expected HOST:PORT, e.g. {DEFAULT_LISTEN}")
    return host, port


def _token(args: argparse.Namespace, environ: Mapping[str, str]) -> str | None:
    path = getattr(args, "auth_token_file", None)
    if path:
        try:
            with Path(path).open("rb") as handle:
                data = handle.read(TOKEN_FILE_LIMIT + 1)
        except OSError as exc:
            raise UsageError(
                f"cannot read --auth-token-file {path}: {exc.strerror or exc}"
            ) from None
        if len(data) > TOKEN_FILE_LIMIT:
            raise UsageError(f"--auth-token-file {path} is longer than {TOKEN_FILE_LIMIT} bytes")
        token = data.decode("utf-8", errors="replace").strip()
        if not token:
            raise UsageError(f"--auth-token-file {path} is empty")
        return _checked(token, f"--auth-token-file {path}")
    token = environ.get(ENV_SERVE_TOKEN, "").strip()
    return _checked(token, f"${ENV_SERVE_TOKEN}") if token else None


def _checked(token: str, source: str) -> str:
    """``token`` if a client can send it: HTTP reads a header as Latin-1, so a token that is
    not printable ASCII would never match the one sent; refused at start, never shown."""
    if not token.isascii() or any(c.isspace() or not c.isprintable() for c in token):
        raise UsageError(
            f"invalid bearer token from {source}: expected printable ASCII without whitespace "
            f"({len(token)} characters; not shown)"
        )
    return token


def serve_options(args: argparse.Namespace, environ: Mapping[str, str]) -> ServeOptions:
    """The serve options from the parsed command line and the environment."""
    host, port = parse_listen(getattr(args, "listen", None) or DEFAULT_LISTEN)
    interval = getattr(args, "interval", None) or DEFAULT_INTERVAL
    stale_after = getattr(args, "stale_after", None) or DEFAULT_STALE_AFTER
    if stale_after <= interval:
        raise UsageError(
            f"--stale-after {stale_after:g} must be longer than --interval {interval:g}"
        )
    models = tuple(dict.fromkeys(getattr(args, "models", None) or ()))
    return ServeOptions(
        host=host,
        port=port,
        interval=interval,
        stale_after=stale_after,
        models=models,
        auth_token=_token(args, environ),
    )
