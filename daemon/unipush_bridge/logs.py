"""Logging: readable console output on a TTY, one JSON object per line elsewhere.

Library loggers (websockets, aiohttp, desktop-notifier, dbus-fast) go through the
same renderer so journald and launchd get one format.

Also the one place that makes text from others safe for a terminal
(:func:`printable`, :func:`json_text`): the CLI's output and the console log use it.
"""

from __future__ import annotations

import json
import re
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is ~3 ms of a one-shot command (issue 13)
    from collections.abc import MutableMapping
    from typing import Any

#: What a terminal acts on instead of showing (issue 10 item 6): C0 controls (ESC
#: starts window-title, clear-screen and clipboard-write sequences), DEL, C1 (U+009B
#: is a one-character CSI), the bidi controls that reorder what is shown, and lone
#: surrogates, which cannot even be encoded. Patterns, not compiled ones: re compiles
#: (and caches) them on first use, which plain ASCII text never reaches; compiling the
#: three at import was ~3 ms of every one-shot command (issue 13).
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_UNSAFE = f"[\x00-\x1f\x7f-\x9f{_BIDI}\ud800-\udfff]"
_UNSAFE_BUT_LINES = f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}\ud800-\udfff]"
#: What json.dumps leaves raw with ensure_ascii=False (it escapes C0 itself).
_UNSAFE_IN_JSON = f"[\x7f-\x9f{_BIDI}\ud800-\udfff]"


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, multiline: bool = False) -> str:
    """``text`` with every terminal control written as an escape (``\\x1b``,
    ``\\u202e``); ``multiline`` keeps newlines and tabs."""
    kept = text.replace("\n", "").replace("\t", "") if multiline else text
    if kept.isascii() and kept.isprintable():
        return text  # U+0020 to U+007E (and the kept newlines, tabs): nothing to escape
    return re.sub(_UNSAFE_BUT_LINES if multiline else _UNSAFE, _escape, text)


def json_text(value: Any, indent: int | None = None) -> str:
    """JSON as ``json.dumps(ensure_ascii=False)`` writes it, but with DEL, C1, bidi
    controls and lone surrogates as ``\\uXXXX`` escapes: the same value for a JSON
    reader, nothing for a terminal to act on."""
    text = json.dumps(value, ensure_ascii=False, indent=indent)
    if text.isascii() and "\x7f" not in text:
        return text
    return re.sub(_UNSAFE_IN_JSON, lambda m: f"\\u{ord(m.group()):04x}", text)


def _printable_values(logger: Any, name: str, event: MutableMapping[str, Any]) -> Any:
    """Console lines: string values (the message, a sender's title in a warning, a
    traceback) cannot drive the terminal; colours are added after this."""
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = printable(value, multiline=key == "exception")
    return event


#: logging's own numbers (DEBUG ... ERROR), so importing this module loads no logging.
LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


def setup(level: str = "info", fmt: str = "auto", stream: Any = None) -> None:
    import logging

    import structlog  # here: the CLI's local commands use printable() without them (issue 13)

    stream = stream or sys.stderr
    json_lines = fmt == "json" or (fmt == "auto" and not stream.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                _identity if json_lines else _printable_values,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[level])
    # Chatty at INFO about every connection; their warnings still come through.
    for noisy in ("websockets", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(LEVELS[level], logging.WARNING))


def _identity(logger: Any, name: str, event: Any) -> Any:
    return event
