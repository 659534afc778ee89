"""``/proc/<pid>/stat``, parsed in one place (``_proc``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ts_health_handler._proc import Stat, parse_stat, read_stat

#: Fields 6 to 21 (16 of them), starttime (22) and vsize (23).
REST = " ".join(["0"] * 16) + " 5678 99"
#: state, ppid, pgrp and the rest.
TAIL = f"S 12 34 {REST}"


@pytest.mark.parametrize("comm", ["python", "a b", "(a) b)", ")", "x (y) z"])
def test_the_fields_after_any_comm(comm: str) -> None:
    assert parse_stat(f"42 ({comm}) {TAIL}\n") == Stat(42, comm, "S", 12, 34, 5678)


@pytest.mark.parametrize(
    "text", ["", "42", "42 (python)", f"x (python) {TAIL}", "42 (python) S 12 34 0\n"]
)
def test_not_a_stat_line_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="not a /proc/<pid>/stat line"):
        parse_stat(text)


def test_read_stat_of_this_process_and_of_none(tmp_path: Path) -> None:
    own = read_stat(os.getpid())
    assert own is not None
    assert (own.pid, own.ppid, own.pgrp) == (os.getpid(), os.getppid(), os.getpgrp())
    assert read_stat(7, tmp_path) is None
    (tmp_path / "8").mkdir()
    (tmp_path / "8" / "stat").write_text("garbage\n")
    assert read_stat(8, tmp_path) is None
    (tmp_path / "9").mkdir()
    (tmp_path / "9" / "stat").write_bytes(b"9 (\xff (odd)) Z 1 9 " + REST.encode())
    stat = read_stat("9", tmp_path)
    assert stat is not None
    assert (stat.pid, stat.state, stat.pgrp, stat.start_ticks) == (9, "Z", 9, 5678)
