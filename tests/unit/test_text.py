"""``_text``: the one place that cuts text, and the places that cut through it."""

from __future__ import annotations

import pytest

from ts_health_handler._text import clip, one_line
from ts_health_handler.record import RecordError
from ts_health_handler.record._fields import field
from ts_health_handler.torchserve._http import BadAnswer, Response


def test_clip_keeps_short_text_and_the_head_and_tail_of_long_text() -> None:
    assert clip("short", 10) == "short"
    assert clip("a" * 30, 30) == "a" * 30  # exactly the limit: untouched
    cut = clip("THE START" + "a" * 50 + "THE END", 38)
    assert len(cut) == 38
    # 20 characters of room: half for the head, half for the tail.
    assert cut == "THE STARTa" + "...[truncated]...\n" + "aaaTHE END"
    assert clip("a" * 19 + "b" * 20, 38) == "a" * 10 + "...[truncated]...\n" + "b" * 10
    assert clip("0123456789", 4) == "6789"  # no room for the marker


def test_one_line_flattens_then_cuts_around_three_dots() -> None:
    assert one_line(" a\n b\t c ") == "a b c"
    assert one_line("HEAD " + "x " * 50 + "TAIL", 20) == "HEAD x x... x x TAIL"


def test_a_record_field_of_the_wrong_type_shows_its_head_and_tail() -> None:
    value = ["START"] + ["x"] * 40 + ["END"]
    with pytest.raises(RecordError) as caught:
        field({"k": value}, "k", str, "/state/init.json")
    shown = clip(repr(value), 80, marker="...")
    assert f"field 'k' is {shown}, expected str" in str(caught.value)
    assert shown.startswith("['START'")
    assert shown.endswith("'END']")


def test_an_answer_that_is_not_json_is_shown_head_and_tail() -> None:
    body = "<html>START " + "x" * 1000 + " END</html>"
    with pytest.raises(BadAnswer) as caught:
        Response(502, body.encode()).json()
    assert str(caught.value) == f"expected JSON, got HTTP 502: {one_line(body, 500)!r}"
    assert Response(502, body.encode()).error_fields() == (None, one_line(body, 120))
