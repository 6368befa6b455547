"""``unipush-bridge capture``: the capture server as a process of its own (argparse
only at import: the CLI builds every parser for --help).

Prints one JSON line when ready, ``{"bus": ADDRESS, "api": PATH}``, so a caller reads it
instead of polling; runs until SIGTERM/SIGINT, then stops its private bus if it made one.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

__all__ = ["add_arguments", "run"]


def add_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--bus",
        default=None,
        help="bus address to serve on, or 'private' to start a dbus-daemon of its own "
        "(default: $DBUS_SESSION_BUS_ADDRESS)",
    )
    cmd.add_argument("--api", type=Path, help="control API socket (default: a private temp dir)")


def run(args: argparse.Namespace) -> int:
    import asyncio
    import shutil
    import tempfile

    from ..errors import UsageError
    from .bus import PrivateBus

    bus: PrivateBus | None = None
    address = args.bus or os.environ.get("DBUS_SESSION_BUS_ADDRESS", "")
    if address == "private":
        bus = PrivateBus().start()
        address = bus.address
    if not address:
        raise UsageError("--bus: no bus given and DBUS_SESSION_BUS_ADDRESS is not set")
    made = None if args.api else Path(tempfile.mkdtemp(prefix="unipush-capture-"))
    api = args.api if made is None else made / "control.sock"
    try:
        asyncio.run(_serve(address, api))
    finally:
        if bus is not None:
            bus.stop()
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
    return 0


async def _serve(address: str, api: Path) -> None:
    import asyncio
    import json
    import signal
    import sys

    from .capture import CaptureServer
    from .control import serve_control

    server = await CaptureServer(address).start()
    control = await serve_control(server, api)
    print(json.dumps({"bus": address, "api": str(api)}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    control.close()
    await server.stop()
    sys.stdout.flush()
