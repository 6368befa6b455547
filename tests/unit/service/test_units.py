"""The service definitions as text (issue 14 item 1): the systemd unit through the real
``systemd-analyze --user verify``, the launchd agent through a plistlib round trip, the
Windows Startup entry word for word."""

from __future__ import annotations

import plistlib
import shutil
import sys
from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest

from tests.unit.service.systemdkit import systemd_verify
from unipush_bridge.errors import ConfigError, StoreDamaged, UsageError
from unipush_bridge.service import units
from unipush_bridge.service.units import Installation


def unit_lines(text: str) -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            keys.setdefault(k, []).append(v)
    return keys


def test_systemd_unit_is_notify_with_watchdog_and_no_restart_on_exit_2() -> None:
    """issue 14 item 1: Type=notify, WatchdogSec, Restart=on-failure, RestartPreventExitStatus=2,
    ExecStart = this interpreter running this package's CLI with the appid and config."""
    inst = Installation(python="/opt/venv/bin/python", appid="__UNI__ABC", config=Path("/c/d.toml"))
    keys = unit_lines(units.systemd_unit(inst))
    assert keys["Type"] == ["notify"]
    assert keys["NotifyAccess"] == ["main"]
    assert keys["WatchdogSec"] == [str(units.WATCHDOG_S)]
    assert keys["Restart"] == ["on-failure"]
    assert keys["RestartPreventExitStatus"] == ["2"]
    assert keys["ExecStart"] == [
        "/opt/venv/bin/python -m unipush_bridge.cli run --appid __UNI__ABC --config /c/d.toml"
    ]
    assert keys["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert units.unit_name(inst) == "unipush-bridge-__UNI__ABC.service"
    assert units.unit_name(Installation(python="p")) == "unipush-bridge.service"


def test_a_control_character_in_a_word_is_escaped_not_written() -> None:
    """A newline in a config path ended the ExecStart line: "Unbalanced quoting",
    a unit that never starts (and the rest of the path read as a directive)."""
    word = units.systemd_word("/a\nExecStartPre=/bin/x\x1b\x7f")
    assert word == '"/a\\x0aExecStartPre=/bin/x\\x1b\\x7f"'
    unit = units.systemd_unit(Installation(python="/p", config=Path("/a\nb")))
    assert '--config "/a\\x0ab"\n' in unit


def test_systemd_words_are_quoted_and_specifiers_doubled() -> None:
    """issue 14 item 1: a config path with a space, %, $ or a quote is one ExecStart word."""
    assert units.systemd_word('/a b/100%$x"y.toml') == '"/a b/100%%$$x\\"y.toml"'
    assert units.systemd_word("--appid") == "--appid"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
@pytest.mark.parametrize("config", [None, "my config/100% $HOME.toml", "it's\nx\tq\x1b/d.toml"])
def test_systemd_analyze_verifies_the_unit(tmp_path: Path, config: str | None) -> None:
    """issue 14 item 1: the generated unit, written where `service install` writes it, passes
    `systemd-analyze --user verify` with no warning (an unknown key or bad value warns)."""
    conf = None
    if config is not None:
        conf = tmp_path / config
        conf.parent.mkdir()
        conf.write_text("")
    inst = Installation(python=sys.executable, appid="__UNI__VERIFY", config=conf, home=tmp_path)
    unit = tmp_path / units.unit_name(inst)
    unit.write_text(units.systemd_unit(inst))
    done = systemd_verify(tmp_path, unit)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr
    # And it does catch a broken unit (so the empty stderr above means something).
    unit.write_text(units.systemd_unit(inst).replace("WatchdogSec=30", "WatchdogSec=soon"))
    bad = systemd_verify(tmp_path, unit)
    assert "WatchdogSec" in bad.stderr or "sec value" in bad.stderr


def test_launchd_plist_round_trip() -> None:
    """issue 14 item 1: the agent parses back (plistlib) to RunAtLoad, KeepAlive on failure,
    the log paths in ~/Library/Logs and the daemon's argv, one word per string."""
    inst = Installation(
        python="/Users/me/.local/pipx/venvs/unipush-bridge/bin/python",
        appid="__UNI__MAC",
        config=Path("/Users/me/my conf.toml"),
        home=PurePosixPath("/Users/me"),
    )
    raw = units.launchd_plist(inst)
    assert raw.startswith(b"<?xml")
    agent = plistlib.loads(raw)
    assert agent == units.launchd_agent(inst)
    assert agent["Label"] == "net.unipush-bridge.daemon.__UNI__MAC"
    assert agent["RunAtLoad"] is True
    assert agent["KeepAlive"] == {"SuccessfulExit": False}
    assert agent["ProgramArguments"] == [
        "/Users/me/.local/pipx/venvs/unipush-bridge/bin/python",
        "-m",
        "unipush_bridge.cli",
        "run",
        "--appid",
        "__UNI__MAC",
        "--config",
        "/Users/me/my conf.toml",
    ]
    assert agent["StandardErrorPath"] == "/Users/me/Library/Logs/unipush-bridge-__UNI__MAC.log"
    assert agent["StandardOutPath"] == "/Users/me/Library/Logs/unipush-bridge-__UNI__MAC.out.log"
    assert str(units.plist_path(inst)) == (
        "/Users/me/Library/LaunchAgents/net.unipush-bridge.daemon.__UNI__MAC.plist"
    )
    default = plistlib.loads(
        units.launchd_plist(Installation(python="/p", home=PurePosixPath("/h")))
    )
    assert default["Label"] == "net.unipush-bridge.daemon"


def test_windows_startup_entry_text() -> None:
    """issue 14 item 1: a .cmd in the Startup folder running pythonw.exe (no console window),
    each word quoted for cmd.exe, % doubled."""
    inst = Installation(
        python=r"C:\Program Files\Python311\python.exe",
        appid="__UNI__WIN",
        config=Path("C:/Users/me/100% conf.toml"),
    )
    assert units.startup_entry(inst) == (
        "@echo off\r\n"
        "rem Written by `unipush-bridge service install --appid __UNI__WIN`;\r\n"
        "rem `unipush-bridge service uninstall` removes it.\r\n"
        'start "unipush-bridge" /B "C:\\Program Files\\Python311\\pythonw.exe" -m '
        "unipush_bridge.cli run --appid __UNI__WIN "
        f'--config "{Path("C:/Users/me/100%% conf.toml")}"\r\n'
    )
    appdata = PureWindowsPath(r"C:\Users\me\AppData\Roaming")
    assert str(units.startup_path(appdata, inst)) == (
        r"C:\Users\me\AppData\Roaming\Microsoft\Windows\Start Menu\Programs\Startup"
        r"\unipush-bridge-__UNI__WIN.cmd"
    )


def test_an_appid_that_cannot_name_a_unit_is_refused() -> None:
    """issue 14 item 1: the error names --appid and the rule."""
    with pytest.raises(UsageError, match=r"--appid 'a/b'.*A-Z a-z 0-9 _ \. -"):
        Installation(python="p", appid="a/b")


def test_the_packaged_unit_matches_the_generated_one() -> None:
    """issue 14 item 1: packaging/systemd/unipush-bridge.service (for installing by hand) has
    the generated unit's service settings, and both leave exit code 2 (bad config, a damaged
    store) alone."""
    root = Path(__file__).resolve().parents[3]
    packaged = unit_lines((root / "packaging/systemd/unipush-bridge.service").read_text())
    generated = unit_lines(units.systemd_unit(Installation(python="/p")))
    for key in (
        "Type",
        "NotifyAccess",
        "WatchdogSec",
        "ExecReload",
        "Restart",
        "RestartPreventExitStatus",
        "StartLimitIntervalSec",
        "StartLimitBurst",
        "KillMode",
    ):
        assert packaged[key] == generated[key], key
    assert units.NO_RESTART_EXIT == StoreDamaged.exit_code == ConfigError.exit_code


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_analyze_verifies_the_packaged_unit(tmp_path: Path) -> None:
    """issue 14 item 1: the hand-install copy passes `systemd-analyze --user verify` too."""
    text = Path(__file__).resolve().parents[3] / "packaging/systemd/unipush-bridge.service"
    unit = tmp_path / "unipush-bridge.service"
    unit.write_text(
        text.read_text().replace(
            "ExecStart=%h/.local/bin/unipush-bridge",
            f"ExecStart={sys.executable} -m unipush_bridge.cli",
        )
    )
    done = systemd_verify(tmp_path, unit)
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr
