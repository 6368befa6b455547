"""The ``unipush-bridge`` command. Exit codes: 0 ok, 1 runtime failure, 2 bad usage
or bad config; every error message names its cause.

Everything printed may hold a sender's text, so it goes through :func:`logs.printable`
or :func:`logs.json_text` first: no terminal control sequence gets through."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from . import __version__, config, logs
from .clients import PushClient
from .errors import (
    EXIT_FAIL,
    EXIT_OK,
    ConfigError,
    DaemonUnavailable,
    UniApiError,
    UnipushError,
    UsageError,
)
from .logs import json_text, printable
from .service import commands as service_commands  # argparse only; the rest loads when run

DEFAULT_GATEWAY_HTTP = "http://127.0.0.1:8787"
#: How often `listen --follow` looks for a daemon that went away.
FOLLOW_RETRY_S = 0.2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="unipush-bridge",
        description=("uni-push 2.0 on the desktop: a daemon, a local API and a reference gateway."),
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def logging_flags(cmd: argparse.ArgumentParser) -> None:
        cmd.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
        cmd.add_argument("--log-format", choices=["auto", "console", "json"])

    run = sub.add_parser("run", help="run the daemon (with an embedded gateway if none is set)")
    run.add_argument("--config", type=Path, help="daemon TOML file (default: user config dir)")
    run.add_argument("--gateway", help="gateway websocket URL, e.g. ws://127.0.0.1:8787")
    run.add_argument("--appid", help=f"uni appId (default {config.DEFAULT_APPID})")
    run.add_argument("--state-dir", type=Path)
    run.add_argument("--socket", type=Path, help="local API socket path")
    run.add_argument("--embedded-port", type=int, help="port of the embedded gateway (0 = any)")
    run.add_argument(
        "--print-config",
        action="store_true",
        help="print the effective settings as JSON and exit (checks the config file)",
    )
    logging_flags(run)

    gw = sub.add_parser("gateway", help="run the reference gateway")
    gw.add_argument("--config", type=Path, help="gateway TOML file (default: user config dir)")
    gw.add_argument("--host")
    gw.add_argument("--port", type=int)
    gw.add_argument("--data-dir", type=Path)
    logging_flags(gw)

    send = sub.add_parser("send", help="call sendMessage on a gateway and print its answer")
    send.add_argument("--appid", default=config.DEFAULT_APPID)
    send.add_argument(
        "--to",
        action="append",
        required=True,
        metavar="CID",
        help="target cid (repeat for several)",
    )
    send.add_argument("--title", required=True)
    send.add_argument("--content", required=True)
    send.add_argument(
        "--payload",
        default="{}",
        help="JSON object or string (default: {}); a non-JSON value is sent as a string",
    )
    send.add_argument("--force-notification", action="store_true")
    send.add_argument("--request-id")
    send.add_argument("--ttl", type=int, metavar="MS", help="settings.ttl in ms (-1 = online only)")
    send.add_argument(
        "--gateway-url", default=os.environ.get("UNIPUSH_BRIDGE_SEND_URL", DEFAULT_GATEWAY_HTTP)
    )
    send.add_argument(
        "--secret",
        default=os.environ.get("UNIPUSH_BRIDGE_GATEWAY_SERVER_SECRET"),
        help="server secret (Bearer); default $UNIPUSH_BRIDGE_GATEWAY_SERVER_SECRET",
    )

    daemon_options = argparse.ArgumentParser(add_help=False)
    daemon_options.add_argument("--socket", type=Path, help="daemon socket (default: from --appid)")
    daemon_options.add_argument(
        "--appid", default=os.environ.get("UNIPUSH_BRIDGE_APPID", config.DEFAULT_APPID)
    )

    def local(name: str, help: str, parent: Any = sub) -> argparse.ArgumentParser:
        cmd: argparse.ArgumentParser = parent.add_parser(name, help=help, parents=[daemon_options])
        return cmd

    cid = local("cid", "print this device's cid (getPushClientId)")
    cid.add_argument("--timeout", type=float, default=30.0)
    listen = local("listen", "print receive and click events (onPushMessage)")
    listen.add_argument("--json", action="store_true", help="one uni event per line")
    listen.add_argument(
        "--follow",
        action="store_true",
        help="keep listening across daemon restarts (waits for the daemon to come back; "
        "a push the restarted daemon hands on again is shown once)",
    )
    notify = local("notify", "show a local notification (createPushMessage)")
    notify.add_argument("--content", required=True)
    notify.add_argument("--title")
    notify.add_argument("--payload", help="JSON value or plain string, returned in the click")
    notify.add_argument(
        "--icon", help="relative to app_root, _www/..., absolute, file:// or http(s)://"
    )
    notify.add_argument("--sound", choices=["system", "none"])
    notify.add_argument(
        "--cover",
        action="store_true",
        help="replace this app's previous notification, whatever it was, in place",
    )
    notify.add_argument("--delay", type=float, metavar="SECONDS")
    notify.add_argument("--when", help="time to show: ms since the epoch or an ISO 8601 date")
    notify.add_argument("--channel-id")
    notify.add_argument("--category")
    channel = sub.add_parser("channel", help="notification channels (getChannelManager)")
    channel_sub = channel.add_subparsers(dest="channel_command", required=True, metavar="ACTION")
    chan_set = local(
        "set", "setPushChannel: create a channel (never changed once created)", channel_sub
    )
    chan_set.add_argument("--channel-id", required=True)
    chan_set.add_argument("--channel-desc", required=True)
    chan_set.add_argument("--sound-name")
    chan_set.add_argument("--enable-lights", action="store_true")
    chan_set.add_argument("--enable-vibration", action="store_true")
    chan_set.add_argument("--importance", type=int, choices=[2, 3, 4])
    chan_set.add_argument("--lockscreen-visibility", type=int, choices=[0, 1, -1, -1000])
    chan_list = local("list", "getAllChannels", channel_sub)
    chan_list.add_argument("--json", action="store_true")
    history = local("history", "the last notifications shown, newest first")
    history.add_argument("--limit", type=int, default=20)
    history.add_argument("--json", action="store_true")
    status = local("status", "show the daemon's state")
    status.add_argument("--json", action="store_true")
    service_commands.add_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        if args.command in SYNC_COMMANDS:
            return SYNC_COMMANDS[args.command](args)
        return asyncio.run(_dispatch(args))
    except UnipushError as exc:  # the one root: each error knows its exit code
        kind = "config error: " if isinstance(exc, ConfigError) else ""
        _err(f"unipush-bridge {args.command}: {kind}{exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        return EXIT_OK


async def _dispatch(args: argparse.Namespace) -> int:
    handlers = {
        "gateway": cmd_gateway,
        "cid": cmd_cid,
        "listen": cmd_listen,
        "notify": cmd_notify,
        "channel": cmd_channel,
        "history": cmd_history,
        "status": cmd_status,
    }
    result: int = await handlers[args.command](args)
    return result


def _out(text: str) -> None:
    """One line (or block) on stdout, safe for a terminal; flushed for pipes."""
    print(printable(text, multiline=True), flush=True)


def _err(text: object) -> None:
    print(printable(str(text), multiline=True), file=sys.stderr, flush=True)


def _socket(args: argparse.Namespace) -> Path:
    return args.socket if args.socket is not None else config.default_socket(args.appid)


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


# daemon and gateway ---------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    """Validate the config here, then become the daemon process: it runs on plain
    options and never loads the validation stack (see options.py)."""
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


async def cmd_gateway(args: argparse.Namespace) -> int:
    from .gateway.server import serve_forever

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
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await serve_forever(gw, stop)
    except OSError as exc:
        print(
            f"unipush-bridge gateway: cannot listen on {settings.host}:{settings.port}: "
            f"{exc.strerror or exc}",
            file=sys.stderr,
        )
        return EXIT_FAIL
    return EXIT_OK


def cmd_send(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {
        "push_clientid": args.to[0] if len(args.to) == 1 else args.to,
        "title": args.title,
        "content": args.content,
        "payload": _json_or_text(args.payload),
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
            text = resp.read().decode()
    except urllib.error.HTTPError as exc:
        text = exc.read().decode()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        _err(f"unipush-bridge send: cannot reach the gateway at {base}: {reason}")
        return EXIT_FAIL
    _out(text)
    try:
        answer = json.loads(text)
    except json.JSONDecodeError:
        return EXIT_FAIL
    return EXIT_OK if answer.get("errCode") == 0 else EXIT_FAIL


# local API commands ---------------------------------------------------------------------


async def cmd_cid(args: argparse.Namespace) -> int:
    return await _uni_call(
        args,
        lambda push: push.get_push_client_id(timeout=args.timeout),
        lambda res: _out(str(res["cid"])),
    )


async def cmd_listen(args: argparse.Namespace) -> int:
    def show(event: dict[str, Any]) -> None:
        if args.json:
            print(json_text(event), flush=True)
            return
        data = event.get("data", {})
        # One line per event: a newline in the text is escaped too.
        line = (
            f"{event.get('type')!s:8} {data.get('title', '')}: {data.get('content', '')}  "
            f"payload={json_text(data.get('payload'))}"
        )
        print(printable(line), flush=True)

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
            await push.wait_closed()
        except DaemonUnavailable:
            pass  # the daemon died mid-call
        except UniApiError as exc:
            _err(exc)
            return EXIT_FAIL
        finally:
            await push.close()
        if not args.follow:
            _err("unipush-bridge listen: the daemon went away")
            return EXIT_FAIL
        _err("unipush-bridge listen: the daemon went away; waiting for it")


async def cmd_notify(args: argparse.Namespace) -> int:
    options: dict[str, Any] = {"content": args.content}
    if args.payload is not None:
        options["payload"] = _json_or_text(args.payload)
    if args.when is not None:
        options["when"] = int(args.when) if args.when.isdigit() else args.when
    if args.cover:
        options["cover"] = True
    for flag, key in (
        ("title", "title"),
        ("icon", "icon"),
        ("sound", "sound"),
        ("delay", "delay"),
        ("channel_id", "channelId"),
        ("category", "category"),
    ):
        if getattr(args, flag) is not None:
            options[key] = getattr(args, flag)
    return await _uni_call(args, lambda push: push.create_push_message(**options))


async def _uni_call(
    args: argparse.Namespace,
    call: Callable[[PushClient], Awaitable[Any]],
    show: Callable[[Any], None] | None = None,
) -> int:
    """Run one local API call and ``show`` what it returns (by default its errMsg);
    a failed call prints its errMsg on stderr and exits 1, with no traceback."""
    async with PushClient(_socket(args)) as push:
        try:
            res = await call(push)
        except UniApiError as exc:
            _err(exc)
            return EXIT_FAIL
    if show is None:
        _out(str(res["errMsg"]))
    else:
        show(res)
    return EXIT_OK


async def cmd_channel(args: argparse.Namespace) -> int:
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
        return await _uni_call(
            args, lambda push: push.get_channel_manager().set_push_channel(**options)
        )

    def show(channels: list[dict[str, Any]]) -> None:
        if args.json:
            print(json_text(channels, indent=2))
            return
        for c in channels:
            line = (
                f"{c['channelId']:24} importance={c['importance']} "
                f"sound={c['soundName'] or 'default'}  {c['channelDesc']}"
            )
            print(printable(line))

    return await _uni_call(
        args, lambda push: push.get_channel_manager().get_channel_details(), show
    )


async def cmd_history(args: argparse.Namespace) -> int:
    def show(entries: list[dict[str, Any]]) -> None:
        if args.json:
            print(json_text(entries, indent=2))
            return
        for e in entries:
            shown = datetime.fromtimestamp(e["shown_at"]).strftime("%Y-%m-%d %H:%M:%S")
            clicked = "clicked" if e["clicked"] else "       "
            line = (
                f"{shown}  {clicked}  {e['source']:5} {e['channel'] or '-':16} "
                f"{e['title']}: {e['content']}"
            )
            print(printable(line))

    return await _uni_call(args, lambda push: push.history(args.limit), show)


async def cmd_status(args: argparse.Namespace) -> int:
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
            f"held:           {res.get('held_for_listener')} waiting for a listener",
            f"counters:       {json.dumps(res.get('counters'))}",
        ]
        print("\n".join(printable(line) for line in lines))

    return await _uni_call(args, lambda push: push.status(), show)


SYNC_COMMANDS = {
    "run": cmd_run,
    "send": cmd_send,
    "service": service_commands.cmd_service,
    "doctor": service_commands.cmd_doctor,
}

if __name__ == "__main__":
    sys.exit(main())
