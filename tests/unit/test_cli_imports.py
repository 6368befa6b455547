"""Local commands start light (issue 13 item 1): in a fresh interpreter, running a
local command (cid, notify, status, history, channel, and --version or --help) loads
none of the heavy modules, which load only in the commands that need them (run,
gateway, listen, send)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

HEAVY = [
    "pydantic",
    "pydantic_settings",
    "aiohttp",
    "structlog",
    "desktop_notifier",
    "dbus_fast",
    "websockets",
    "asyncio",
    "platformdirs",
    "logging",
    "dataclasses",
    "unipush_bridge.config",
    "unipush_bridge.clients",
    "unipush_bridge.runtime",
    "unipush_bridge.gateway",
]

#: Runs the CLI in-process, then prints the heavy modules it loaded (an exit code of
#: 1, no daemon on the socket, is expected and fine).
PROBE = """
import json, sys
from unipush_bridge import cli
try:
    cli.main(sys.argv[1:])
except SystemExit:
    pass
heavy = json.loads(%r)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in heavy or m in heavy)))
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["cid"],
        ["notify", "--content", "x", "--payload", '{"k": 1}'],
        ["status", "--json"],
        ["quiet", "on"],  # issue 14 item 4
        ["history", "--limit", "3"],
        ["channel", "list"],
        ["channel", "set", "--channel-id", "a", "--channel-desc", "A"],
        ["--version"],
        ["--help"],
        ["notify", "--help"],
    ],
    ids=lambda a: "-".join(a)[:30],
)
def test_a_local_command_imports_nothing_heavy(argv: list[str], tmp_path: object) -> None:
    """issue 13 item 1: argument parsing, the wire module and a plain socket only."""
    socket = ["--socket", f"{tmp_path}/none.sock"] if not argv[0].startswith("-") else []
    if "--help" in argv:
        socket = []
    res = subprocess.run(
        [sys.executable, "-c", PROBE % json.dumps(HEAVY), *argv, *socket],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    loaded = json.loads(res.stdout.strip().splitlines()[-1])
    assert loaded == [], (argv, loaded, res.stderr)


def test_the_probe_sees_heavy_modules_where_they_belong(tmp_path: object) -> None:
    """The probe itself works: `run --print-config` must load the config stack."""
    res = subprocess.run(
        [
            sys.executable,
            "-c",
            PROBE % json.dumps(HEAVY),
            "run",
            "--print-config",
            "--state-dir",
            f"{tmp_path}/state",
            "--config",
            f"{tmp_path}/none.toml",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    loaded = json.loads(res.stdout.strip().splitlines()[-1])
    assert "pydantic" in loaded and "unipush_bridge.config" in loaded, (loaded, res.stderr)


def _listing(argv: list[str] | None) -> list[tuple[str, str | None]]:
    from unipush_bridge import cli

    parser = cli.build_parser(argv)
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return [(c.dest, c.help) for c in sub._choices_actions]


@pytest.mark.parametrize("command", ["cid", "notify", "send", "doctor", "run"])
def test_a_partly_built_parser_lists_the_same_commands(command: str) -> None:
    """issue 13 item 1: only the named command's flags are built; the others stay
    listed with the same help line (service and doctor's lines live in cli.py too)."""
    assert _listing([command]) == _listing(None)
