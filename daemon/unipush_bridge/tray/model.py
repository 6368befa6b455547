"""What the tray shows and what its menu does, without I/O (issue 14 item 3).

The D-Bus glue (:mod:`.sni`) asks this module for the StatusNotifierItem's property
values and the com.canonical.dbusmenu layout, and hands menu events back here to
learn which :data:`Command` to carry out. Values carry their D-Bus signature, so the
glue only wraps them in Variants.
"""

from __future__ import annotations

import re
import zlib
from typing import Any, Literal, NamedTuple

from ..runtime.dbustext import UNSAFE

Status = Literal["connected", "connecting", "offline", "quiet"]

#: Freedesktop icon names per state (present in Adwaita and most icon themes).
ICONS: dict[Status, str] = {
    "connected": "mail-unread",
    "connecting": "network-idle",
    "offline": "network-offline",
    "quiet": "notifications-disabled",
}
#: SNI Status: Active for a state the user should notice, Passive otherwise.
SNI_STATUS: dict[Status, str] = {
    "connected": "Active",
    "connecting": "Active",
    "offline": "NeedsAttention",
    "quiet": "Passive",
}
#: Recent notifications in the menu.
MENU_ENTRIES = 10
#: Longest label of a notification in the menu.
LABEL_CHARS = 60

