"""``Io``: where the commands write, with every secret they were given redacted."""

from __future__ import annotations

import io

from ts_health_handler.monitor._output import Io


def test_a_secret_holding_another_is_redacted_whole() -> None:
    out = io.StringIO()
    Io(out, out, secrets={"abc", "abc-def", ""}).err("key abc-def and abc")
    assert out.getvalue() == "key <redacted> and <redacted>\n"
