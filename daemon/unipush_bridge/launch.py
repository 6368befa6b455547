"""The ``unipush-bridge`` command's entry point.

``cid`` and ``notify`` are what scripts, hooks and keyboard shortcuts call many times in
a row (issue 13), so their common forms are answered here, on the interpreter's
builtins, json and the wire module: no argparse, pathlib, typing or socket.py, which
cost more than the rest of such a command. Anything not recognised here with certainty
(another command, ``--help``, an unknown or abbreviated flag, a repeated flag, a value
argparse would refuse or normalise) goes to :mod:`.cli` before a byte is sent, so the
full parser stays the one judge of usage and its errors.
"""

from __future__ import annotations

import os
import sys

from .errors import EXIT_FAIL, EXIT_OK, ConfigError, UniApiError, UnipushError
from .paths import DEFAULT_APPID

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

#: notify's flags (argparse dests) and the createPushMessage options they set, beside
#: content, payload, when and cover; the full CLI builds its call with
#: :func:`notify_params` too.
NOTIFY_OPTIONS = (
    ("title", "title"),
    ("icon", "icon"),
    ("sound", "sound"),
    ("delay", "delay"),
    ("channel_id", "channelId"),
    ("category", "category"),
)


#: How long `cid` waits for a registration under way, by default (s).
CID_TIMEOUT_S = 30.0


def default_appid() -> str:
    """The local commands' appId: $UNIPUSH_BRIDGE_APPID, else uni's desktop default."""
    return os.environ.get("UNIPUSH_BRIDGE_APPID", DEFAULT_APPID)


class _NotHere(Exception):
    """The command line is the full CLI's to parse."""


def _text(value: str) -> str:
    return value


def _number(value: str) -> float:
    """A finite float (inf, nan and 1e400 are the full CLI's to refuse)."""
    try:
        number = float(value)
    except ValueError:
        raise _NotHere from None
    if number - number != 0:  # inf or nan; math is not loaded here (issue 13)
        raise _NotHere
    return number


def _seconds(value: str) -> float:
    """As the daemon reads uni's delay (``"3_0"`` is none): the full CLI says why not."""
    from .wire.jsnumber import js_number

    number = js_number(value)
    if number is None or number - number != 0:  # "1e400" is Infinity
        raise _NotHere
    return number


def _sound(value: str) -> str:
    if value not in ("system", "none"):
        raise _NotHere
    return value


def _json(value: str) -> Any:
    import json

    try:
        return json.loads(value)
    except ValueError:  # the full CLI shows where the JSON breaks
        raise _NotHere from None


def _socket_path(value: str) -> str:
    if not value or os.path.normpath(value) != value:  # argparse's Path would rewrite it
        raise _NotHere
    return value


_DAEMON = {"--appid": ("appid", _text), "--socket": ("socket", _socket_path)}
#: The flags each fast command takes: flag -> (argparse dest, conversion). A flag that
#: takes no value (``--cover``) has None.
FAST: dict[str, dict[str, tuple[str, Callable[[str], Any] | None]]] = {
    "cid": {**_DAEMON, "--timeout": ("timeout", _number)},
    "notify": {
        **_DAEMON,
        "--content": ("content", _text),
        "--title": ("title", _text),
        "--payload": ("payload", _json),
        "--icon": ("icon", _text),
        "--sound": ("sound", _sound),
        "--cover": ("cover", None),
        "--delay": ("delay", _seconds),
        "--when": ("when", _text),
        "--channel-id": ("channel_id", _text),
        "--category": ("category", _text),
    },
}


def parse_fast(argv: list[str]) -> tuple[str, dict[str, Any]]:
    """(command, values by argparse dest) for a command line answered here; raises
    _NotHere for any other."""
    if not argv or argv[0] not in FAST:
        raise _NotHere
    flags = FAST[argv[0]]
    values: dict[str, Any] = {}
    rest = iter(argv[1:])
    for token in rest:
        name, eq, inline = token.partition("=")
        if name not in flags:
            raise _NotHere
        dest, convert = flags[name]
        if dest in values:
            raise _NotHere
        if convert is None:
            if eq:
                raise _NotHere
            values[dest] = True
            continue
        value = inline if eq else next(rest, None)
        if value is None or (not eq and value.startswith("-")):
            raise _NotHere  # argparse's rules for values that look like flags are its own
        values[dest] = convert(value)
    if argv[0] == "notify" and "content" not in values:
        raise _NotHere
    return argv[0], values


