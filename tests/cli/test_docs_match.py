"""The README's Commands table and the parser agree, and the package cites no file
that is not in the repository (issue 12 items 14, 15)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from unipush_bridge import cli

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def subcommands(
    parser: argparse.ArgumentParser, prefix: str = ""
) -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[f"{prefix}{name}"] = sub
                found.update(subcommands(sub, f"{prefix}{name} "))
    return found


def row(command: str) -> str | None:
    for line in README.splitlines():
        if line.startswith(f"| `unipush-bridge {command} ") or line.startswith(
            f"| `unipush-bridge {command}`"
        ):
            return line
    return None


#: Commands with a README section of their own instead of a row of the table.
ELSEWHERE = {
    "service",
    "service install",
    "service uninstall",
    "service status",
    "doctor",
    "channel",
}
HIDDEN = {"-h", "--help"}
#: Every local command has these; the sentence under the table says so once.
SHARED = {"--socket", "--appid"}


@pytest.mark.parametrize("command", sorted(set(subcommands(cli.build_parser())) - ELSEWHERE))
def test_every_flag_is_in_the_commands_table(command: str) -> None:
    """issue 12 item 14: send --secret, run --log-level / --log-format were missing."""
    line = row(command)
    assert line is not None, f"README's Commands table has no row for {command}"
    parser = subcommands(cli.build_parser())[command]
    flags = {o for a in parser._actions for o in a.option_strings if o.startswith("--")}
    if command not in ("run", "gateway", "send"):
        flags -= SHARED
    missing = sorted(f for f in flags - HIDDEN if not re.search(re.escape(f) + r"\b", line))
    assert not missing, f"README's row for {command} lacks {missing}"


def test_send_defaults_are_in_the_readme() -> None:
    """issue 12 item 14."""
    line = row("send")
    assert line is not None
    assert cli.DEFAULT_GATEWAY_HTTP in line and "__UNI__DESKTOP" in line


def test_no_citation_of_files_outside_the_repository() -> None:
    """issue 12 item 15: comments and docstrings say the fact or point into docs/."""
    paths = [ROOT / "pyproject.toml", *sorted((ROOT / "daemon").rglob("*.py"))]
    bad = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in paths
        for n, text in enumerate(p.read_text().splitlines(), 1)
        if re.search(r"\.\./shared|\bresearch/|DESIGN\.md", text)
    ]
    assert not bad, bad
