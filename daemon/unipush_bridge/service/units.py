"""The service definitions for one installation, as text: a systemd user unit, a
launchd agent and a Windows Startup entry. Pure functions of an :class:`Installation`,
so what cannot run on this machine is still generated and tested here; writing and
loading them is ``install.py``'s job.
"""

from __future__ import annotations

import plistlib
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path, PurePath, PureWindowsPath
from typing import Any

from ..errors import UsageError
from ..paths import APP, DEFAULT_APPID
from ..runtime.options import APPID_PATTERN

#: systemd restarts the daemon when no WATCHDOG=1 arrives for this long (it pings at half).
WATCHDOG_S = 30
#: Exit code 2 (bad usage, bad config, a damaged or unwritable store) is not restarted.
NO_RESTART_EXIT = 2


@dataclass(frozen=True)
class Installation:
    """What to run and for whom: the command of this very installation."""

    python: str
    appid: str = DEFAULT_APPID
    config: Path | None = None
    home: PurePath = field(default_factory=Path.home)

    def __post_init__(self) -> None:
        if not re.match(APPID_PATTERN, self.appid) or len(self.appid) > 64:
            raise UsageError(
                f"--appid {self.appid!r}: use 1 to 64 of A-Z a-z 0-9 _ . - (the appid "
                "names the unit file)"
            )

    @property
    def argv(self) -> list[str]:
        """The daemon's command line: this interpreter running this package's CLI, so a
        virtualenv or pipx install runs the same code that installed it."""
        argv = [self.python, "-m", "unipush_bridge.cli", "run", "--appid", self.appid]
        if self.config is not None:
            argv += ["--config", str(self.config)]
        return argv

    @property
    def suffix(self) -> str:
        """'' for the default appid (so it replaces a hand-copied packaging/ unit), else
        ``-<appid>``: one service per appid."""
        return "" if self.appid == DEFAULT_APPID else f"-{self.appid}"


# -- systemd ------------------------------------------------------------------------------

