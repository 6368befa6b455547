"""The README's numbered walk from a fresh clone to an enabled user service with a tray
(issue 14, "Done when"; brief item 5): every command it has the user type is one the
real parser takes, flags included, and it covers install --tray, status and doctor."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from unipush_bridge import cli

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def walk() -> list[list[str]]:
    """The `.venv/bin/unipush-bridge ...` commands of the numbered list under
    "Running as a service", as argv lists (without the program)."""
    section = README.split("## Running as a service", 1)[1].split("\n## ", 1)[0]
    steps = "\n".join(re.findall(r"^\d+\. .*(?:\n   .*)*", section, re.M))
    spans = re.findall(r"`\.venv/bin/unipush-bridge ([^`]+)`", steps)
    return [shlex.split(span) for span in spans]


def test_the_walk_parses_and_reaches_a_service_with_a_tray() -> None:
    """issue 14 brief item 5: each command parses as written (an unknown flag or action
    exits 2 here); the walk installs with --tray, then asks status and doctor."""
    commands = walk()
    for argv in commands:
        args = cli.build_parser().parse_args(argv)
        assert args is not None, argv
    assert ["service", "install", "--tray"] in commands
    assert ["service", "status"] in commands and ["doctor"] in commands
    assert commands.index(["service", "install", "--tray"]) < commands.index(["doctor"])
