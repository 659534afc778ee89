"""Which server and worker thread a worker belongs to, from a fake /proc and command line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ts_health_handler.handler._identity import current_identity, frontend, worker_id


def fake_proc(root: Path, processes: dict[int, tuple[int, int, str]]) -> Path:
    """``{pid: (ppid, start ticks, cmdline)}`` as /proc/<pid>/stat and cmdline."""
    for pid, (ppid, ticks, cmdline) in processes.items():
        directory = root / str(pid)
        directory.mkdir(parents=True)
        fields = ["S", str(ppid), *["0"] * 17, str(ticks), "0"]
        (directory / "stat").write_text(f"{pid} (some (odd) name) {' '.join(fields)}\n")
        (directory / "cmdline").write_bytes(cmdline.replace(" ", "\0").encode())
    return root


JAVA = "java -cp ts.jar org.pytorch.serve.ModelServer"


def test_the_frontend_is_found_through_a_launcher(tmp_path: Path) -> None:
    proc = fake_proc(
        tmp_path,
        {
            300: (200, 9000, "python ts/model_service_worker.py --sock-name /t/.ts.sock.9000"),
            200: (100, 8000, "python -m torch.backends.xeon.run_cpu"),
            100: (1, 7000, JAVA),
        },
    )
    assert frontend(300, proc) == (100, 7000)
    identity = current_identity(["w.py", "--sock-name", "/t/.ts.sock.9000"], proc, 300)
    assert (identity.server, identity.worker, identity.pid) == ("100-7000", "9000", 300)


def test_a_restarted_frontend_with_the_same_pid_is_another_server(tmp_path: Path) -> None:
    before = fake_proc(tmp_path / "a", {3: (2, 5, "w"), 2: (1, 100, JAVA)})
    after = fake_proc(tmp_path / "b", {3: (2, 5, "w"), 2: (1, 900, JAVA)})
    assert current_identity([], before, 3).server != current_identity([], after, 3).server


def test_without_a_frontend_the_parent_names_the_server(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, {30: (20, 1, "pytest"), 20: (10, 42, "bash"), 10: (1, 7, "init")})
    assert frontend(30, proc) == (20, 42)


def test_without_a_frontend_or_proc_this_process_s_parent_names_the_server(
    tmp_path: Path,
) -> None:
    assert current_identity([], tmp_path / "nothing").server == f"{os.getppid()}-0"


def test_a_search_that_reaches_init_ends_at_the_parent(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, {30: (20, 1, "pytest"), 20: (1, 42, "bash"), 1: (0, 3, "init")})
    assert frontend(30, proc) == (20, 42)


def test_a_frontend_run_as_pid_1_is_found(tmp_path: Path) -> None:
    # A container whose entrypoint execs the frontend: TorchServe is PID 1.
    proc = fake_proc(tmp_path, {30: (1, 9, "python worker"), 1: (0, 5, JAVA)})
    assert frontend(30, proc) == (1, 5)
    assert current_identity([], proc, 30).server == "1-5"


def test_an_ancestor_that_cannot_be_read_ends_the_search_at_the_parent(tmp_path: Path) -> None:
    # The grandparent's /proc entry is gone (it ended): the parent names the server.
    proc = fake_proc(tmp_path, {30: (20, 1, "python worker"), 20: (15, 42, "bash")})
    assert frontend(30, proc) == (20, 42)


def test_an_ancestor_without_a_readable_command_line_is_passed(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, {30: (20, 1, "python worker"), 20: (10, 42, "sh"), 10: (1, 7, JAVA)})
    (proc / "20" / "cmdline").unlink()
    assert frontend(30, proc) == (10, 7)


def test_without_proc_nothing_is_claimed(tmp_path: Path) -> None:
    assert frontend(30, tmp_path / "nothing") is None
    assert current_identity([], tmp_path / "nothing", 30).server == "0-0"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--sock-type", "unix", "--sock-name", "/tmp/x/.ts.sock.9003"], "9003"),
        (["--sock-name=/tmp/.ts.sock.9001"], "9001"),
        # The value is everything after the first "=".
        (["--sock-name=/tmp/a=b/.ts.sock.9002"], "9002"),
        (["--port=1=9005"], None),
        (["--sock-type", "tcp", "--port", "9005", "--metrics-config", "m.yaml"], "9005"),
        (["--sock-name", "/tmp/odd-socket"], None),
        (["pytest", "-q"], None),
        (["--sock-name"], None),
    ],
)
def test_worker_id_from_the_command_line(argv: list[str], expected: str | None) -> None:
    assert worker_id(argv) == expected


def test_a_torchrun_rank_but_the_first_has_a_run_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    argv = ["model_service_worker.py", "--sock-name", "/tmp/.ts.sock.9000"]
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert current_identity(argv=argv).worker == "9000.rank1"
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert current_identity(argv=argv).worker == "9000"
