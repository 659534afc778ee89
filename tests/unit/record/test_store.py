"""The store of initialization records: paths, atomic updates, locking across threads and
processes, corruption, and the liveness of a record's worker.

Kept free of heavy imports: the multiprocessing test spawns processes that import this module."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from ts_health_handler import (
    ErrorInfo,
    HealthError,
    InitRecord,
    RecordError,
    StateStore,
    resolve_state_dir,
)
from ts_health_handler.record import ENV_STATE_DIR, RECENT_ERRORS, utc_iso

T0 = 1_750_000_000.0  # 2025-06-15T15:06:40.000Z
SERVER = "4321-77"


def started(previous: InitRecord | None, now: float = T0, server: str = SERVER) -> InitRecord:
    return InitRecord.started(
        previous, model_name="m", model_version="1.0", now=now, worker_pid=11, server=server
    )


# -- the state directory ------------------------------------------------------------------


def test_resolve_state_dir_prefers_config_then_env_then_temp(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import tempfile

    monkeypatch.setenv(ENV_STATE_DIR, str(tmp_path / "env"))
    assert resolve_state_dir("/configured") == Path("/configured")
    assert resolve_state_dir(None) == tmp_path / "env"
    monkeypatch.setenv(ENV_STATE_DIR, "")
    assert resolve_state_dir(None) == Path(tempfile.gettempdir()) / "ts-health"
    monkeypatch.delenv(ENV_STATE_DIR)
    assert resolve_state_dir() == Path(tempfile.gettempdir()) / "ts-health"


# -- the store ----------------------------------------------------------------------------


def test_store_path_quotes_name_and_version(tmp_path: Path) -> None:
    store = StateStore(tmp_path, "team/model a", "1.0/beta")

    assert store.path == tmp_path / "team%2Fmodel%20a" / "1.0%2Fbeta" / "init.json"
    assert repr(store) == f"StateStore({str(store.path)!r})"
    assert store.read() is None  # nothing yet, and reading creates nothing
    assert not (tmp_path / "team%2Fmodel%20a").exists()


def test_update_writes_the_record_and_leaves_no_temp_files(tmp_path: Path) -> None:
    store = StateStore(tmp_path, "m", "1.0")
    seen: list[InitRecord | None] = []

    def change(previous: InitRecord | None) -> InitRecord:
        seen.append(previous)
        return started(previous)

    first = store.update(change)
    second = store.update(change)

    assert seen == [None, first]
    assert second.attempts == 2
    assert json.loads(store.path.read_text(encoding="utf-8")) == second.to_json()
    assert store.read() == second
    assert sorted(p.name for p in store.directory.iterdir()) == ["init.json", "init.lock"]


@pytest.mark.parametrize(
    "content",
    [
        b'{"schema_version": 1, "model_name": "m", "mod',  # truncated write
        b"",
        b"\xff\xfe\x00garbage",  # not UTF-8
        b'{"schema_version": 1}',  # JSON, but not a record
        b"[1, 2]",
    ],
    ids=["truncated", "empty", "binary", "incomplete", "array"],
)
def test_corrupt_record_is_a_record_error_and_is_replaced_by_the_next_update(
    tmp_path: Path, content: bytes
) -> None:
    store = StateStore(tmp_path, "m", "1.0")
    store.directory.mkdir(parents=True)
    store.path.write_bytes(content)

    with pytest.raises(RecordError) as caught:
        store.read()
    assert isinstance(caught.value, HealthError)
    assert caught.value.path == str(store.path)
    assert str(caught.value).startswith(f"unreadable health record {store.path}: ")

    seen: list[InitRecord | None] = []
    record = store.update(lambda previous: seen.append(previous) or started(previous))

    assert seen == [None]
    assert record.attempts == 1
    assert store.read() == record


def test_update_under_a_regular_file_raises_os_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    store = StateStore(blocker / "state", "m", "1.0")

    with pytest.raises(OSError, match="Not a directory"):
        store.update(started)


def test_failed_write_keeps_the_old_record_and_removes_the_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = StateStore(tmp_path, "m", "1.0")
    old = store.update(started)

    def refuse(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="No space left"):
        store.update(started)
    monkeypatch.undo()

    assert store.read() == old
    assert sorted(p.name for p in store.directory.iterdir()) == ["init.json", "init.lock"]


def test_threads_with_their_own_stores_never_lose_an_update(tmp_path: Path) -> None:
    threads, rounds = 6, 15
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            store = StateStore(tmp_path, "m", "1.0")
            barrier.wait(timeout=30)
            for _ in range(rounds):
                store.update(started)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=60)

    assert errors == []
    record = StateStore(tmp_path, "m", "1.0").read()
    assert record is not None
    assert record.attempts == threads * rounds


def _worker_process(root: str, index: int, rounds: int, barrier: Any) -> None:
    """One 'TorchServe worker': start, then fail (odd rounds) or succeed, ``rounds`` times."""
    store = StateStore(root, "m", "1.0")
    pid = os.getpid()
    barrier.wait(timeout=60)
    for n in range(rounds):
        now = T0 + n

        def start(previous: InitRecord | None, now: float = now) -> InitRecord:
            return started(previous, now=now)

        def finish(previous: InitRecord | None, now: float = now, n: int = n) -> InitRecord:
            assert previous is not None
            if n % 2:
                error = ErrorInfo("OSError", f"worker {index} round {n}", utc_iso(now), n, None)
                return previous.failed(error, now=now, duration_s=0.01, worker_pid=pid)
            return previous.succeeded(now=now, duration_s=0.01, worker_pid=pid)

        store.update(start)
        store.update(finish)


def test_processes_updating_one_record_under_flock(tmp_path: Path) -> None:
    processes, rounds = 4, 12
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(processes)
    pool = [
        spawn.Process(target=_worker_process, args=(str(tmp_path), i, rounds, barrier))
        for i in range(processes)
    ]
    for process in pool:
        process.start()
    for process in pool:
        process.join(timeout=120)

    assert [p.exitcode for p in pool] == [0] * processes
    record = StateStore(tmp_path, "m", "1.0").read()  # valid JSON record, not corrupted
    assert record is not None
    assert record.attempts == processes * rounds
    assert record.failures == processes * rounds // 2
    assert len(record.recent_errors) == RECENT_ERRORS
    assert record.server == SERVER
    assert sorted(p.name for p in StateStore(tmp_path, "m", "1.0").directory.iterdir()) == [
        "init.json",
        "init.lock",
    ]


def test_store_works_without_fcntl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ts_health_handler.record._store as state_module

    monkeypatch.setattr(state_module, "fcntl", None)  # e.g. Windows: atomic replace only
    store = StateStore(tmp_path, "m", "1.0")

    assert store.update(started).attempts == 1
    assert store.update(started).attempts == 2
    assert store.read() is not None


def test_a_record_nested_too_deeply_is_a_record_error(tmp_path: Path) -> None:
    store = StateStore(tmp_path, "m", "1.0")
    store.directory.mkdir(parents=True)
    store.path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")

    with pytest.raises(RecordError) as caught:
        store.read()

    assert str(caught.value) == (
        f"unreadable health record {store.path}: not JSON (nested too deeply)"
    )


def test_a_record_that_is_not_json_says_so(tmp_path: Path) -> None:
    store = StateStore(tmp_path, "m", "1.0")
    store.directory.mkdir(parents=True)
    store.path.write_text("{", encoding="utf-8")

    with pytest.raises(RecordError, match=r": not JSON \(Expecting property name"):
        store.read()


def test_store_keeps_its_model_identity(tmp_path: Path) -> None:
    store = StateStore(tmp_path, "m", "1.0")

    assert (store.root, store.model_name, store.model_version) == (tmp_path, "m", "1.0")


def test_the_record_file_is_indented_json_in_field_order(tmp_path: Path) -> None:
    store = StateStore(tmp_path, "m", "1.0")

    record = store.update(started)

    expected = json.dumps(record.to_json(), indent=2)
    assert store.path.read_text(encoding="utf-8") == expected
    assert next(iter(json.loads(expected))) == "model_name"  # not sorted


def test_the_temp_file_lives_beside_the_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = StateStore(tmp_path, "m", "1.0")
    replaced: list[tuple[Path, Path]] = []
    real_replace = os.replace

    def spy(src: str, dst: Any) -> None:
        replaced.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    store.update(started)

    [(temp, target)] = replaced
    assert target == store.path
    assert temp.parent == store.directory  # same file system: the replace is atomic
    assert temp.name.startswith(".init.")
    assert temp.name.endswith(".tmp")


def test_a_failed_cleanup_does_not_hide_the_write_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = StateStore(tmp_path, "m", "1.0")

    def refuse(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    def cannot_unlink(path: Any) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    monkeypatch.setattr(os, "unlink", cannot_unlink)

    with pytest.raises(OSError, match="No space left"):
        store.update(started)


# -- whether a record's worker is alive ------------------------------------------------------


def test_pid_alive_tells_live_from_dead_processes() -> None:
    from ts_health_handler.record import pid_alive

    child = multiprocessing.get_context("spawn").Process(target=int)
    child.start()
    child.join()

    assert pid_alive(os.getpid()) is True
    assert child.pid is not None
    assert pid_alive(child.pid) is False


def test_pid_alive_asks_with_signal_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    from ts_health_handler.record import pid_alive

    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "kill", lambda pid, signal: sent.append((pid, signal)))

    assert pid_alive(4242) is True
    assert sent == [(4242, 0)]


@pytest.mark.parametrize(
    ("error", "alive"),
    [(PermissionError(1, "not ours"), True), (OSError(22, "invalid"), False)],
    ids=["another-users-process", "other-error"],
)
def test_pid_alive_reads_the_kill_error(
    monkeypatch: pytest.MonkeyPatch, error: OSError, alive: bool
) -> None:
    from ts_health_handler.record import pid_alive

    def kill(pid: int, signal: int) -> None:
        raise error

    monkeypatch.setattr(os, "kill", kill)

    assert pid_alive(4242) is alive