ROOT = 0
QUIET_ID = 1
COPY_CID_ID = 2
OPEN_HISTORY_ID = 3
QUIT_ID = 4
SEPARATOR_ID = 5
EMPTY_ID = 6
#: Menu ids of notifications start here (see :func:`entry_id`).
ENTRY_BASE = 100
#: What a label must not carry: what no D-Bus string may (a NUL makes dbus-daemon drop
#: the connection, taking the item off the bus), tab and newline too (a label is one
#: line), and bidi controls (they reorder the label and what the host draws after it).
#: Each becomes U+FFFD, as the daemon's Notify text does.
_NOT_FOR_LABEL = re.compile(f"[{UNSAFE}\t\n\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


class TrayState(NamedTuple):
    """What the tray knows from the daemon; ``online`` False when it cannot reach it."""

    appid: str
    online: bool = False
    link: str = ""
    cid: str | None = None
    quiet: bool = False
    quiet_unread: int = 0
    entries: tuple[dict[str, Any], ...] = ()
    #: When the user last opened the menu (epoch s): later entries are unread.
    seen_at: float = 0.0


class ClickEntry(NamedTuple):
    push_id: str


class SetQuiet(NamedTuple):
    on: bool


class CopyCid(NamedTuple):
    cid: str | None


class OpenHistory(NamedTuple):
    pass


class Quit(NamedTuple):
    pass


Command = ClickEntry | SetQuiet | CopyCid | OpenHistory | Quit
#: A D-Bus value with its signature: ("s", "text").
Typed = tuple[str, Any]


def status(state: TrayState) -> Status:
    """offline: no daemon; quiet beats the link (nothing shows either way);
    connected only once the daemon's link is."""
    if not state.online:
        return "offline"
    if state.quiet:
        return "quiet"
    return "connected" if state.link == "connected" else "connecting"


def unread(state: TrayState) -> int:
    """Unread: notifications in the history not clicked and recorded after the menu
    was last opened, and never fewer than quiet hours' own unread count."""
    fresh = sum(
        1
        for e in state.entries
        if not e.get("clicked") and float(e.get("shown_at") or 0) > state.seen_at
    )
    return max(fresh, state.quiet_unread)


def tooltip_text(state: TrayState) -> str:
    cid = state.cid or "(none yet)"
    lines = [f"appid {state.appid}", f"cid {cid}", f"{unread(state)} unread"]
    if not state.online:
        lines.append("daemon not running")
    elif state.link and state.link != "connected":
        lines.append(f"link {state.link}")
    if state.quiet:
        lines.append("quiet hours on")
    return "\n".join(lines)


def title(state: TrayState) -> str:
    return f"unipush-bridge ({state.appid}): {status(state)}"


def item_properties(state: TrayState) -> dict[str, Typed]:
    """org.kde.StatusNotifierItem's properties."""
    icon = ICONS[status(state)]
    return {
        "Category": ("s", "Communications"),
        "Id": ("s", f"unipush-bridge-{state.appid}"),
        "Title": ("s", title(state)),
        "Status": ("s", SNI_STATUS[status(state)]),
        "IconName": ("s", icon),
        "IconPixmap": ("a(iiay)", []),
        "AttentionIconName": ("s", icon),
        "OverlayIconName": ("s", ""),
        "ToolTip": ("(sa(iiay)ss)", [icon, [], title(state), tooltip_text(state)]),
        "ItemIsMenu": ("b", False),
        "Menu": ("o", "/MenuBar"),
        "WindowId": ("i", 0),
    }


def entry_label(entry: dict[str, Any]) -> str:
    text = " · ".join(t for t in (entry.get("title"), entry.get("content")) if t)
    text = _NOT_FOR_LABEL.sub("\ufffd", " ".join(str(text).split()) or str(entry.get("id")))
    if len(text) > LABEL_CHARS:
        text = text[: LABEL_CHARS - 1] + "…"
    mark = "" if entry.get("clicked") else "• "
    return mark + text.replace("_", "__")  # dbusmenu: a lone _ marks the access key


def entry_id(entry: dict[str, Any], place: int) -> int:
    """A notification's menu id, from its push id: the same entry keeps its id while
    newer ones push it down, so a click the host sends from a menu it read before the
    list changed still acts on the entry the user saw (a place-based id would act on
    whatever took its place). An entry without an id keeps ENTRY_BASE + its place."""
    push_id = entry.get("id")
    if not isinstance(push_id, str):
        return ENTRY_BASE + place
    first = ENTRY_BASE + MENU_ENTRIES
    return first + zlib.crc32(push_id.encode("utf-8", "replace")) % (2**31 - 1 - first)


def menu_items(state: TrayState) -> list[tuple[int, dict[str, Typed]]]:
    """The root's children in order, each with its dbusmenu properties. Offline, the
    last history read is not listed: it may be stale and nothing could click it."""
    items: list[tuple[int, dict[str, Typed]]] = []
    entries = state.entries[:MENU_ENTRIES] if state.online else ()
    for i, entry in enumerate(entries):
        items.append((entry_id(entry, i), {"label": ("s", entry_label(entry))}))
    if not entries:
        empty = "daemon not running" if not state.online else "no notifications yet"
        items.append((EMPTY_ID, {"label": ("s", empty), "enabled": ("b", False)}))
    items.append((SEPARATOR_ID, {"type": ("s", "separator")}))
    items.append(
        (
            QUIET_ID,
            {
                "label": ("s", "Quiet hours"),
                "toggle-type": ("s", "checkmark"),
                "toggle-state": ("i", 1 if state.quiet else 0),
                "enabled": ("b", state.online),
            },
        )
    )
    items.append((COPY_CID_ID, {"label": ("s", "Copy cid"), "enabled": ("b", bool(state.cid))}))
    items.append(
        (OPEN_HISTORY_ID, {"label": ("s", "Open history"), "enabled": ("b", state.online)})
    )
    items.append((QUIT_ID, {"label": ("s", "Quit tray")}))
    return items


def layout(state: TrayState) -> tuple[int, dict[str, Typed], list[tuple[int, dict[str, Typed]]]]:
    """GetLayout's tree: the root (a submenu) and its children (none has children)."""
    return ROOT, {"children-display": ("s", "submenu")}, menu_items(state)


def item_props(
    state: TrayState, ids: list[int], names: list[str]
) -> list[tuple[int, dict[str, Typed]]]:
    """GetGroupProperties: the asked ids (all when empty), the asked names (all when empty)."""
    root = layout(state)
    every = [(root[0], root[1]), *root[2]]
    chosen = [(i, p) for i, p in every if not ids or i in ids]
    if names:
        chosen = [(i, {k: v for k, v in p.items() if k in names}) for i, p in chosen]
    return chosen


def command_for(state: TrayState, item_id: int, event: str) -> Command | None:
    """What a dbusmenu Event does: only ``clicked`` acts; an id no longer in the menu
    (its entry was pruned, or the daemon is offline) does nothing."""
    if event != "clicked":
        return None
    if item_id == QUIT_ID:
        return Quit()
    if item_id == QUIET_ID and state.online:
        return SetQuiet(not state.quiet)
    if item_id == COPY_CID_ID and state.cid:
        return CopyCid(state.cid)
    if item_id == OPEN_HISTORY_ID and state.online:
        return OpenHistory()
    if not state.online:
        return None
    for place, entry in enumerate(state.entries[:MENU_ENTRIES]):
        push_id = entry.get("id")
        if isinstance(push_id, str) and entry_id(entry, place) == item_id:
            return ClickEntry(push_id)
    return None


def history_html(state: TrayState) -> str:
    """The page "Open history" shows (written to a file, opened with xdg-open)."""
    from html import escape

    rows = []
    for e in state.entries:
        rows.append(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>".format(
                escape(str(e.get("shown_at", ""))),
                escape(str(e.get("title", ""))),
                escape(str(e.get("content", ""))),
                "clicked" if e.get("clicked") else "",
            )
        )
    return (
        "<!doctype html><meta charset=utf-8><title>unipush-bridge history</title>"
        f"<h1>{escape(state.appid)}</h1><table><tr><th>shown at</th><th>title</th>"
        "<th>content</th><th></th></tr>" + "".join(rows) + "</table>\n"
    )
