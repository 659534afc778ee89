"""Resolved options of ``ts-health``: command line first, then environment, then defaults."""

# No `from __future__ import annotations`: typing would compile each named-tuple field's
# annotation when ts-health starts (docs/architecture.md, "Start-up").
import argparse
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple, Optional
from urllib.parse import urlsplit

from ..record import ENV_STATE_DIR, resolve_state_dir
from ..torchserve import Api, KeyFileError, Keys, TorchServeClient
from ._defaults import (
    DEFAULT_DESCRIBE_TIMEOUT,
    DEFAULT_INFERENCE_URL,
    DEFAULT_MANAGEMENT_URL,
    DEFAULT_REQUEST_TIMEOUT,
    ENV_DESCRIBE_TIMEOUT,
    ENV_INFERENCE_URL,
    ENV_KEY_FILE,
    ENV_MANAGEMENT_URL,
    ENV_REQUEST_TIMEOUT,
    ENV_TOKEN,
    positive_seconds,
)
from ._exit import UsageError
from ._policy import READY_ONLY, ReadinessPolicy

__all__ = [
    "DEFAULT_DESCRIBE_TIMEOUT",
    "DEFAULT_INFERENCE_URL",
    "DEFAULT_MANAGEMENT_URL",
    "DEFAULT_REQUEST_TIMEOUT",
    "ENV_DESCRIBE_TIMEOUT",
    "ENV_INFERENCE_URL",
    "ENV_KEY_FILE",
    "ENV_MANAGEMENT_URL",
    "ENV_REQUEST_TIMEOUT",
    "ENV_TOKEN",
    "Settings",
    "check_base_url",
    "clean_token",
    "client_for",
    "positive_seconds",
    "resolve_settings",
]


class Settings(NamedTuple):
    """Resolved options: command line first, then environment, then defaults."""

    inference_url: str
    management_url: str
    token: Optional[str]
    token_source: Optional[str]
    key_file: Optional[str]
    request_timeout: float
    describe_timeout: float
    state_dir: Path
    json: bool
    #: Which states count as ready (``--allow-degraded``, ``--allow-saturated``).
    readiness: ReadinessPolicy = READY_ONLY
    #: Renew an expired (or about to expire) management key through TorchServe's token API.
    renew_key: bool = False

    def __repr__(self) -> str:  # never show the token
        return f"Settings({self.inference_url!r}, {self.management_url!r}, ...)"


def client_for(
    settings: Settings,
    *,
    clock: Callable[[], float] = time.monotonic,
    deadline: Optional[float] = None,
    wall: Callable[[], float] = time.time,
    secrets: Optional[set[str]] = None,
) -> TorchServeClient:
    """A :class:`TorchServeClient` with the tokens the settings name (a key file is read now).

    With :attr:`Settings.renew_key`, a management key that has expired, or would expire within
    this run's own time (request plus describe timeout), is renewed first with the key file's
    API key. The inference key is never renewed: clients of the inference API hold it.

    Args:
        secrets: the keys read are added to it, so that output can redact them.

    Raises:
        KeyFileError: the key file cannot be read, lacks a key, or (renewing) the API key.
        Refused: TorchServe refused the API key. Unreachable, BadAnswer: while renewing.
    """
    source = settings.token_source
    keys: Optional[Keys] = None
    if not settings.token and settings.key_file:
        source = f"key file {settings.key_file}"
        keys = _keys_of(settings, settings.key_file, source, clock, deadline, wall, secrets)
    return TorchServeClient(
        *_apis(settings, keys),
        token_source=source,
        request_timeout=settings.request_timeout,
        describe_timeout=settings.describe_timeout,
        clock=clock,
        deadline=deadline,
        wall=wall,
    )


def _keys_of(
    settings: Settings,
    key_file: str,
    source: str,
    clock: Callable[[], float],
    deadline: Optional[float],
    wall: Callable[[], float],
    secrets: Optional[set[str]],
) -> Keys:
    """The keys of ``key_file``, the management key renewed first when it is due."""
    keys = Keys.from_key_file(key_file)
    if secrets is not None:
        secrets.update(k for k in (keys.management, keys.inference, keys.api) if k)
    margin = settings.request_timeout + settings.describe_timeout
    expires = keys.management_expires_at
    if settings.renew_key and expires is not None and expires - wall() <= margin:
        if keys.api is None:
            raise KeyFileError(
                f"key file {key_file} has no API key: cannot renew the management key"
            )
        renewer = TorchServeClient(
            Api("inference API", settings.inference_url),
            Api("management API", settings.management_url),
            token_source=f"the API key of {source}",
            request_timeout=settings.request_timeout,
            clock=clock,
            deadline=deadline,
            wall=wall,
        )
        renewer.renew_key("management", keys.api)
        keys = Keys.from_key_file(key_file)
        if secrets is not None:
            secrets.update(k for k in (keys.management, keys.inference) if k)
    return keys


