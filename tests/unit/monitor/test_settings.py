"""Resolved settings (``monitor._settings``): the command line first, then the environment, then
the defaults; tokens and URLs checked; the client given the tokens they name. The same rules
through ``ts-health`` itself: tests/unit/probe/test_options.py and test_tokens.py."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from tests.support.key_files import SECRET, expiring_key_file, write_key_file
from tests.support.records import NOW
from ts_health_handler.cli import build_parser
from ts_health_handler.monitor._defaults import (
    DEFAULT_DESCRIBE_TIMEOUT,
    DEFAULT_INFERENCE_URL,
    DEFAULT_MANAGEMENT_URL,
    DEFAULT_REQUEST_TIMEOUT,
)
from ts_health_handler.monitor._exit import UsageError
from ts_health_handler.monitor._settings import (
    Settings,
    check_base_url,
    clean_token,
    client_for,
    resolve_settings,
)
from ts_health_handler.torchserve._answers import KeyFileError

EXPECTED = "expected http://HOST:PORT or https://HOST:PORT"


@pytest.fixture(autouse=True)
def _no_state_dir_from_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # resolve_state_dir() falls back on this process's own $TS_HEALTH_STATE_DIR.
    monkeypatch.delenv("TS_HEALTH_STATE_DIR", raising=False)


def resolve(*argv: str, **environ: str) -> Settings:
    """``ts-health status ARGV`` resolved with ``environ`` as the environment."""
    return resolve_settings(build_parser().parse_args(["status", *argv]), environ)


def test_defaults_when_neither_the_command_line_nor_the_environment_says() -> None:
    settings = resolve(TS_HEALTH_INFERENCE_URL="", TS_HEALTH_REQUEST_TIMEOUT="")
    assert (settings.inference_url, settings.management_url) == (
        DEFAULT_INFERENCE_URL,
        DEFAULT_MANAGEMENT_URL,
    )
    assert (settings.request_timeout, settings.describe_timeout) == (
        DEFAULT_REQUEST_TIMEOUT,
        DEFAULT_DESCRIBE_TIMEOUT,
    )
    assert (settings.token, settings.token_source, settings.key_file) == (None, None, None)
    assert settings.state_dir == Path(tempfile.gettempdir()) / "ts-health"
    assert (settings.json, settings.renew_key) == (False, False)


def test_the_command_line_beats_the_environment(tmp_path: Path) -> None:
    environ = {
        "TS_HEALTH_INFERENCE_URL": "http://env:1",
        "TS_HEALTH_MANAGEMENT_URL": "http://env:2",
        "TS_HEALTH_REQUEST_TIMEOUT": "7",
        "TS_HEALTH_DESCRIBE_TIMEOUT": "8.5",
        "TS_HEALTH_STATE_DIR": str(tmp_path / "env"),
    }
    from_env = resolve(**environ)
    assert (from_env.inference_url, from_env.management_url) == ("http://env:1", "http://env:2")
    assert (from_env.request_timeout, from_env.describe_timeout) == (7.0, 8.5)
    assert from_env.state_dir == tmp_path / "env"
    given = resolve(
        *("--inference-url", "http://cli:1/", "--management-url", "https://cli:2"),
        *("--request-timeout", "3", "--describe-timeout", "4"),
        *("--state-dir", str(tmp_path / "cli"), "--json", "--renew-key"),
        **environ,
    )
    assert (given.inference_url, given.management_url) == ("http://cli:1", "https://cli:2")
    assert (given.request_timeout, given.describe_timeout) == (3.0, 4.0)
    assert given.state_dir == tmp_path / "cli"
    assert (given.json, given.renew_key) == (True, True)


def test_a_token_beats_a_key_file_and_the_environment_counts_only_without_either(
    tmp_path: Path,
) -> None:
    key_file = str(write_key_file(tmp_path / "key_file.json"))
    both = resolve("--token", "t1", "--key-file", key_file, TS_HEALTH_TOKEN="t2")
    assert (both.token, both.token_source, both.key_file) == ("t1", "--token", key_file)
    # A key file on the command line: the environment's token is not looked at.
    only_file = resolve("--key-file", key_file, TS_HEALTH_TOKEN="t2")
    assert (only_file.token, only_file.token_source, only_file.key_file) == (None, None, key_file)
    from_env = resolve(TS_HEALTH_TOKEN=" t2\n", TS_HEALTH_KEY_FILE=key_file)
    assert (from_env.token, from_env.token_source) == ("t2", "$TS_HEALTH_TOKEN")
    assert resolve(TS_HEALTH_KEY_FILE=key_file).key_file == key_file
    assert resolve(TS_HEALTH_TOKEN="\n").token_source is None


def test_the_settings_repr_shows_no_token() -> None:
    settings = resolve("--token", SECRET, "--inference-url", "http://h:1")
    assert repr(settings) == f"Settings('http://h:1', {DEFAULT_MANAGEMENT_URL!r}, ...)"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TS_HEALTH_REQUEST_TIMEOUT", "0"),
        ("TS_HEALTH_REQUEST_TIMEOUT", "inf"),
        ("TS_HEALTH_DESCRIBE_TIMEOUT", "-1"),
        ("TS_HEALTH_DESCRIBE_TIMEOUT", "2s"),
    ],
)
def test_a_bad_timeout_in_the_environment_names_the_variable(variable: str, value: str) -> None:
    with pytest.raises(UsageError) as caught:
        resolve(**{variable: value})
    assert str(caught.value) == (
        f"invalid ${variable}: expected a number of seconds above 0, got {value!r}"
    )


def test_a_bad_url_names_where_it_came_from() -> None:
    with pytest.raises(UsageError, match=r"^invalid \$TS_HEALTH_MANAGEMENT_URL 'h:1': "):
        resolve(TS_HEALTH_MANAGEMENT_URL="h:1")
    with pytest.raises(UsageError, match=r"^invalid --inference-url 'h:1': "):
        resolve("--inference-url", "h:1", TS_HEALTH_INFERENCE_URL="http://fine:1")


# -- tokens and URLs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "kept"), [(None, None), ("", None), (" \r\n", None), ("  abc\n", "abc")]
)
def test_a_token_is_stripped_and_none_when_nothing_is_left(given: str | None, kept: str) -> None:
    assert clean_token(given, "--token") == kept


@pytest.mark.parametrize("inside", [" ", "\t", "\x00", "\u200b"])
def test_a_token_with_whitespace_or_a_control_inside_is_refused_unseen(inside: str) -> None:
    token = SECRET[:6] + inside + SECRET[6:]
    with pytest.raises(UsageError) as caught:
        clean_token(token, "$TS_HEALTH_TOKEN")
    assert str(caught.value) == (
        "invalid token from $TS_HEALTH_TOKEN: it holds whitespace or a control character "
        f"({len(token)} characters; not shown)"
    )


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("http://h:8080", "http://h:8080"),
        ("https://h:8443/", "https://h:8443"),
        ("http://[::1]:8080//", "http://[::1]:8080"),
        ("http://h", "http://h"),
    ],
)
def test_a_base_url_loses_its_trailing_slashes(url: str, kept: str) -> None:
    assert check_base_url("--inference-url", url) == kept


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("localhost:8081", f"invalid --x 'localhost:8081': {EXPECTED}"),
        ("ftp://h:21", f"invalid --x 'ftp://h:21': {EXPECTED}"),
        ("http://:8080", f"invalid --x 'http://:8080': {EXPECTED}"),
        ("http://h:99999", f"invalid --x 'http://h:99999': {EXPECTED}"),
        ("http://h:1/?x=1", f"invalid --x 'http://h:1/?x=1': {EXPECTED} (no query)"),
        ("http://h:1#top", f"invalid --x 'http://h:1#top': {EXPECTED} (no query)"),
        (f"http://me:{SECRET}@h:1", "invalid --x: credentials in the URL are not supported"),
    ],
)
def test_a_bad_base_url_is_refused_and_a_password_never_echoed(url: str, why: str) -> None:
    with pytest.raises(UsageError) as caught:
        check_base_url("--x", url)
    assert str(caught.value).startswith(why)
    assert SECRET not in str(caught.value)


# -- the client -------------------------------------------------------------------------------


def test_a_token_goes_to_both_apis_and_is_named_by_its_source() -> None:
    client = client_for(resolve("--token", SECRET))
    assert (client.inference.token, client.management.token) == (SECRET, SECRET)
    assert (client.inference.key_type, client.management.expires_at) == (None, None)
    assert client.token_source == "--token"


def test_a_key_file_gives_each_api_its_key_and_its_keys_to_the_secrets(tmp_path: Path) -> None:
    path = expiring_key_file(tmp_path / "key_file.json", management_at=NOW + 60, inference_at=NOW)
    secrets: set[str] = set()
    client = client_for(resolve("--key-file", str(path)), secrets=secrets, wall=lambda: NOW)
    assert (client.inference.token, client.management.token) == ("inf-" + SECRET, "mgmt-" + SECRET)
    assert (client.inference.key_type, client.management.key_type) == ("inference", "management")
    assert client.management.expires_at == pytest.approx(NOW + 60, abs=1e-3)
    assert client.token_source == f"key file {path}"
    assert secrets == {"inf-" + SECRET, "mgmt-" + SECRET, "api-" + SECRET}


def test_renewing_a_key_needs_the_key_files_api_key(tmp_path: Path) -> None:
    path = tmp_path / "key_file.json"
    expired = {"key": "mgmt-" + SECRET, "expiration time": "2025-06-15T15:06:39Z"}
    path.write_text(json.dumps({"management": expired, "inference": {"key": "i"}}))
    settings = resolve("--key-file", str(path), "--renew-key")
    with pytest.raises(KeyFileError) as caught:
        client_for(settings, wall=lambda: NOW)
    assert str(caught.value) == (f"key file {path} has no API key: cannot renew the management key")
    # Without --renew-key the expired key is kept, to be named when it is refused.
    assert client_for(resolve("--key-file", str(path)), wall=lambda: NOW).management.token
