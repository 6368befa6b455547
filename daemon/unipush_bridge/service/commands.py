"""The ``service`` and ``doctor`` commands: their flags and what they print. Kept out
of ``cli.py`` (which only registers them); the heavy parts are imported when run."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from .. import launch
from ..errors import EXIT_FAIL, EXIT_OK, UsageError
from ..logs import printable


def add_parsers(sub: Any) -> None:
    """Add ``service install|uninstall|status`` and ``doctor`` to the CLI's subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--appid", default=launch.default_appid())
    common.add_argument("--config", type=Path, help="daemon TOML file the service runs with")
    common.add_argument(
        "--platform",
        choices=["systemd", "launchd", "windows"],
        help="which service manager (default: this system's); with --print, to see another's",
    )
    svc = sub.add_parser("service", help="run the daemon as a user service (systemd, launchd)")
    actions = svc.add_subparsers(dest="service_command", required=True, metavar="ACTION")
    inst = actions.add_parser(
        "install", parents=[common], help="write, enable and start the user service"
    )
    inst.add_argument("--print", action="store_true", help="show it; write and run nothing")
    inst.add_argument("--no-start", action="store_true", help="enable it but do not start it now")
    inst.add_argument(
        "--tray", action="store_true", help="also a user unit for the tray (Linux, systemd)"
    )
    actions.add_parser(
        "uninstall", parents=[common], help="stop, disable and remove it (and its tray unit)"
    )
    st = actions.add_parser("status", parents=[common], help="installed, enabled, active?")
    st.add_argument("--json", action="store_true")

    doc = sub.add_parser("doctor", help="check each part notifications need, in order")
    doc.add_argument("--appid", default=launch.default_appid())
    doc.add_argument("--config", type=Path, help="daemon TOML file (default: user config dir)")
    doc.add_argument("--state-dir", type=Path)
    doc.add_argument("--socket", type=Path, help="daemon socket (default: from the config)")
    doc.add_argument("--json", action="store_true", help="one JSON object with every check")
    doc.add_argument(
        "--notify", action="store_true", help="also show a test notification and close it"
    )


def installation(args: argparse.Namespace) -> Any:
    from .units import Installation

    config = None
    if args.config is not None:
        config = args.config.expanduser().absolute()
        if not config.is_file():
            raise UsageError(f"--config {args.config}: no such file")
    return Installation(python=sys.executable, appid=args.appid, config=config)


def cmd_service(args: argparse.Namespace) -> int:
    from . import install

    inst = installation(args)
    kind = args.platform or install.detect_kind()
    t = install.target(kind, inst, os.environ)
    if args.service_command == "install":
        targets = [t]
        if args.tray:  # after the daemon's: its unit names the daemon's
            targets.append(install.tray_target(kind, inst, os.environ))
        if args.print:
            for one in targets:
                print(f"# {one.path}", file=sys.stderr)
                sys.stdout.write(one.content.decode())
            return EXIT_OK
        if kind != install.detect_kind():
            raise UsageError(f"--platform {kind} is not this system's; use it with --print")
        for line in install.install(targets, install.run_command, start=not args.no_start):
            print(line)
        return EXIT_OK
    if args.service_command == "uninstall":
        if kind == "systemd":  # the tray's first: it wants the daemon's
            tray = install.tray_target(kind, inst, os.environ)
            if tray.path.exists():
                for line in install.uninstall(tray, install.run_command):
                    print(line)
        for line in install.uninstall(t, install.run_command):
            print(line)
        return EXIT_OK
    state = install.status(t, install.run_command)
    if args.json:
        print(json.dumps({**state.__dict__, "ok": state.ok}, indent=2))
    else:
        print(show_state(state))
    return EXIT_OK if state.ok else EXIT_FAIL


def show_state(state: Any) -> str:
    def word(value: bool | None, yes: str, no: str) -> str:
        return "unknown" if value is None else (yes if value else no)

    lines = [
        f"service:    {state.name} ({state.kind})",
        f"file:       {state.path}" + ("" if state.installed else " (not installed)"),
        f"enabled:    {word(state.enabled, 'yes', 'no')}",
        f"active:     {word(state.active, 'yes', 'no')}",
    ]
    lines += [f"{k + ':':11} {v}" for k, v in state.detail.items() if v]
    # StatusText is the daemon's STATUS=, with the gateway's close reason in it.
    return "\n".join(printable(line) for line in lines)


def cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import Request, run
    from .report import as_json, as_text, exit_code

    results = run(Request.from_args(args))
    print(as_json(results) if args.json else as_text(results))
    return exit_code(results)