def _apis(settings: Settings, keys: Optional[Keys]) -> tuple[Api, Api]:
    """The inference and management APIs, with the keys' tokens, else the settings' token."""
    if keys is None:
        return (
            Api("inference API", settings.inference_url, settings.token),
            Api("management API", settings.management_url, settings.token),
        )
    return (
        Api(
            "inference API",
            settings.inference_url,
            keys.inference,
            expires_at=keys.inference_expires_at,
            key_type="inference",
        ),
        Api(
            "management API",
            settings.management_url,
            keys.management,
            expires_at=keys.management_expires_at,
            key_type="management",
        ),
    )


def clean_token(token: Optional[str], source: str) -> Optional[str]:
    """``token`` without surrounding whitespace (a secret file's trailing newline), or
    ``None`` when nothing is left.

    Raises:
        UsageError: whitespace, a control character or a character that is not ASCII
            inside; the token is never shown.
    """
    if token is None:
        return None
    token = token.strip()
    if any(c.isspace() or not c.isprintable() for c in token):
        raise UsageError(
            f"invalid token from {source}: it holds whitespace or a control character "
            f"({len(token)} characters; not shown)"
        )
    if not token.isascii():  # a bearer token is ASCII (RFC 6750); TorchServe's keys are
        raise UsageError(
            f"invalid token from {source}: it holds a character that is not ASCII "
            f"({len(token)} characters; not shown)"
        )
    return token or None


def check_base_url(option: str, url: str) -> str:
    """``url`` without a trailing slash, or a :class:`UsageError` naming ``option``."""
    expected = "expected http://HOST:PORT or https://HOST:PORT"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UsageError(f"invalid {option} {url!r}: {expected}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"invalid {option} {url!r}: {expected}")
    if parts.username is not None or parts.password is not None:
        # Do not echo the URL: it holds a secret.
        raise UsageError(f"invalid {option}: credentials in the URL are not supported; use --token")
    if parts.query or parts.fragment:
        raise UsageError(f"invalid {option} {url!r}: {expected} (no query)")
    del port  # parsed only to reject a malformed port early
    return url.rstrip("/")


def _setting(args: argparse.Namespace, name: str, environ: Mapping[str, str], env: str) -> Any:
    value = getattr(args, name, None)
    if value is not None:
        return value
    from_env = environ.get(env)
    return from_env if from_env else None


def _env_seconds(value: Any, env: str, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, float):
        return value
    try:
        return positive_seconds(value)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"invalid ${env}: {exc}") from None


def resolve_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """Command line first, then environment, then defaults; URLs and numbers checked."""
    inference = _setting(args, "inference_url", environ, ENV_INFERENCE_URL)
    management = _setting(args, "management_url", environ, ENV_MANAGEMENT_URL)
    inference_option = "--inference-url" if args.inference_url else f"${ENV_INFERENCE_URL}"
    management_option = "--management-url" if args.management_url else f"${ENV_MANAGEMENT_URL}"
    # The command line beats the environment, a token beats a key file at the same level.
    token, source, key_file = clean_token(args.token, "--token"), "--token", args.key_file
    if not token and not key_file:
        token, source = clean_token(environ.get(ENV_TOKEN), f"${ENV_TOKEN}"), f"${ENV_TOKEN}"
        key_file = environ.get(ENV_KEY_FILE) or None
    state_dir = args.state_dir or environ.get(ENV_STATE_DIR) or None
    return Settings(
        inference_url=check_base_url(inference_option, inference or DEFAULT_INFERENCE_URL),
        management_url=check_base_url(management_option, management or DEFAULT_MANAGEMENT_URL),
        token=token,
        token_source=source if token else None,
        key_file=key_file,
        request_timeout=_env_seconds(
            _setting(args, "request_timeout", environ, ENV_REQUEST_TIMEOUT),
            ENV_REQUEST_TIMEOUT,
            DEFAULT_REQUEST_TIMEOUT,
        ),
        describe_timeout=_env_seconds(
            _setting(args, "describe_timeout", environ, ENV_DESCRIBE_TIMEOUT),
            ENV_DESCRIBE_TIMEOUT,
            DEFAULT_DESCRIBE_TIMEOUT,
        ),
        state_dir=resolve_state_dir(state_dir),
        json=bool(args.json),
        readiness=ReadinessPolicy.from_args(args),
        renew_key=bool(getattr(args, "renew_key", False)),
    )