_PLAIN = re.compile(r"^[A-Za-z0-9/._:=+@,-]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def systemd_word(word: str) -> str:
    """One ExecStart word: ``%`` and ``$`` doubled (specifiers, variables), quoted with
    C escapes when it holds anything else than plain characters; a control character
    (a newline would end the line, and start another directive) as ``\\xNN``."""
    word = word.replace("%", "%%").replace("$", "$$")
    if word and _PLAIN.match(word):
        return word
    word = word.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", word) + '"'


def unit_name(inst: Installation) -> str:
    return f"{APP}{inst.suffix}.service"


def unit_path(config_home: PurePath, inst: Installation) -> PurePath:
    return config_home / "systemd" / "user" / unit_name(inst)


def systemd_unit(inst: Installation) -> str:
    exec_start = " ".join(systemd_word(w) for w in inst.argv)
    return f"""\
# Written by `unipush-bridge service install --appid {inst.appid}`; `service uninstall`
# removes it. Edit with `systemctl --user edit {unit_name(inst)}` (a drop-in survives
# a new install), not here.

[Unit]
Description=unipush-bridge daemon for {inst.appid}: uni-push 2.0 on the desktop
PartOf=graphical-session.target
After=graphical-session.target
# A daemon that keeps crashing is given up after 5 starts in 2 minutes.
StartLimitIntervalSec=120
StartLimitBurst=5

[Service]
# READY=1 once the local API socket is bound and the store open; STATUS= tells the
# link state and backlog; WATCHDOG=1 every {WATCHDOG_S // 2} s from the event loop.
Type=notify
NotifyAccess=main
WatchdogSec={WATCHDOG_S}
ExecStart={exec_start}
ExecReload=/bin/kill -HUP $MAINPID
# Restart after a crash, a watchdog timeout or a lost socket, but not after exit code
# {NO_RESTART_EXIT}: bad usage, bad config, or a damaged or unwritable store, which a
# restart cannot fix (`journalctl --user -u {unit_name(inst)}` names the file and the fix).
Restart=on-failure
RestartSec=5
RestartPreventExitStatus={NO_RESTART_EXIT}
TimeoutStartSec=30
TimeoutStopSec=15
# Apps started by app_command or open_url live on when the daemon stops.
KillMode=process
SyslogIdentifier={APP}
NoNewPrivileges=yes
LockPersonality=yes
RestrictSUIDSGID=yes

[Install]
WantedBy=graphical-session.target
"""


def tray_argv(inst: Installation) -> list[str]:
    """The tray's command line: the same interpreter, ``tray`` for the same appid."""
    return [inst.python, "-m", "unipush_bridge.cli", "tray", *inst.argv[4:]]


def tray_unit_name(inst: Installation) -> str:
    return f"{APP}-tray{inst.suffix}.service"


def systemd_tray_unit(inst: Installation) -> str:
    """A second user unit for the tray (issue 14 item 3): ordered after the daemon and
    wanting it, but not bound to it, since the tray shows "offline" while the daemon
    restarts; it needs the desktop, so it runs with graphical-session.target."""
    exec_start = " ".join(systemd_word(w) for w in tray_argv(inst))
    daemon = unit_name(inst)
    return f"""\
# Written by `unipush-bridge service install --tray --appid {inst.appid}`; `service
# uninstall` removes it.

[Unit]
Description=unipush-bridge tray for {inst.appid}
PartOf=graphical-session.target
After=graphical-session.target {daemon}
Wants={daemon}

[Service]
Type=exec
ExecStart={exec_start}
Restart=on-failure
RestartSec=5
# Exit code {NO_RESTART_EXIT} is bad usage or a bad --config: a restart cannot fix it.
RestartPreventExitStatus={NO_RESTART_EXIT}
SyslogIdentifier={APP}-tray
NoNewPrivileges=yes

[Install]
WantedBy=graphical-session.target
"""


# -- launchd ------------------------------------------------------------------------------


def launchd_label(inst: Installation) -> str:
    return f"net.{APP}.daemon{inst.suffix.replace('-', '.', 1)}"


def plist_path(inst: Installation) -> PurePath:
    return inst.home / "Library" / "LaunchAgents" / f"{launchd_label(inst)}.plist"


def launchd_agent(inst: Installation) -> dict[str, Any]:
    """The agent as a dict: started at login, started again after a failure (not after
    a clean exit, nor faster than every 10 s), logs in ~/Library/Logs."""
    logs = inst.home / "Library" / "Logs"
    return {
        "Label": launchd_label(inst),
        "ProgramArguments": inst.argv,
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": 10,
        "LimitLoadToSessionType": "Aqua",
        "ProcessType": "Interactive",
        "StandardErrorPath": str(logs / f"{APP}{inst.suffix}.log"),
        "StandardOutPath": str(logs / f"{APP}{inst.suffix}.out.log"),
        "EnvironmentVariables": {
            "PATH": "/opt/homebrew/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "UNIPUSH_BRIDGE_LOG_FORMAT": "json",
        },
    }


def launchd_plist(inst: Installation) -> bytes:
    return plistlib.dumps(launchd_agent(inst), fmt=plistlib.FMT_XML, sort_keys=False)


# -- Windows ------------------------------------------------------------------------------


def startup_path(appdata: PureWindowsPath, inst: Installation) -> PureWindowsPath:
    startup = appdata / "Microsoft" / "Windows" / "Start Menu" / "Programs" / "Startup"
    return startup / f"{APP}{inst.suffix}.cmd"


def windowless(python: str) -> str:
    """pythonw.exe beside python.exe: the same interpreter without a console window."""
    p = PureWindowsPath(python)
    if p.name.lower() == "python.exe":
        return str(p.with_name("pythonw.exe"))
    return python


def startup_entry(inst: Installation) -> str:
    """A .cmd in the user's Startup folder: runs at logon, no window, no admin rights.
    (Windows does not restart it after a crash; the notes in docs/service.md say so.)"""
    argv = [windowless(inst.python), *inst.argv[1:]]
    command = subprocess.list2cmdline(argv).replace("%", "%%")
    return (
        "@echo off\r\n"
        f"rem Written by `unipush-bridge service install --appid {inst.appid}`;\r\n"
        "rem `unipush-bridge service uninstall` removes it.\r\n"
        f'start "{APP}" /B {command}\r\n'
    )
