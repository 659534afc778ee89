"""The runner itself: archive errors, start-up errors with logs, and stopping what it started."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ts_health_handler.testing import (
    ServerError,
    Tokens,
    TorchServe,
    WaitTimeout,
    archive_model,
    serve,
    wait_for,
)
from ts_health_handler.testing._runner import _group_alive

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_archive_model_builds_a_mar(tmp_path: Path) -> None:
    mar = archive_model(EXAMPLES / "empty_model" / "handler.py", "empty", tmp_path / "store")
    assert mar == tmp_path / "store" / "empty.mar"
    assert mar.stat().st_size > 0


def test_archive_model_failure_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ServerError) as caught:
        archive_model(EXAMPLES / "empty_model" / "handler.py", "bad name!", tmp_path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("torch-model-archiver failed for bad name! (exit 1)")
    assert "Model name contains special characters" in message
    with pytest.raises(ServerError, match="does not exist"):
        archive_model(tmp_path / "missing.py", "x", tmp_path)


def test_key_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "key_file.json"
    path.write_text(json.dumps({"inference": {"key": "i"}}), encoding="utf-8")
    with pytest.raises(ServerError, match=r"key_file\.json"):
        Tokens.from_key_file(path)
    path.write_text(
        json.dumps({"inference": {"key": "i"}, "management": {"key": "m"}, "API": {"key": "a"}}),
        encoding="utf-8",
    )
    assert Tokens.from_key_file(path) == Tokens(inference="i", management="m", api="a")


def test_wait_for_reports_what_it_waited_for() -> None:
    with pytest.raises(WaitTimeout, match="the impossible; last: 0"):
        wait_for(lambda: 0, timeout=0.3, interval=0.05, what="the impossible")
    assert wait_for(lambda: "yes", timeout=1) == "yes"


@pytest.mark.own_server
def test_startup_failure_carries_the_log_tail(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    with (
        pytest.raises(ServerError) as caught,
        serve(
            store,
            config={"inference_address": "http://256.0.0.1:8080"},
            workdir=tmp_path / "server",
            startup_timeout=60,
        ),
    ):
        pytest.fail("TorchServe must not start on an impossible address")
    message = str(caught.value)
    assert "while starting" in message
    assert "--- ts_log.log (tail) ---" in message
    assert "Inference address: http://256.0.0.1:8080" in message
    assert "Invalid configuration" in message


@pytest.mark.own_server
def test_stops_its_process_group_when_the_body_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TS_HEALTH_STATE_DIR", raising=False)
    store = tmp_path / "store"
    archive_model(EXAMPLES / "empty_model" / "handler.py", "empty_model", store)
    started: list[TorchServe] = []

    def run_and_fail() -> None:
        workdir = tmp_path / "server"
        with serve(store, models={"empty_model": "empty_model.mar"}, workdir=workdir) as server:
            started.append(server)
            assert os.getpgid(server.pid) == server.pid
            assert server.temp_dir.is_dir()
            # The worker of the start-up model belongs to the same process group.
            server.wait_until_ready("empty_model", timeout=120)
            worker = server.describe("empty_model")[0]["workers"][0]["pid"]
            assert os.getpgid(worker) == server.pid
            # Without TS_HEALTH_STATE_DIR the records go to <workdir>/health-state.
            assert server.state_dir == (workdir / "health-state").resolve()
            record = json.loads(server.init_record_path("empty_model").read_text("utf-8"))
            assert record["phase"] == "ready"
            raise KeyError("body failed")

    with pytest.raises(KeyError, match="body failed"):
        run_and_fail()
    server = started[0]
    pgid = server.pid
    assert not _group_alive(pgid)
    assert not server.temp_dir.exists()
    assert (tmp_path / "server" / "logs" / "ts_log.log").is_file()


@pytest.mark.own_server
def test_torchserve_fixture_serves_and_stops_what_it_started(
    pytester: pytest.Pytester,
) -> None:
    # A user's test module with our pytest11 fixture: it must serve a real .mar and leave
    # no process of the server behind once the test is over.
    pytester.makepyfile(
        f"""
        import json
        from pathlib import Path
        from ts_health_handler.testing import archive_model

        def test_user(torchserve, tmp_path):
            mar = archive_model(Path({str(EXAMPLES / "empty_model" / "handler.py")!r}),
                                "user_model", tmp_path / "store")
            server = torchserve(tmp_path / "store", config={{"disable_system_metrics": "true"}})
            server.register(mar.name)
            assert server.status_document("user_model")["status"] == "ready"
            Path({str(pytester.path / "pid")!r}).write_text(str(server.pid))
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=240)
    result.assert_outcomes(passed=1)
    pid = int((pytester.path / "pid").read_text())
    assert not _group_alive(pid), f"process group {pid} of the user's server is still alive"
