"""Tokens and key files: refused or missing tokens named with their source, each API given its
key from TorchServe's key_file.json, expired keys named with how to renew them (and renewed with
--renew-key), and tokens stripped or refused unseen.

The fake TorchServe and the ``ts_health`` fixture that runs the command line in-process:
tests/unit/probe/helpers.py. Every failure is one clear line with the documented exit code,
never a traceback, and a token is never printed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_torchserve import FakeTorchServe
from tests.support.key_files import SECRET, expiring_key_file, iso, write_key_file
from tests.unit.probe.helpers import NOW, Result
from ts_health_handler.probe import ExitCode

# -- tokens ----------------------------------------------------------------------------------


def test_token_refused_on_ping(fake: FakeTorchServe, ts_health: Callable[..., Result]) -> None:
    fake.required["/ping"] = "Bearer right"
    result = ts_health("ping", "--token", SECRET)
    assert result.code == ExitCode.USAGE
    assert fake.requests[-1] == ("/ping", f"Bearer {SECRET}")
    assert result.lines == [
        f"ts-health: error: the inference API at {fake.url} refused the token from --token "
        "for GET /ping (400 InvalidKeyException: Token Authorization failed. Token either "
        "incorrect, expired, or not provided correctly); keys change when TorchServe restarts "
        "or expire"
    ]


def test_token_missing(fake: FakeTorchServe, ts_health: Callable[..., Result]) -> None:
    fake.required["/models"] = "Bearer right"
    result = ts_health("ready", "m", "--json")
    assert result.code == ExitCode.USAGE
    assert "wants a token for GET /models/m (400 InvalidKeyException" in result.err
    assert "--key-file" in result.err
    assert result.json()["exit_code"] == ExitCode.USAGE


def test_the_client_names_no_option_and_the_command_line_adds_its_own(
    fake: FakeTorchServe,
) -> None:
    # The client serves ts-health serve and the test runner too: only ts-health adds its flags.
    from ts_health_handler.monitor._exit import message_for
    from ts_health_handler.torchserve._client import Api, KeyExpired, Refused, TorchServeClient

    fake.required["/models"] = "Bearer right"
    inference = Api("inference API", fake.url)
    without = TorchServeClient(inference, Api("management API", fake.url))
    with pytest.raises(Refused) as missing:
        without.describe("m")
    expiring = Api("management API", fake.url, "k", expires_at=NOW - 1, key_type="management")
    with pytest.raises(KeyExpired) as expired:
        TorchServeClient(inference, expiring, wall=lambda: NOW).describe("m")

    assert missing.value.missing
    assert expired.value.key_type == "management"
    assert "--" not in str(missing.value) + str(expired.value)
    assert message_for(missing.value) == (
        f"{missing.value}; pass --key-file with TorchServe's key_file.json (written in its "
        "working directory) or --token"
    )
    assert message_for(expired.value) == f"{expired.value}, or pass --renew-key"


def test_token_refused_in_status_is_not_hidden(
    fake: FakeTorchServe, ts_health: Callable[..., Result]
) -> None:
    fake.required["/ping"] = "Bearer right"
    result = ts_health("status", env={"TS_HEALTH_TOKEN": SECRET})
    assert result.code == ExitCode.USAGE
    assert "refused the token from $TS_HEALTH_TOKEN" in result.err


def test_key_file_gives_each_api_its_key(
    fake: FakeTorchServe, ts_health: Callable[..., Result], tmp_path: Path
) -> None:
    fake.required = {"/ping": f"Bearer inf-{SECRET}", "/models": f"Bearer mgmt-{SECRET}"}
    key_file = write_key_file(tmp_path / "key_file.json")
    result = ts_health("status", "--json", "--key-file", str(key_file))
    assert result.code == ExitCode.OK, result.err
    assert result.json()["models"][0]["state"] == "ready"
    # From the environment as well.
    result = ts_health("ready", "m", env={"TS_HEALTH_KEY_FILE": str(key_file)})
    assert result.code == ExitCode.OK


def test_refused_key_from_key_file(
    fake: FakeTorchServe, ts_health: Callable[..., Result], tmp_path: Path
) -> None:
    fake.required = {"/models": "Bearer fresh"}
    key_file = write_key_file(tmp_path / "key_file.json")
    result = ts_health("ready", "m", "--key-file", str(key_file))
    assert result.code == ExitCode.USAGE
    assert f"refused the token from key file {key_file} for GET /models/m" in result.err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot read key file {path}: No such file or directory"),
        ("{not json", "key file {path} is not JSON; expected TorchServe's key_file.json"),
        ('{"management": {"key": "x"}}', "key file {path} has no inference key"),
        ("[]", "key file {path} has no management key"),
    ],
)
def test_bad_key_file(
    ts_health: Callable[..., Result], tmp_path: Path, content: str | None, expected: str
) -> None:
    path = tmp_path / "key_file.json"
    if content is not None:
        path.write_text(content)
    result = ts_health("ping", "--key-file", str(path))
    assert result.code == ExitCode.USAGE
    (line,) = result.lines
    assert line.startswith("ts-health: error: " + expected.format(path=path))


# -- key expiry and renewal ------------------------------------------------------------------


def test_an_odd_expiration_time_names_the_file(
    ts_health: Callable[..., Result], tmp_path: Path
) -> None:
    path = tmp_path / "key_file.json"
    path.write_text(
        json.dumps(
            {"management": {"key": "a", "expiration time": "tomorrow"}, "inference": {"key": "b"}}
        )
    )
    result = ts_health("ping", "--key-file", str(path))
    assert result.code == ExitCode.USAGE
    assert result.err == (
        f"ts-health: error: key file {path}: the management key's expiration time 'tomorrow' "
        "is not an instant like 2024-10-01T12:00:00.123Z\n"
    )


def test_an_expired_management_key_is_named_with_the_renewal_command(
    fake: FakeTorchServe, ts_health: Callable[..., Result], tmp_path: Path
) -> None:
    path = expiring_key_file(
        tmp_path / "key_file.json", management_at=NOW - 5, inference_at=NOW + 60
    )
    result = ts_health("ready", "m", "--key-file", str(path), wall=lambda: NOW)
    assert result.code == ExitCode.USAGE
    assert result.out == ""
    assert result.err == (
        f"ts-health: error: key expired at {iso(NOW - 5)[:19]}Z: the management key from key file "
        f"{path} (TorchServe's token_expiration_min); renew it with curl -s "
        f"'{fake.url}/token?type=management' -H \"Authorization: Bearer <the API key in the key "
        'file>", or pass --renew-key\n'
    )
    assert fake.requests == [], "an expired key is not sent"
    # The inference key is still good: ping works.
    assert ts_health("ping", "--key-file", str(path), wall=lambda: NOW).code == ExitCode.OK


def test_an_expired_inference_key_is_never_renewed(
    fake: FakeTorchServe, ts_health: Callable[..., Result], tmp_path: Path
) -> None:
    path = expiring_key_file(tmp_path / "key_file.json", management_at=NOW + 60, inference_at=NOW)
    result = ts_health("ping", "--key-file", str(path), "--renew-key", wall=lambda: NOW)
    assert result.code == ExitCode.USAGE
    assert "key expired at" in result.err
    assert "the inference key from key file" in result.err
    assert "gives every client of the inference API a new key" in result.err
    assert not fake.asked("/token")
    # The management API is unaffected.
    assert ts_health("ready", "m", "--key-file", str(path), wall=lambda: NOW).code == ExitCode.OK


def renewing(fake: FakeTorchServe, path: Path, new_key: str) -> None:
    """Make ``fake`` answer /token like TorchServe: rewrite the key file, then 200 ''."""
    plain = fake.answer

    def answer(request_path: str, authorization: str | None) -> tuple[int, Any, float]:
        if request_path == "/token?type=management" and authorization == f"Bearer api-{SECRET}":
            expiring_key_file(
                path, management_at=NOW + 3600, inference_at=NOW + 60, management=new_key
            )
            fake.required["/models"] = f"Bearer {new_key}"
            return 200, b"", 0.0
        return plain(request_path, authorization)

    fake.answer = answer  # type: ignore[method-assign]


def test_renew_key_renews_an_expired_management_key(
    fake: FakeTorchServe, ts_health: Callable[..., Result], tmp_path: Path
) -> None:
    path = expiring_key_file(
        tmp_path / "key_file.json", management_at=NOW - 1, inference_at=NOW + 60
    )
    fake.required = {"/models": f"Bearer mgmt-{SECRET}", "/token": f"Bearer api-{SECRET}"}
    renewing(fake, path, "fresh-" + SECRET)
    result = ts_health("ready", "m", "--key-file", str(path), "--renew-key", wall=lambda: NOW)
    assert result.code == ExitCode.OK, result.err
    assert fake.requests[0] == ("/token?type=management", f"Bearer api-{SECRET}")
    assert ("/models/m", f"Bearer fresh-{SECRET}") in fake.requests
    assert json.loads(path.read_text())["inference"]["key"] == "inf-" + SECRET


def test_renew_key_leaves_a_valid_key_alone(
    fake: FakeTorchServe, ts_health: Callable[..., Result], tmp_path: Path
) -> None:
    path = expiring_key_file(
        tmp_path / "key_file.json", management_at=NOW + 600, inference_at=NOW + 600
    )
    result = ts_health("ready", "m", "--key-file", str(path), "--renew-key", wall=lambda: NOW)
    assert result.code == ExitCode.OK
    assert not fake.asked("/token")


def test_renew_key_ahead_of_expiry(
    fake: FakeTorchServe, ts_health: Callable[..., Result], tmp_path: Path
) -> None:
    # Expiring within the run's own time (request + describe timeout): renewed first.
    path = expiring_key_file(
        tmp_path / "key_file.json", management_at=NOW + 2, inference_at=NOW + 600
    )
    renewing(fake, path, "fresh-" + SECRET)
    result = ts_health("ready", "m", "--key-file", str(path), "--renew-key", wall=lambda: NOW)
    assert result.code == ExitCode.OK, result.err
    assert fake.asked("/token?type=management")


def test_renew_key_with_a_refused_api_key(
    fake: FakeTorchServe, ts_health: Callable[..., Result], tmp_path: Path
) -> None:
    path = expiring_key_file(
        tmp_path / "key_file.json", management_at=NOW - 1, inference_at=NOW + 60
    )
    fake.required = {"/token": "Bearer another"}
    result = ts_health("ready", "m", "--key-file", str(path), "--renew-key", wall=lambda: NOW)
    assert result.code == ExitCode.USAGE
    assert result.err.startswith(
        f"ts-health: error: the management API at {fake.url} refused the token from the API key "
        f"of key file {path} for GET /token?type=management"
    )


# -- tokens as given: stripped, or refused unseen ------------------------------------------


def test_a_token_with_a_trailing_newline_works(
    fake: FakeTorchServe, ts_health: Callable[..., Result]
) -> None:
    fake.required = {"/ping": f"Bearer {SECRET}"}
    assert ts_health("ping", env={"TS_HEALTH_TOKEN": SECRET + "\n"}).code == ExitCode.OK
    assert ts_health("ping", "--token", f"  {SECRET}\r\n").code == ExitCode.OK


@pytest.mark.parametrize("token", [SECRET[:5] + "\n" + SECRET[5:], SECRET + "\x00x"])
def test_a_token_with_a_control_character_inside_is_refused_unseen(
    ts_health: Callable[..., Result], token: str
) -> None:
    result = ts_health("ping", env={"TS_HEALTH_TOKEN": token})
    assert result.code == ExitCode.USAGE
    assert "invalid token from $TS_HEALTH_TOKEN: it holds whitespace or a control character" in (
        result.err
    )
    assert SECRET[:5] not in result.err + result.out


def test_key_file_keys_are_stripped(
    fake: FakeTorchServe, ts_health: Callable[..., Result], tmp_path: Path
) -> None:
    fake.required = {"/ping": f"Bearer inf-{SECRET}"}
    key_file = write_key_file(tmp_path / "k.json", inference=f"inf-{SECRET}\n")
    assert ts_health("ping", "--key-file", str(key_file)).code == ExitCode.OK
