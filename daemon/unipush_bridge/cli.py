"""The ``unipush-bridge`` command. Exit codes: 0 ok, 1 runtime failure, 2 bad usage
or bad config; every error message names its cause, and no usage or API error ends
in a traceback.

Everything printed may hold a sender's text, so it goes through :func:`logs.printable`
or :func:`logs.json_text` first: no terminal control sequence gets through.

The local commands (cid, notify, status, history, channel) are what scripts and
keyboard shortcuts call many times in a row, so this module imports only argparse,
the standard library and the local API's wire module at the top; the config stack
(pydantic), asyncio, aiohttp and the daemon load inside the commands that need them.
A command is a parser (in :func:`build_parser`) and an entry in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, NoReturn, cast

from . import __version__, launch
from .errors import (
    EXIT_FAIL,
    EXIT_OK,
    EXIT_USAGE,
    DaemonUnavailable,
    GatewayUnreachable,
    ProtocolError,
    UniApiError,
    UsageError,
)
from .logs import json_text, printable
from .paths import DEFAULT_APPID, default_socket
from .service import commands as service_commands  # argparse only; the rest loads when run
from .wire.jsnumber import js_number

DEFAULT_GATEWAY_HTTP = "http://127.0.0.1:8787"
#: How often `listen --follow` looks for a daemon that went away.
FOLLOW_RETRY_S = 0.2
#: The daemon's rule for `history --limit` (runtime/localapi.py), checked here first.
HISTORY_MAX = 10_000
#: sendMessage's answers for a target that has the message (stored or sent).
ACCEPTED = ("successed_online", "successed_offline")
#: uni's status for a cid it does not know, and its errMsg when it knows none of them.
INVALID_TARGET = "target user is invalid"
CID_CHARS = frozenset("0123456789abcdef")

COMMAND_HELP = {
    "run": "run the daemon (with an embedded gateway if none is set)",
    "gateway": "run the reference gateway (uni-push's server API over HTTP)",
    "send": "call sendMessage on a gateway and print its answer",
    "cid": "print this device's cid (getPushClientId)",
    "listen": "print receive and click events as they come (onPushMessage)",
    "notify": "show a local notification, now or later (createPushMessage)",
    "channel": "create and list notification channels (getChannelManager)",
    "history": "list the last notifications shown, newest first",
    "status": "show the daemon's connection, cid, listeners and counters",
    "quiet": "quiet hours: hold notifications back (on, off, auto: the schedule) or show them",
    # service.commands registers these two; their lines here list them in --help when
    # another command runs (tests/cli/test_bad_inputs.py keeps the two texts equal).
    "service": "run the daemon as a user service (systemd, launchd)",
    "doctor": "check each part notifications need, in order",
    "capture": "a notification server for tests: records notifications, clicks on request",
    "tray": "a tray icon (StatusNotifierItem) for the daemon: state, recent notifications, quiet",
    "web": "the web endpoint for browser pages: pair a page origin (docs/web.md)",
}
#: Commands whose parsers service.commands builds.
SERVICE_COMMANDS = ("service", "doctor")


class _Parser(argparse.ArgumentParser):
    """argparse, except that an unknown flag is named before a missing required one:
    ``send --bogus`` is about --bogus, not about the --to it never reached."""

    #: The command line being parsed (argparse does not hand it to subparsers).
    argv: ClassVar[list[str]] = []

    def error(self, message: str) -> NoReturn:
        if message.startswith("the following arguments are required"):
            unknown = self._unknown_options()
            if unknown:
                message = f"unrecognized arguments: {' '.join(unknown)}"
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def _unknown_options(self) -> list[str]:
        known = self._option_string_actions
        unknown = []
        for token in _Parser.argv:
            if token == "--":
                break
            if not token.startswith("-") or token == "-" or _is_number(token):
                continue
            name = token.split("=", 1)[0]
            if name in known or (name.startswith("--") and any(k.startswith(name) for k in known)):
                continue  # argparse accepts an unambiguous prefix
            unknown.append(name)
        return unknown


def _seconds(text: str) -> float:
    """uni's delay as the daemon reads it (JavaScript's Number(): ``"3_0"`` is none)."""
    number = js_number(text)
    if number is None or not math.isfinite(number):  # "1e400" is Infinity: no JSON for it
        raise argparse.ArgumentTypeError(f"must be a number of seconds, e.g. 2.5; got {text!r}")
    return number


def _finite(text: str) -> float:
    """A number of seconds: float() takes inf and nan, which no socket timeout takes."""
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"must be a number of seconds, e.g. 2.5; got {text!r}")
    return number


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _json_value(text: str) -> Any:
    """--payload is JSON; a typo is shown with a caret under where parsing stopped,
    instead of being sent on as a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        line = text.splitlines()[exc.lineno - 1] if text.strip() else text
        raise argparse.ArgumentTypeError(
            f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}\n"
            f"  {printable(line)}\n  {' ' * (exc.colno - 1)}^\n"
            "(a string payload is written as JSON too: --payload '\"text\"')"
        ) from None


