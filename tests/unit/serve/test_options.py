"""``ts-health serve``'s own options: --listen, intervals, --model and the bearer token."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from ts_health_handler.cli import build_parser
from ts_health_handler.probe import UsageError
from ts_health_handler.serve._options import parse_listen, serve_options


def parsed(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["serve", *argv])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8090", ("127.0.0.1", 8090)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        ("[::1]:9000", ("::1", 9000)),
        ("localhost:80", ("localhost", 80)),
    ],
)
def test_listen(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["8090", ":8090", "host:", "host:x", "host:70000", "h:-1"])
def test_bad_listen(text: str) -> None:
    with pytest.raises(UsageError, match="expected HOST:PORT"):
        parse_listen(text)


def test_defaults_and_loopback() -> None:
    options = serve_options(parsed(), {})
    assert (options.host, options.port, options.interval, options.stale_after) == (
        "127.0.0.1",
        8090,
        2.0,
        10.0,
    )
    assert options.models == ()
    assert options.auth_token is None
    assert options.loopback
    assert not serve_options(parsed("--listen", "0.0.0.0:1"), {}).loopback


def test_models_repeat_once_each() -> None:
    options = serve_options(parsed("--model", "a", "--model", "b", "--model", "a"), {})
    assert options.models == ("a", "b")


def test_stale_after_must_exceed_interval() -> None:
    with pytest.raises(UsageError, match="--stale-after 2 must be longer than --interval 2"):
        serve_options(parsed("--interval", "2", "--stale-after", "2"), {})


def test_token_from_file_then_environment(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("  from-file\n")
    env = {"TS_HEALTH_SERVE_TOKEN": "from-env"}
    assert serve_options(parsed("--auth-token-file", str(secret)), env).auth_token == "from-file"
    options = serve_options(parsed(), env)
    assert options.auth_token == "from-env"
    assert "from-env" not in repr(options)


@pytest.mark.parametrize(
    ("content", "message"),
    [("", "is empty"), ("x" * 5000, "longer than 4096 bytes")],
)
def test_bad_token_files(tmp_path: Path, content: str, message: str) -> None:
    secret = tmp_path / "token"
    secret.write_text(content)
    with pytest.raises(UsageError, match=message):
        serve_options(parsed("--auth-token-file", str(secret)), {})


@pytest.mark.parametrize("token", ["t\u20acken", "two words", "tab\tinside", "caf\xe9"])
def test_a_token_no_client_could_send_is_refused_at_start(tmp_path: Path, token: str) -> None:
    path = tmp_path / "token"
    path.write_text(token + "\n", encoding="utf-8")
    expected = "expected printable ASCII without whitespace"
    with pytest.raises(UsageError, match=f"^invalid bearer token from --auth-token-file {path}:"):
        serve_options(parsed("--auth-token-file", str(path)), {})
    with pytest.raises(UsageError, match=f"TS_HEALTH_SERVE_TOKEN: {expected}") as caught:
        serve_options(parsed(), {"TS_HEALTH_SERVE_TOKEN": token})
    assert token not in str(caught.value)
