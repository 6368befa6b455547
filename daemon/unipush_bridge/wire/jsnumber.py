"""Numbers given as text, read as JavaScript's ``Number()`` reads them: uni's options
come from JS, where ``"2.5"`` and ``" 5 "`` are numbers and ``"3_0"`` is not. Standard
library ``re`` only: the CLI's fast path reads its flags with it."""

from __future__ import annotations

import re

#: What JavaScript's Number() strips around a numeral (ECMAScript's StrWhiteSpaceChar).
#: Not str.strip()'s set: that takes U+001C-U+001F and U+0085 too and leaves U+FEFF.
JS_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
JS_SPACE += "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
#: A decimal numeral as Number() reads it: ASCII digits only, no "_" separators.
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def js_number(text: str) -> float | None:
    """What JavaScript's ``Number(text)`` makes of a decimal numeral (``" 5 "``,
    ``"1e3"``), as uni reads a number given as a string; None for any other text.
    Python's float() would read ``"3_0"`` as 30 and ``"١٢"`` as 12, where Number()
    gives NaN; Number()'s other forms (``"0x10"``, ``""`` as 0, ``"Infinity"``) have
    no use here and are refused too, so what is taken always means what it would in JS."""
    body = text.strip(JS_SPACE)
    return float(body) if _DECIMAL.fullmatch(body) else None
