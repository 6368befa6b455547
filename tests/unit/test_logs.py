"""issue 10 item 6: the console log (daemon and gateway) and the one escaping helper."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from unipush_bridge import logs

HOSTILE = "\x1b]0;pwned\x07\x1b[2J\x1b]52;c;ZXZpbA==\x07\x9b31m\u202eevil\u2066\u200f\x7f"
RAW = ("\x1b]", "\x1b[2J", "\x07", "\x9b", "\u202e", "\u2066", "\u200f", "\x7f")


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    yield
    logs.setup("info", "json")
    structlog.reset_defaults()


@pytest.mark.parametrize("stream", [io.StringIO(), Tty()], ids=["plain", "colours"])
def test_console_log_escapes_a_senders_controls(stream: io.StringIO) -> None:
    """issue 10 item 6: message, values, a library's record and a traceback."""
    logs.setup("info", "console", stream)
    structlog.get_logger("t").warning(f"event {HOSTILE}", request_id=HOSTILE, n=1)
    logging.getLogger("aiohttp.server").warning("library says %s", HOSTILE)
    try:
        raise ValueError(HOSTILE)
    except ValueError:
        structlog.get_logger("t").exception("failed")
    out = stream.getvalue()
    for raw in RAW:
        assert raw not in out, (raw, out)
    assert out.count("]0;pwned") == 4  # each one there, escaped
    assert "ValueError" in out and "Traceback" in out


def test_json_log_lines_stay_ascii_escaped() -> None:
    """issue 10 item 6: the JSON lines journald gets were already inert; still are."""
    stream = io.StringIO()
    logs.setup("info", "json", stream)
    structlog.get_logger("t").warning("x", title=HOSTILE)
    (line,) = stream.getvalue().splitlines()
    assert json.loads(line)["title"] == HOSTILE
    for raw in RAW[:-1]:
        assert raw not in line


def test_printable_escapes_controls_and_keeps_text() -> None:
    """issue 10 item 6: C0, DEL, C1, bidi controls, lone surrogates."""
    assert logs.printable("a\x1b[2Jb\x9b\u202e\u061c\x00\ud800\n\t") == (
        "a\\x1b[2Jb\\x9b\\u202e\\u061c\\x00\\ud800\\x0a\\x09"
    )
    assert logs.printable("one\n\ttwo\r", multiline=True) == "one\n\ttwo\\x0d"
    text = "plain é 漢字 😀 עברית"
    assert logs.printable(text) == text


def test_json_text_is_the_same_value_with_nothing_raw() -> None:
    """issue 10 item 6: listen --json passed U+009B raw (ensure_ascii=False keeps it)."""
    value = {"t": HOSTILE + "\ud800 é"}
    text = logs.json_text(value)
    assert json.loads(text) == value
    assert "é" in text
    for raw in (*RAW, "\ud800"):
        assert raw not in text


@given(st.text(), st.booleans())
def test_the_ascii_shortcut_escapes_what_the_patterns_escape(text: str, multiline: bool) -> None:
    """issue 13: printable and json_text skip the regex for plain ASCII (so a one-shot
    command never compiles it); the answer is the patterns' answer either way."""
    import re

    pattern = logs._UNSAFE_BUT_LINES if multiline else logs._UNSAFE
    assert logs.printable(text, multiline) == re.sub(pattern, logs._escape, text)
    for probe in (text, text + "\x7f"):
        dumped = json.dumps(probe, ensure_ascii=False)
        expected = re.sub(logs._UNSAFE_IN_JSON, lambda m: f"\\u{ord(m.group()):04x}", dumped)
        assert logs.json_text(probe) == expected