def notify_params(values: Mapping[str, Any]) -> dict[str, Any]:
    """createPushMessage's options from notify's flags."""
    options: dict[str, Any] = {"content": values["content"]}
    if values.get("payload") is not None:
        options["payload"] = values["payload"]
    when = values.get("when")
    if when is not None:
        options["when"] = int(when) if when.isascii() and when.isdigit() else when
    if values.get("cover"):
        options["cover"] = True
    for flag, key in NOTIFY_OPTIONS:
        if values.get(flag) is not None:
            options[key] = values[flag]
    return options


def say(text: object, stream: Any = None) -> None:
    """One line (or block) for a terminal: every control a sender could have put in
    the text is written as an escape; flushed for pipes."""
    from .logs import printable

    print(printable(str(text), multiline=True), file=stream or sys.stdout, flush=True)


#: Commands that run until they are stopped: Ctrl-C ends them with exit 0.
UNTIL_STOPPED = frozenset({"run", "gateway", "listen", "tray"})
#: A one-shot command interrupted by Ctrl-C, as shells report it (128 + SIGINT).
EXIT_INTERRUPTED = 130


def guarded(command: str, job: Callable[[], int]) -> int:
    """Run a command; its errors become one line on stderr and their exit code."""
    try:
        return job()
    except UnipushError as exc:  # the one root: each error knows its exit code
        kind = "config error: " if isinstance(exc, ConfigError) else ""
        say(f"unipush-bridge {command}: {kind}{exc}", sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        # Ctrl-C is how one stops what runs until stopped; a one-shot command it cut
        # short did not do its job (`CID=$(unipush-bridge cid)` must see that).
        return EXIT_OK if command in UNTIL_STOPPED else EXIT_INTERRUPTED
    except BrokenPipeError:  # `... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error
        return EXIT_OK


def check_socket_path(path: str | os.PathLike[str] | None, appid: str) -> None:
    """A socket path AF_UNIX cannot hold is a usage error (exit 2) naming the flag,
    not a runtime failure 'cannot reach the daemon'."""
    from .errors import UsageError
    from .paths import default_socket_name, socket_path_error

    given = path is not None
    why = socket_path_error(path if path is not None else default_socket_name(appid), given)
    if why is not None:
        raise UsageError(f"--socket: {why}" if given else why)


def call_daemon(
    values: Mapping[str, Any],
    method: str,
    params: dict[str, Any],
    show: Callable[[dict[str, Any]], None] | None = None,
    timeout: float | None = None,
) -> int:
    """One local API call; ``show`` what it answers (by default its errMsg). A failed
    call prints its errMsg on stderr and exits 1, with no traceback."""
    from .localcall import ANSWER_TIMEOUT_S, DaemonCall
    from .paths import default_socket_name
    from .wire.local import is_fail

    path = values.get("socket")
    check_socket_path(path, values["appid"])
    if path is None:
        path = default_socket_name(values["appid"])
    result = DaemonCall(path, ANSWER_TIMEOUT_S if timeout is None else timeout)(method, params)
    if is_fail(result):
        say(UniApiError(result), sys.stderr)
        return EXIT_FAIL
    if show is None:
        say(result["errMsg"])
    else:
        show(result)
    return EXIT_OK


def cid(values: Mapping[str, Any]) -> int:
    from .localcall import ANSWER_TIMEOUT_S

    timeout = values.get("timeout", CID_TIMEOUT_S)
    return call_daemon(
        values,
        "getPushClientId",
        {"timeout": timeout},
        lambda res: say(res["cid"]),
        timeout=max(timeout, 0) + ANSWER_TIMEOUT_S,
    )


def notify(values: Mapping[str, Any]) -> int:
    return call_daemon(values, "createPushMessage", notify_params(values))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        command, values = parse_fast(argv)
    except _NotHere:
        from .cli import main as full

        return full(argv)
    values.setdefault("appid", default_appid())
    job = cid if command == "cid" else notify
    return guarded(command, lambda: job(values))


if __name__ == "__main__":
    sys.exit(main())
