"""What a D-Bus string must not carry, for every text the bridge puts on the bus: the
notifications it sends and the tray's menu labels. Standard library only."""

from __future__ import annotations

import re

#: The characters, as the body of a regex character class: what a D-Bus string cannot
#: carry (NUL: dbus-daemon drops a connection whose message has one; lone surrogates:
#: not UTF-8) or what only garbles what is drawn (C0 but tab and newline, DEL, C1,
#: Unicode noncharacters, which old libdbus refused).
UNSAFE = "\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef" + "".join(
    f"{chr(plane << 16 | 0xFFFE)}{chr(plane << 16 | 0xFFFF)}" for plane in range(17)
)
_UNSAFE = re.compile(f"[{UNSAFE}]")


def dbus_text(text: str) -> str:
    """``text`` made safe to marshal as a D-Bus string (issue 10 item 3): a sender's
    NUL or lone surrogate would otherwise fail the whole call. Each such character
    becomes U+FFFD, so the reader sees that something was there."""
    return _UNSAFE.sub("\ufffd", text)