def _cid_arg(text: str) -> str:
    """--to: an empty one would send an empty target, which uni (and the gateway) take
    as a broadcast to every cid of the appId; nobody means that by --to ''."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "empty: give a cid (`unipush-bridge cid` prints the daemon's); an empty "
            "target would be a broadcast"
        )
    return text


def _whole(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"must be a whole number from {low} to {high}, got {text!r}"
            )
        return value

    return parse


class _Formatter(argparse.HelpFormatter):
    """argparse's help layout, with the terminal width read through os: argparse's own
    default imports shutil (with bz2, lzma and zlib) on the first add_argument."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        if width is None:
            width = _columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width)


def _columns() -> int:
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 80


class _Unbuilt:
    """Stands in for the parser of a command that is not being run: every call is
    swallowed, so build_parser() spends nothing on flags nobody will parse."""

    def __getattr__(self, name: str) -> Callable[..., _Unbuilt]:
        return self._swallow

    def _swallow(self, *args: Any, **kwargs: Any) -> _Unbuilt:
        return self


def _wanted(argv: list[str] | None) -> str | None:
    """The command named on the command line, when it is one of ours; None (build
    every parser) for --help, --version and anything argparse must explain."""
    for token in argv or []:
        if not token.startswith("-"):
            return token if token in COMMAND_HELP else None
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """Given ``argv``, only the named command's parser gets its flags; the others
    are registered by name and help line (for --help and for argparse's choices)."""
    wanted = _wanted(argv)
    p = _Parser(
        formatter_class=_Formatter,
        prog="unipush-bridge",
        description="uni-push 2.0 on the desktop: a daemon, a local API and a reference gateway.",
        epilog="`unipush-bridge COMMAND --help` shows a command's flags. Exit codes: 0 ok, "
        "1 runtime failure, 2 bad usage or bad config.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, parent: Any = sub, **kwargs: Any) -> argparse.ArgumentParser:
        help = kwargs.pop("help", COMMAND_HELP.get(name))
        if parent is sub and wanted is not None and name != wanted:
            parent.add_parser(name, help=help, add_help=False)
            return cast(argparse.ArgumentParser, _Unbuilt())
        if isinstance(parent, _Unbuilt):
            return cast(argparse.ArgumentParser, parent)
        cmd: argparse.ArgumentParser = parent.add_parser(
            name, help=help, description=help, formatter_class=_Formatter, **kwargs
        )
        return cmd

    def logging_flags(cmd: argparse.ArgumentParser) -> None:
        cmd.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
        cmd.add_argument("--log-format", choices=["auto", "console", "json"])

    run = command("run")
    run.add_argument("--config", type=Path, help="daemon TOML file (default: user config dir)")
    run.add_argument("--gateway", help="gateway websocket URL, e.g. ws://127.0.0.1:8787")
    run.add_argument("--appid", help=f"uni appId (default {DEFAULT_APPID})")
    run.add_argument("--state-dir", type=Path)
    run.add_argument("--socket", type=Path, help="local API socket path")
    run.add_argument("--embedded-port", type=int, help="port of the embedded gateway (0 = any)")
    run.add_argument(
        "--print-config",
        action="store_true",
        help="print the effective settings as JSON and exit (checks the config file)",
    )
    logging_flags(run)

    gw = command("gateway")
    gw.add_argument("--config", type=Path, help="gateway TOML file (default: user config dir)")
    gw.add_argument("--host")
    gw.add_argument("--port", type=int)
    gw.add_argument("--data-dir", type=Path)
    logging_flags(gw)

    send = command("send")
    send.add_argument("--appid", default=DEFAULT_APPID, help=f"default {DEFAULT_APPID}")
    send.add_argument(
        "--to",
        action="append",
        required=True,
        type=_cid_arg,
        metavar="CID",
        help="target cid (repeat for several)",
    )
    send.add_argument("--title", required=True)
    send.add_argument("--content", required=True)
    send.add_argument(
        "--payload",
        type=_json_value,
        default={},
        metavar="JSON",
        help="JSON value (default: {}); a string is --payload '\"text\"'",
    )
    send.add_argument("--force-notification", action="store_true")
    send.add_argument("--request-id")
    send.add_argument("--ttl", type=int, metavar="MS", help="settings.ttl in ms (-1 = online only)")
    send.add_argument(
        "--gateway-url",
        default=os.environ.get("UNIPUSH_BRIDGE_SEND_URL", DEFAULT_GATEWAY_HTTP),
        metavar="URL",
        help=f"the gateway's base HTTP URL (default $UNIPUSH_BRIDGE_SEND_URL or "
        f"{DEFAULT_GATEWAY_HTTP})",
    )
    send.add_argument(
        "--secret",
        default=os.environ.get("UNIPUSH_BRIDGE_GATEWAY_SERVER_SECRET"),
        help="server secret (Bearer); default $UNIPUSH_BRIDGE_GATEWAY_SERVER_SECRET",
    )

    daemon_options = _Parser(add_help=False, formatter_class=_Formatter)
    daemon_options.add_argument("--socket", type=Path, help="daemon socket (default: from --appid)")
    daemon_options.add_argument(
        "--appid",
        default=launch.default_appid(),
        help=f"the daemon's appId (default $UNIPUSH_BRIDGE_APPID or {DEFAULT_APPID})",
    )

    def local(name: str, parent: Any = sub, **kwargs: Any) -> argparse.ArgumentParser:
        return command(name, parent, parents=[daemon_options], **kwargs)

    cid = local("cid")
    cid.add_argument("--timeout", type=_finite, default=launch.CID_TIMEOUT_S)
    listen = local("listen")
    listen.add_argument("--json", action="store_true", help="one uni event per line")
    listen.add_argument(
        "--follow",
        action="store_true",
        help="keep listening across daemon restarts (waits for the daemon to come back; "
        "a push the restarted daemon hands on again is shown once)",
    )
    notify = local("notify")
    notify.add_argument("--content", required=True)
    notify.add_argument("--title")
    notify.add_argument(
        "--payload",
        type=_json_value,
        metavar="JSON",
        help="JSON value returned in the click; a string is --payload '\"text\"'",
    )
    notify.add_argument(
        "--icon",
        help="relative to the app_root setting, _www/... (also under app_root), "
        "absolute, file:// or http(s)://",
    )
    notify.add_argument("--sound", choices=["system", "none"])
    notify.add_argument(
        "--cover",
        action="store_true",
        help="replace this app's previous notification, whatever it was, in place",
    )
    notify.add_argument("--delay", type=_seconds, metavar="SECONDS")
    notify.add_argument("--when", help="time to show: ms since the epoch or an ISO 8601 date")
    notify.add_argument("--channel-id")
    notify.add_argument("--category")
    channel = command("channel")
    channel_sub = channel.add_subparsers(dest="channel_command", required=True, metavar="ACTION")
    chan_set = local(
        "set", channel_sub, help="setPushChannel: create a channel (never changed once created)"
    )
    chan_set.add_argument("--channel-id", required=True)
    chan_set.add_argument("--channel-desc", required=True)
    chan_set.add_argument("--sound-name")
    chan_set.add_argument("--enable-lights", action="store_true")
    chan_set.add_argument("--enable-vibration", action="store_true")
    chan_set.add_argument("--importance", type=int, choices=[2, 3, 4])
    chan_set.add_argument("--lockscreen-visibility", type=int, choices=[0, 1, -1, -1000])
    chan_list = local("list", channel_sub, help="getAllChannels, with each channel's settings")
    chan_list.add_argument("--json", action="store_true")
    history = local("history")
    history.add_argument(
        "--limit", type=_whole(1, HISTORY_MAX), default=20, help=f"1 to {HISTORY_MAX}"
    )
    history.add_argument("--json", action="store_true")
    status = local("status")
    status.add_argument("--json", action="store_true")
    quiet = local("quiet")
    quiet.add_argument(
        "mode",
        nargs="?",
        default="status",
        choices=["on", "off", "auto", "status"],
        help="on/off until changed, auto: follow quiet_hours; status (the default) shows it",
    )
    quiet.add_argument("--json", action="store_true")
    tray = local("tray")
    tray.add_argument("--config", type=Path, help="daemon TOML file: its appid and socket")
    web = command("web")
    web_sub = web.add_subparsers(dest="web_command", required=True, metavar="ACTION")
    web_pair = command("pair", web_sub, help="pair a page origin with the web endpoint: a token")
    pairing = web_pair.add_mutually_exclusive_group(required=True)
    pairing.add_argument("--origin", metavar="URL", help="pair this origin: prints a new token")
    pairing.add_argument("--list", action="store_true", help="list the pairings (no tokens)")
    pairing.add_argument("--revoke", metavar="ID|ORIGIN", help="forget a pairing, or an origin's")
    web_pair.add_argument("--config", type=Path, help="daemon TOML file: its appid and state dir")
    web_pair.add_argument("--appid", help="the daemon's appId (default: the config's)")
    web_pair.add_argument("--state-dir", type=Path, help="the daemon's state dir")
    capture = command("capture")
    if not isinstance(capture, _Unbuilt):
        from .testing.command import add_arguments as capture_arguments  # argparse only

        capture_arguments(capture)
    if wanted is None or wanted in SERVICE_COMMANDS:
        service_commands.add_parsers(sub)
    else:
        for name in SERVICE_COMMANDS:
            sub.add_parser(name, help=COMMAND_HELP[name], add_help=False)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    _Parser.argv = argv
    args = build_parser(argv).parse_args(argv)
    args.argv = argv
    return launch.guarded(args.command, lambda: COMMANDS[args.command](args))


def _out(text: str) -> None:
    launch.say(text)


def _err(text: object) -> None:
    launch.say(text, sys.stderr)


def _socket(args: argparse.Namespace) -> Path:
    return args.socket if args.socket is not None else default_socket(args.appid)


# daemon and gateway ---------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    """Validate the config here, then become the daemon process: it runs on plain
    options and never loads the validation stack (see options.py)."""
    from . import config

    settings = config.load(
        config.DaemonSettings,
        args.config,
        "daemon",
        {
            "gateway": args.gateway,
            "appid": args.appid,
            "state_dir": args.state_dir,
            "socket": args.socket,
            "embedded_port": args.embedded_port,
            "log_level": args.log_level,
            "log_format": args.log_format,
        },
    )
    argv = [arg for arg in args.argv if arg != "--print-config"]
    reload_argv = (sys.executable, "-m", "unipush_bridge.cli", *argv, "--print-config")
    options = settings.options(reload_argv)
    if args.print_config:
        print(options.to_json())
        return EXIT_OK
    if os.name != "posix":  # no exec that keeps the process: run in this one
        from .runtime.daemon import main as daemon_main

        return _run_in_process(daemon_main, options.to_json())
    read_end, write_end = os.pipe()
    os.write(write_end, options.to_json().encode())
    os.close(write_end)
    os.set_inheritable(read_end, True)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(
        sys.executable,
        [sys.executable, "-m", "unipush_bridge.runtime.daemon", "--options-fd", str(read_end)],
    )


def _run_in_process(daemon_main: Any, options_json: str) -> int:
    read_end, write_end = os.pipe()
    os.write(write_end, options_json.encode())
    os.close(write_end)
    result: int = daemon_main(["--options-fd", str(read_end)])
    return result


def cmd_gateway(args: argparse.Namespace) -> int:
    import asyncio

    from . import config, logs

    settings = config.load(
        config.GatewaySettings,
        args.config,
        "gateway",
        {
            "host": args.host,
            "port": args.port,
            "data_dir": args.data_dir,
            "log_level": args.log_level,
            "log_format": args.log_format,
        },
    )
    logs.setup(settings.log_level, settings.log_format)
    gw = settings.gateway_config()
    gw.check()

    async def serve() -> int:
        import signal

        from .gateway.server import serve_forever

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await serve_forever(gw, stop)
        except OSError as exc:
            _err(
                f"unipush-bridge gateway: cannot listen on {settings.host}:{settings.port}: "
                f"{exc.strerror or exc}"
            )
            return EXIT_FAIL
        return EXIT_OK

    return asyncio.run(serve())


def cmd_send(args: argparse.Namespace) -> int:
    import urllib.error
    import urllib.parse
    import urllib.request

    from .clients.pushmanager import read_envelope

    body: dict[str, Any] = {
        "push_clientid": args.to[0] if len(args.to) == 1 else args.to,
        "title": args.title,
        "content": args.content,
        "payload": args.payload,
    }
    if args.force_notification:
        body["force_notification"] = True
    if args.request_id is not None:
        body["request_id"] = args.request_id
    if args.ttl is not None:
        body["settings"] = {"ttl": args.ttl}
    base = args.gateway_url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise UsageError(f"--gateway-url must be an http(s) URL, got {args.gateway_url!r}")
    url = f"{base}/api/{urllib.parse.quote(args.appid, safe='')}/sendMessage"
    headers = {"Content-Type": "application/json"}
    if args.secret:
        headers["Authorization"] = f"Bearer {args.secret}"
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, ctype, raw = resp.status, resp.headers.get("Content-Type"), resp.read()
    except urllib.error.HTTPError as exc:
        status, ctype, raw = exc.code, exc.headers.get("Content-Type"), exc.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise GatewayUnreachable(f"cannot reach the gateway at {base}: {reason}") from None
    answer = read_envelope(url, status, ctype, raw, hint="check --gateway-url")
    _out(json_text(answer))
    if answer.get("errMsg") == INVALID_TARGET:
        # uni fails a call none of whose cids is registered: name each and why.
        return _send_outcome(
            {"data": {"": dict.fromkeys(args.to, INVALID_TARGET)}}, args.appid, base
        )
    if answer.get("errCode") != 0:
        _err(
            f"unipush-bridge send: the gateway refused the call (HTTP {status}): "
            f"{answer.get('errMsg')}"
        )
        return EXIT_FAIL
    return _send_outcome(answer, args.appid, base)


def _send_outcome(answer: dict[str, Any], appid: str, base: str) -> int:
    """Name each target that did not get the message and why; exit 1 when none did."""
    data = answer.get("data")
    targets: dict[str, Any] = {}
    if isinstance(data, dict):
        for per_task in data.values():
            if isinstance(per_task, dict):
                targets.update(per_task)
    missed = {cid: st for cid, st in targets.items() if st not in ACCEPTED}
    for cid, st in missed.items():
        _err(f"unipush-bridge send: {cid}: {st} ({_why(cid, str(st), appid, base)})")
    if targets and len(missed) == len(targets):
        _err("unipush-bridge send: no target accepted the message")
        return EXIT_FAIL
    return EXIT_OK


def _why(cid: str, status: str, appid: str, base: str) -> str:
    if status == INVALID_TARGET:
        if len(cid) != 32 or not set(cid) <= CID_CHARS:
            return "not a cid: a cid is 32 lowercase hex characters, as `unipush-bridge cid` prints"
        return (
            f"no daemon registered this cid for appId {appid} on {base}: check --appid "
            "(the daemon's is in `unipush-bridge status`) and --gateway-url"
        )
    if status == "successed_ignore":
        return "not stored: offline with --ttl -1 (online only), or past the 500th cid"
    return "see docs/gateway.md, Status strings"


# local API commands ---------------------------------------------------------------------


def _uni_call(
    args: argparse.Namespace,
    method: str,
    params: dict[str, Any],
    show: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    """Run one local API call and ``show`` what it answers (by default its errMsg);
    a failed call prints its errMsg on stderr and exits 1, with no traceback."""
    return launch.call_daemon({"socket": args.socket, "appid": args.appid}, method, params, show)


def cmd_cid(args: argparse.Namespace) -> int:
    return launch.cid(vars(args))


def cmd_listen(args: argparse.Namespace) -> int:
    import asyncio

    return asyncio.run(_listen(args))


async def _listen(args: argparse.Namespace) -> int:
    import asyncio

    from .clients import PushClient

    loop = asyncio.get_running_loop()
    #: Set when stdout's reader went away (`listen | head -1`): nothing more can be shown.
    reader_gone: asyncio.Future[None] = loop.create_future()

    def show(event: dict[str, Any]) -> asyncio.Future[None] | None:
        if args.json:
            text = json_text(event)
        else:
            data = event.get("data", {})
            # One line per event: a newline in the text is escaped too.
            text = printable(
                f"{event.get('type')!s:8} {data.get('title', '')}: {data.get('content', '')}  "
                f"payload={json_text(data.get('payload'))}"
            )
        try:
            print(text, flush=True)
        except BrokenPipeError:
            # A future that never completes: the event is not acknowledged, so the
            # daemon keeps it for the next listener; the loop below ends this one.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            if not reader_gone.done():
                reader_gone.set_result(None)
            return loop.create_future()
        return None

    launch.check_socket_path(args.socket, args.appid)
    # One client for every daemon run: it remembers the push ids it has shown.
    push = PushClient(_socket(args))
    subscribed = False
    while True:
        try:
            await push.connect()  # subscribes again by itself after the first time
        except DaemonUnavailable:
            if not (args.follow and subscribed):
                raise
            await asyncio.sleep(FOLLOW_RETRY_S)
            continue
        except UniApiError as exc:  # the restarted daemon refused the subscription
            _err(exc)
            await push.close()
            return EXIT_FAIL
        try:
            if not subscribed:
                await push.on_push_message(show)
                subscribed = True
                if not args.json:
                    print(f"listening on {push.socket_path} (Ctrl-C to stop)", file=sys.stderr)
            closed = asyncio.ensure_future(push.wait_closed())
            await asyncio.wait({closed, reader_gone}, return_when=asyncio.FIRST_COMPLETED)
            closed.cancel()
        except DaemonUnavailable:
            pass  # the daemon died mid-call
        except UniApiError as exc:
            _err(exc)
            return EXIT_FAIL
        finally:
            await push.close()
        if reader_gone.done():
            return EXIT_OK
        if not args.follow:
            _err("unipush-bridge listen: the daemon went away")
            return EXIT_FAIL
        _err("unipush-bridge listen: the daemon went away; waiting for it")


def cmd_notify(args: argparse.Namespace) -> int:
    return launch.notify(vars(args))


def cmd_channel(args: argparse.Namespace) -> int:
    if args.channel_command == "set":
        options: dict[str, Any] = {
            "channelId": args.channel_id,
            "channelDesc": args.channel_desc,
            "enableLights": args.enable_lights,
            "enableVibration": args.enable_vibration,
        }
        for flag, key in (
            ("sound_name", "soundName"),
            ("importance", "importance"),
            ("lockscreen_visibility", "lockscreenVisibility"),
        ):
            if getattr(args, flag) is not None:
                options[key] = getattr(args, flag)
        return _uni_call(args, "setPushChannel", options)

    def show(res: dict[str, Any]) -> None:
        channels = res.get("channels", [])
        if not isinstance(channels, list) or not all(isinstance(c, dict) for c in channels):
            raise ProtocolError("getChannelDetails must answer channels as objects")
        if args.json:
            print(json_text(channels, indent=2))
            return
        for c in channels:
            line = (
                f"{c['channelId']:24} importance={c['importance']} "
                f"sound={c['soundName'] or 'default'}  {c['channelDesc']}"
            )
            print(printable(line))

    return _uni_call(args, "getChannelDetails", {}, show)


def cmd_history(args: argparse.Namespace) -> int:
    from datetime import datetime

    def show(res: dict[str, Any]) -> None:
        entries: list[dict[str, Any]] = res.get("entries", [])
        if args.json:
            print(json_text(entries, indent=2))
            return
        if not entries:
            _err(f"no notifications shown yet by the daemon on {_socket(args)}")
        for e in entries:
            shown = datetime.fromtimestamp(e["shown_at"]).strftime("%Y-%m-%d %H:%M:%S")
            clicked = "clicked" if e["clicked"] else "       "
            line = (
                f"{shown}  {clicked}  {e['source']:5} {e['channel'] or '-':16} "
                f"{e['title']}: {e['content']}"
            )
            if e.get("not_shown"):  # a delayed one that fell due with no server
                line += f"  (not shown: {e['not_shown']})"
            print(printable(line))

    return _uni_call(args, "history", {"limit": args.limit}, show)


def cmd_status(args: argparse.Namespace) -> int:
    def show(res: dict[str, Any]) -> None:
        if args.json:
            print(json_text(res, indent=2))
            return
        conn = res.get("connection", {})
        lines = [
            f"appid:          {res.get('appid')}",
            f"cid:            {res.get('cid') or '(not registered yet)'}",
            f"gateway:        {res.get('gateway')}"
            + (" (embedded)" if res.get("embedded_gateway") else ""),
            f"connection:     {conn.get('state')}"
            + (f" (last error: {conn['last_error']})" if conn.get("last_error") else ""),
            f"listeners:      {res.get('listeners')}",
            f"notifications:  {res.get('notifications')}",
            f"held:           {res.get('held_for_listener')} waiting for a listener"
            + (
                " (at max_held_mib: the gateway keeps the rest until an app listens)"
                if res.get("held_full")
                else ""
            ),
            f"quiet hours:    {_quiet_line(res['quiet'])}" if res.get("quiet") else "",
            f"counters:       {json.dumps(res.get('counters'))}",
        ]
        print("\n".join(printable(line) for line in lines if line))

    return _uni_call(args, "status", {}, show)


def _quiet_line(q: dict[str, Any]) -> str:
    state = "quiet" if q.get("active") else "not quiet"
    schedule = q.get("schedule") or "no schedule"
    return f"{state} ({q.get('mode')}, {schedule}), {q.get('unread')} held back"


def cmd_quiet(args: argparse.Namespace) -> int:
    """The quiet hours toggle (setQuietHours), or its state (getQuietHours)."""

    def show(res: dict[str, Any]) -> None:
        if args.json:
            print(json_text(res["quiet"], indent=2))
        else:
            print(printable(f"quiet hours: {_quiet_line(res['quiet'])}"))

    if args.mode == "status":
        return _uni_call(args, "getQuietHours", {}, show)
    on = {"on": True, "off": False, "auto": None}[args.mode]
    return _uni_call(args, "setQuietHours", {"on": on}, show)


def cmd_tray(args: argparse.Namespace) -> int:
    from .tray.app import cmd_tray as run_tray  # dbus-fast: loaded only for the tray

    return run_tray(args)


def cmd_web(args: argparse.Namespace) -> int:
    from .runtime.webpair import cmd_web_pair

    return cmd_web_pair(args)


def cmd_capture(args: argparse.Namespace) -> int:
    from .testing.command import run

    return run(args)


#: Each command's entry point: it takes the parsed arguments and returns the exit code.
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cmd_run,
    "gateway": cmd_gateway,
    "send": cmd_send,
    "cid": cmd_cid,
    "listen": cmd_listen,
    "notify": cmd_notify,
    "channel": cmd_channel,
    "history": cmd_history,
    "status": cmd_status,
    "quiet": cmd_quiet,
    "service": service_commands.cmd_service,
    "doctor": service_commands.cmd_doctor,
    "capture": cmd_capture,
    "tray": cmd_tray,
    "web": cmd_web,
}

if __name__ == "__main__":
    sys.exit(main())
