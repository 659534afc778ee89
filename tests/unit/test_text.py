"""``_text``: the one place that cuts text, and the places that cut through it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ts_health_handler._text import clip, one_line, printable, redact, valid_utf8
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


def escaped(char: str) -> str:
    """What :func:`printable` makes of one character, written out character class by class."""
    code = ord(char)
    if char in "\t\n":
        return char
    if code < 0x20 or 0x7F <= code <= 0x9F:
        return f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}"
    if code in (0x2028, 0x2029) or 0x202A <= code <= 0x202E or 0x2066 <= code <= 0x2069:
        return f"\\u{code:04x}"
    if 0xD800 <= code <= 0xDFFF:
        return f"\\u{code:04x}"
    return char


def test_printable_escapes_controls_and_keeps_tab_and_newline() -> None:
    assert printable("ok: 1/1 workers READY\n\tnext") == "ok: 1/1 workers READY\n\tnext"
    assert printable("\x1b[31mred\x1b[0m") == "\\x1b[31mred\\x1b[0m"
    assert printable("del\x7f c1\x9b") == "del\\x7f c1\\u009b"
    assert printable("a\u202eb\u2028c") == "a\\u202eb\\u2028c"
    assert printable("caf\u00e9 \udcff") == "caf\u00e9 \\udcff"
    assert valid_utf8("x\udcffy") == "x\\udcffy"
    assert valid_utf8("plain") == "plain"


@given(st.text(alphabet=st.characters(max_codepoint=0x7F)) | st.text())
def test_printable_is_the_same_character_by_character(text: str) -> None:
    # Plain ASCII takes a path without regular expressions; both paths must agree.
    assert printable(text) == "".join(escaped(char) for char in text)
    printable(text).encode("utf-8")  # always encodable


def test_redact_replaces_each_secret_as_written_and_inside_json_longest_first() -> None:
    secrets = ["abc", "abc-def", 'q"t\\k', ""]
    text = 'abc-def, abc and {"token": "q\\"t\\\\k"} and q"t\\k'
    assert redact(text, secrets) == (
        '<redacted>, <redacted> and {"token": "<redacted>"} and <redacted>'
    )
    assert redact("nothing here", []) == "nothing here"
