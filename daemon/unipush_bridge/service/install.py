"""Writing, loading and asking about the service of one installation: the I/O around
``units.py``. The service manager is only ever reached through a :data:`Runner` (a
command line in, exit code and output back), so the same code runs ``systemctl``,
``launchctl`` or nothing at all."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath
from typing import Literal

from ..errors import UnipushError, UsageError
from . import units

Kind = Literal["systemd", "launchd", "windows"]
KINDS: tuple[Kind, ...] = ("systemd", "launchd", "windows")
#: A command line in, (exit code, stdout and stderr) out.
Runner = Callable[[Sequence[str]], tuple[int, str]]


class ServiceError(UnipushError):
    """The service manager refused a step; the text names the command and its answer."""


def run_command(argv: Sequence[str]) -> tuple[int, str]:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=60, check=False)
    except FileNotFoundError:
        return 127, f"{argv[0]}: command not found"
    except subprocess.TimeoutExpired:
        return 124, f"{argv[0]}: no answer in 60 s"
    return done.returncode, (done.stdout + done.stderr).strip()


def detect_kind(platform: str = sys.platform) -> Kind:
    if platform == "darwin":
        return "launchd"
    if platform in ("win32", "cygwin"):
        return "windows"
    return "systemd"


@dataclass(frozen=True)
class Target:
    """One service definition, where it goes and what it is called there."""

    kind: Kind
    name: str
    path: Path
    content: bytes


def target(kind: Kind, inst: units.Installation, env: Mapping[str, str]) -> Target:
    if kind == "systemd":
        config_home = Path(env.get("XDG_CONFIG_HOME") or Path(inst.home) / ".config")
        path = Path(units.unit_path(config_home, inst))
        return Target(kind, units.unit_name(inst), path, units.systemd_unit(inst).encode())
    if kind == "launchd":
        return Target(
            kind, units.launchd_label(inst), Path(units.plist_path(inst)), units.launchd_plist(inst)
        )
    appdata = PureWindowsPath(env.get("APPDATA") or str(Path(inst.home) / "AppData" / "Roaming"))
    path = Path(str(units.startup_path(appdata, inst)))
    return Target(kind, path.name, path, units.startup_entry(inst).encode())


def tray_target(kind: Kind, inst: units.Installation, env: Mapping[str, str]) -> Target:
    """The tray's unit beside the daemon's: systemd only (the tray is a D-Bus
    StatusNotifierItem, which only Linux desktops host)."""
    if kind != "systemd":
        raise UsageError(f"--tray: the tray runs on Linux desktops (systemd), not {kind}")
    config_home = Path(env.get("XDG_CONFIG_HOME") or Path(inst.home) / ".config")
    name = units.tray_unit_name(inst)
    path = Path(config_home / "systemd" / "user" / name)
    return Target(kind, name, path, units.systemd_tray_unit(inst).encode())


def write(t: Target) -> None:
    """Atomically, so a crash never leaves half a unit for the manager to read."""
    t.path.parent.mkdir(parents=True, exist_ok=True)
    tmp = t.path.with_name(f".{t.path.name}.tmp")
    tmp.write_bytes(t.content)
    os.chmod(tmp, 0o644)
    os.replace(tmp, t.path)


def _must(runner: Runner, argv: Sequence[str]) -> str:
    rc, out = runner(argv)
    if rc != 0:
        raise ServiceError(f"`{' '.join(argv)}` failed (exit {rc}): {out or 'no output'}")
    return out


def _gui(name: str = "") -> str:
    return f"gui/{os.getuid()}" + (f"/{name}" if name else "")


def install(targets: Sequence[Target], runner: Runner, start: bool = True) -> list[str]:
    """Write the definitions, make the manager read them, enable them and (unless
    ``start`` is false) start them now. Returns what was done, one line each.

    Several targets (the daemon's unit and the tray's) are written first, then one
    daemon-reload and one ``enable`` names them all: systemd enables both or neither,
    and never reads one unit while the other is half there."""
    if len({t.kind for t in targets}) != 1:
        raise UsageError("install: the definitions must be for one service manager")
    for t in targets:
        write(t)
    done = [f"wrote {t.path}" for t in targets]
    t = targets[0]
    if t.kind == "systemd":
        names = [one.name for one in targets]
        try:
            _must(runner, ["systemctl", "--user", "daemon-reload"])
            _must(runner, ["systemctl", "--user", "enable", *(["--now"] if start else []), *names])
        except ServiceError as exc:
            if "connect to bus" not in str(exc) and "not found" not in str(exc):
                raise
            paths = " and ".join(str(one.path) for one in targets)
            raise ServiceError(
                f"{exc}; {paths} {'is' if len(targets) == 1 else 'are'} written, but no systemd "
                "user manager runs in this session: run this from your desktop session (or "
                "start `unipush-bridge run` from the desktop's autostart)"
            ) from None
        done += [f"enabled {n}" + (" and started it" if start else " (not started)") for n in names]
    elif len(targets) > 1:
        raise UsageError(f"install: one {t.kind} definition at a time")
    elif t.kind == "launchd":
        if start:
            runner(["launchctl", "bootout", _gui(t.name)])  # a loaded older one; may fail
            _must(runner, ["launchctl", "bootstrap", _gui(), str(t.path)])
            done.append(f"loaded {t.name}")
        else:
            done.append(f"{t.name} loads at the next login (RunAtLoad)")
    elif start:
        _must(runner, ["cmd.exe", "/c", str(t.path)])
        done.append(f"started {t.path.name}; it runs at every logon")
    else:
        done.append(f"{t.path.name} runs at the next logon")
    return done


def uninstall(t: Target, runner: Runner) -> list[str]:
    """Stop, disable and remove; a service that is not there is not an error."""
    done: list[str] = []
    if t.kind == "systemd":
        rc, _ = runner(["systemctl", "--user", "disable", "--now", t.name])
        if rc == 0:
            done.append(f"stopped and disabled {t.name}")
    elif t.kind == "launchd":
        rc, _ = runner(["launchctl", "bootout", _gui(t.name)])
        if rc == 0:
            done.append(f"unloaded {t.name}")
    if t.path.exists():
        t.path.unlink()
        done.append(f"removed {t.path}")
    if t.kind == "systemd":
        runner(["systemctl", "--user", "daemon-reload"])
    if t.kind == "windows" and done:
        done.append("a daemon started at logon keeps running until you log out")
    return done or [f"{t.name} is not installed ({t.path} does not exist)"]


@dataclass
class ServiceState:
    kind: Kind
    name: str
    path: str
    installed: bool
    enabled: bool | None = None
    active: bool | None = None
    detail: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.installed and self.enabled is not False and self.active is not False


SYSTEMD_PROPERTIES = (
    "LoadState",
    "UnitFileState",
    "ActiveState",
    "SubState",
    "StatusText",
    "MainPID",
    "NRestarts",
    "Result",
    "ExecMainStatus",
)


def status(t: Target, runner: Runner) -> ServiceState:
    state = ServiceState(t.kind, t.name, str(t.path), installed=t.path.exists())
    if t.kind == "systemd":
        props = ",".join(SYSTEMD_PROPERTIES)
        rc, out = runner(["systemctl", "--user", "show", t.name, f"--property={props}"])
        if rc != 0:
            state.detail["error"] = out or f"systemctl exit {rc}"
            return state
        state.detail = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        state.installed = state.installed or state.detail.get("LoadState") == "loaded"
        state.enabled = state.detail.get("UnitFileState") in ("enabled", "enabled-runtime")
        state.active = state.detail.get("ActiveState") == "active"
    elif t.kind == "launchd":
        rc, out = runner(["launchctl", "print", _gui(t.name)])
        state.enabled = state.installed
        state.active = rc == 0 and "state = running" in out
        for line in out.splitlines():
            key, sep, value = line.strip().partition(" = ")
            if sep and key in ("state", "pid", "last exit code"):
                state.detail[key] = value
    return state
