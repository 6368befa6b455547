"""A real notification stack: private D-Bus bus + Xvfb + a server, for our e2e tests
and the pytest plugin's dunst fixtures (tests/notifstack.py re-exports it).

Why: desktop-notifier's behaviour (callbacks, ids, what the server really receives) can only be
trusted when checked against a real server. This module starts one entirely from Python, with no
shell script outside the repo, and tears it down by PID. The server is dunst by default, or any
of :data:`SERVERS` (notification-daemon, xfce4-notifyd, lxqt-notificationd, notify-osd: Debian
packages); docs/notification-servers.md has what differs between them.

The bus has no ``<servicedir>``: nothing is D-Bus-activated behind our back, so a test talks to
exactly the server started here (or to nobody).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .bus import BusError, bus_conf, read_line, terminate
from .bus import pdeathsig_preexec as _pdeathsig_preexec

__all__ = [
    "SERVERS",
    "DunstStack",
    "NotifStack",
    "Popup",
    "ServerSpec",
    "StackError",
    "StackTimeout",
    "require_tools",
]

T = TypeVar("T")

NOTIF_NAME = "org.freedesktop.Notifications"
NOTIF_PATH = "/org/freedesktop/Notifications"
DUNST_IFACE = "org.dunstproject.cmd0"

#: Tools the stack cannot run without.
REQUIRED_TOOLS: tuple[str, ...] = ("dbus-daemon", "dbus-send", "Xvfb", "dunst", "dunstctl")
#: Needed by the other servers of the matrix: popups are found with xwininfo, clicked with
#: xdotool and photographed with ImageMagick's import.
MATRIX_TOOLS: tuple[str, ...] = ("xwininfo", "xdotool", "import")
#: Nice to have: the bus monitor log, ``notify-send`` and real mouse clicks.
OPTIONAL_TOOLS: tuple[str, ...] = ("dbus-monitor", "notify-send", "xdotool")
#: Debian/Ubuntu packages providing all of the above. ``dbus-x11`` satisfies dunst's session-bus
#: dependency without pulling in systemd.
APT_PACKAGES: tuple[str, ...] = ("dbus", "dbus-x11", "xvfb", "dunst", "libnotify-bin", "xdotool")


@dataclass(frozen=True)
class ServerSpec:
    """How to start one notification server and how a user clicks on it."""

    key: str
    #: The name it gives in GetServerInformation.
    name: str
    #: Candidate paths of its binary (the first that exists is used).
    binaries: tuple[str, ...]
    #: The Debian 12 package with it.
    package: str
    #: How a click reaches the default action: ``dunstctl`` (dunst's command line),
    #: ``body`` (a left click on the popup), ``button`` (a click on the labelled action
    #: button, xfce) or ``none`` (no actions capability: no click can be made).
    click: str
    #: Processes it needs beside it (xfconfd for xfce4-notifyd).
    helpers: tuple[str, ...] = ()
    #: How several popups are drawn: ``window`` (a window each), ``stack`` (one window,
    #: the newest at the bottom) or ``queue`` (one at a time: the next is drawn when the
    #: shown one closes, notification-daemon 3.20).
    layout: str = "window"

    def binary(self) -> str | None:
        """The server's executable, or None if it is not installed."""
        return _find(*self.binaries)


def _find(*candidates: str) -> str | None:
    """The first of ``candidates`` (a name on PATH or an absolute glob) that is executable."""
    for candidate in candidates:
        if "/" not in candidate:
            found = shutil.which(candidate)
            if found:
                return found
            continue
        for path in sorted(Path("/").glob(candidate.lstrip("/"))):
            if path.is_file() and os.access(path, os.X_OK):
                return str(path)
    return None


#: The five servers of the e2e matrix (Debian 12 packages; dev.sh installs them).
SERVERS: dict[str, ServerSpec] = {
    spec.key: spec
    for spec in (
        ServerSpec("dunst", "dunst", ("dunst",), "dunst", "dunstctl", layout="stack"),
        ServerSpec(
            "notification-daemon",
            "Notification Daemon",
            ("/usr/lib/notification-daemon/notification-daemon",),
            "notification-daemon",
            "body",
            layout="queue",
        ),
        ServerSpec(
            "xfce4-notifyd",
            "Xfce Notify Daemon",
            ("/usr/lib/*/xfce4/notifyd/xfce4-notifyd", "/usr/lib/xfce4/notifyd/xfce4-notifyd"),
            "xfce4-notifyd",
            "button",
            helpers=("/usr/lib/*/xfce4/xfconf/xfconfd",),
        ),
        ServerSpec(
            "lxqt-notificationd",
            "lxqt-notificationd",
            ("lxqt-notificationd",),
            "lxqt-notificationd",
            "body",
            layout="stack",
        ),
        ServerSpec("notify-osd", "notify-osd", ("/usr/lib/*/notify-osd",), "notify-osd", "none"),
    )
}
#: Packages the matrix needs beyond dunst's (xfconf for xfconfd, imagemagick's import for
#: screenshots, x11-utils' xwininfo to find popups).
MATRIX_PACKAGES: tuple[str, ...] = (
    "notification-daemon",
    "xfce4-notifyd",
    "xfconf",
    "lxqt-notificationd",
    "notify-osd",
    "imagemagick",
    "x11-utils",
)


@dataclass(frozen=True)
class Popup:
    """A popup window on the Xvfb screen (a top-level window that is viewable)."""

    window: int
    x: int
    y: int
    width: int
    height: int


#: Fields the dunst rule script records, in order (values come from dunst's DUNST_* variables).
SEEN_FIELDS: tuple[tuple[str, str], ...] = (
    ("id", "DUNST_ID"),
    ("appname", "DUNST_APP_NAME"),
    ("summary", "DUNST_SUMMARY"),
    ("body", "DUNST_BODY"),
    ("icon", "DUNST_ICON_PATH"),
    ("urgency", "DUNST_URGENCY"),
    ("category", "DUNST_CATEGORY"),
    ("desktop_entry", "DUNST_DESKTOP_ENTRY"),
    ("stack_tag", "DUNST_STACK_TAG"),
    ("timeout", "DUNST_TIMEOUT"),
)

ICON_PATH = ":".join(
    (
        "/usr/share/icons/Adwaita/48x48/legacy",
        "/usr/share/icons/Adwaita/48x48/status",
        "/usr/share/icons/hicolor/48x48/apps",
    )
)

DIR_PREFIX = "unipush-e2e-"

_UNESCAPES = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}


class StackError(RuntimeError):
    """The stack could not be started or a control command failed."""


class StackTimeout(StackError, TimeoutError):
    """A deadline passed while waiting for the stack (or for dunst to see something)."""


def _unescape(value: str) -> str:
    """Undo the record script's ``\\\\``/``\\t``/``\\n``/``\\r`` escaping."""
    return re.sub(r"\\(.)", lambda m: _UNESCAPES.get(m.group(1), m.group(0)), value)


def _poll(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.02) -> T:
    """Call ``check`` until it returns non-None; raise StackTimeout after ``timeout`` seconds.

    Why: every readiness/visibility check uses a deadline instead of a fixed sleep.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            raise StackTimeout(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


def _tail(path: Path, lines: int = 20) -> str:
    """Last lines of a log file, for error messages (empty if unreadable)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _sweep_stale_dirs(base: Path) -> None:
    """Delete our temp dirs left by a process that died without stop() (e.g. SIGKILL).

    Only dirs we own whose ``owner.pid`` names a process that no longer exists; a concurrent
    session's dir is left alone.
    """
    for d in base.glob(DIR_PREFIX + "*"):
        try:
            if d.stat().st_uid != os.getuid():
                continue
            pid = int((d / "owner.pid").read_text().strip())
        except (OSError, ValueError):
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except OSError:
            pass


def _record_script(seen_log: Path) -> str:
    """Python source of the dunst rule script: append one escaped, TAB-separated line.

    Why Python: exact escaping of tabs/newlines/backslashes is awkward in POSIX sh, and one
    ``os.write`` on an O_APPEND file keeps concurrent script runs from interleaving.
    """
    return f"""\
import os
FIELDS = {SEEN_FIELDS!r}
def esc(v):
    return (v.replace("\\\\", "\\\\\\\\").replace("\\t", "\\\\t")
             .replace("\\n", "\\\\n").replace("\\r", "\\\\r"))
line = "\\t".join(k + "=" + esc(os.environ.get(var, "")) for k, var in FIELDS) + "\\n"
fd = os.open({str(seen_log)!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
try:
    os.write(fd, line.encode("utf-8", "surrogateescape"))
finally:
    os.close(fd)
"""


def _dunstrc(record_sh: Path, timeout: int) -> str:
    """dunst config that makes tests deterministic (no expiry, left click = default action)."""
    return f"""\
[global]
    monitor = 0
    follow = none
    width = 400
    height = 300
    origin = top-right
    offset = 10x10
    notification_limit = 0
    indicate_hidden = yes
    font = DejaVu Sans 10
    markup = full
    format = "<b>%a</b> | <b>%s</b>\\n%b"
    show_indicators = yes
    icon_position = left
    icon_path = {ICON_PATH}
    min_icon_size = 32
    max_icon_size = 64
    stack_duplicates = false
    sticky_history = yes
    history_length = 1000
    browser = /bin/true
    dmenu = /bin/true
    always_run_script = true
    ignore_dbusclose = false
    mouse_left_click = do_action, close_current
    mouse_middle_click = close_current
    mouse_right_click = close_all
[urgency_low]
    timeout = {timeout}
[urgency_normal]
    timeout = {timeout}
[urgency_critical]
    background = "#900000"
    frame_color = "#ff0000"
    timeout = {timeout}
[e2e_record]
    summary = "*"
    script = {record_sh}
"""


# ----------------------------------------------------------------- dbus-send output parsing

_TOKEN_STARTS = (
    "string ",
    "object path ",
    "signature ",
    "variant",
    "array [",
    "dict entry(",
    "struct {",
    "]",
    ")",
    "}",
    "int",
    "uint",
    "double ",
    "byte ",
    "boolean ",
    "file descriptor",
)
_SCALAR = re.compile(r"(int16|int32|int64|uint16|uint32|uint64|double|byte|boolean)\s+(\S+)")


class _ReplyParser:
    """Parse ``dbus-send --print-reply`` output into Python values.

    Why: ``dunstctl history`` needs busctl (systemd), which minimal machines lack; dbus-send is
    always there. dbus-send prints strings unescaped, so a string ends at the last ``"`` that is
    followed by a newline and then something that looks like the next token (good enough for
    notification texts; a body with a line starting ``string "`` could confuse it).
    """

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def _ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i].isspace():
            self.i += 1

    def _eat(self, word: str) -> bool:
        self._ws()
        if self.s.startswith(word, self.i):
            self.i += len(word)
            return True
        return False

    def _string(self) -> str:
        start = self.i + 1  # after the opening quote
        pos = start
        while True:
            q = self.s.find('"', pos)
            if q < 0:
                raise ValueError("unterminated string in dbus-send output")
            after = self.s[q + 1 :]
            rest = after.lstrip(" \t")
            if rest == "" or rest.startswith("\n"):
                nxt = rest.lstrip()
                if nxt == "" or nxt.startswith(_TOKEN_STARTS):
                    self.i = q + 1
                    return self.s[start:q]
            pos = q + 1  # a quote inside the text: keep looking

    def value(self) -> Any:
        """Parse one value at the current position."""
        self._ws()
        s = self.s
        if self._eat("string ") or self._eat("object path ") or self._eat("signature "):
            self._ws()
            return self._string()
        if self._eat("variant"):
            return self.value()
        if self._eat("array ["):
            items: list[Any] = []
            while not self._eat("]"):
                items.append(self.value())
            if items and all(isinstance(x, _DictEntry) for x in items):
                return {x.key: x.value for x in items}
            return items
        if self._eat("dict entry("):
            key = self.value()
            val = self.value()
            if not self._eat(")"):
                raise ValueError(f"expected ')' at {self.i}")
            return _DictEntry(key, val)
        if self._eat("struct {"):
            fields: list[Any] = []
            while not self._eat("}"):
                fields.append(self.value())
            return tuple(fields)
        m = _SCALAR.match(s, self.i)
        if m:
            self.i = m.end()
            kind, raw = m.groups()
            if kind == "double":
                return float(raw)
            if kind == "boolean":
                return raw == "true"
            return int(raw, 0)
        raise ValueError(f"cannot parse dbus-send output at {self.i}: {s[self.i : self.i + 40]!r}")

    def reply(self) -> list[Any]:
        """All values of a ``method return`` reply (its header line is skipped)."""
        nl = self.s.find("\n")
        self.i = len(self.s) if nl < 0 else nl + 1
        values: list[Any] = []
        self._ws()
        while self.i < len(self.s):
            values.append(self.value())
            self._ws()
        return values


def _monitor_messages(text: str) -> Iterator[tuple[str, list[Any]]]:
    """dbus-monitor's log as (header line, parsed argument values) per message."""
    header = ""
    body: list[str] = []
    for line in text.split("\n"):
        if line.startswith(("method call ", "method return ", "signal ", "error ")):
            if header:
                yield header, _parse_body(body)
            header, body = line, []
        elif header:
            body.append(line)
    if header:
        yield header, _parse_body(body)


def _parse_body(lines: list[str]) -> list[Any]:
    try:
        return _ReplyParser("header\n" + "\n".join(lines)).reply()
    except ValueError:
        return []


class _DictEntry:
    """One ``dict entry(...)`` while parsing; arrays of them become dicts."""

    __slots__ = ("key", "value")

    def __init__(self, key: Any, value: Any) -> None:
        self.key = key
        self.value = value


# ----------------------------------------------------------------- the stack


class DunstStack:
    """Private session bus + Xvfb + dunst, started and stopped by this Python process.

    Use as ``with DunstStack() as stack:`` or ``start()``/``stop()``. Child processes (the code
    under test, ``notify-send``...) must run with :attr:`env`; in-process D-Bus clients (dbus-fast
    reads ``DBUS_SESSION_BUS_ADDRESS`` when connecting) can use :meth:`use_env`.
    """

    def __init__(
        self,
        *,
        monitor: bool = True,
        timeout: int = 0,
        screen: str = "1280x800x24",
        start_timeout: float = 10.0,
        server: str = "dunst",
    ) -> None:
        """Configure; nothing runs until start().

        ``timeout`` is dunst's per-urgency timeout in seconds (0 = never expire, so a
        notification stays until the test acts on it). ``monitor`` runs dbus-monitor if present.
        ``server`` is a key of :data:`SERVERS`; the dunst-only calls (``action``, ``history``,
        ``seen``, ``count_*``) need dunst, the rest works on every server.
        """
        self.spec = SERVERS[server]
        self._want_monitor = monitor
        self._timeout = timeout
        self._screen = screen
        self._start_timeout = start_timeout
        self._dir: Path | None = None
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._bus_address = ""
        self._display = ""
        self._seen_floor = 0
        self._monitor_offset = 0
        self._started = False

    # ------------------------------------------------------------ tools

    @staticmethod
    def missing_tools(optional: bool = False, server: str = "dunst") -> list[str]:
        """Names of required (or, with ``optional``, optional) tools not on PATH."""
        if optional:
            return [t for t in OPTIONAL_TOOLS if shutil.which(t) is None]
        missing = [t for t in REQUIRED_TOOLS if shutil.which(t) is None]
        if server != "dunst":
            spec = SERVERS[server]
            missing = [t for t in missing if not t.startswith("dunst")]
            missing += [t for t in MATRIX_TOOLS if shutil.which(t) is None]
            if spec.binary() is None:
                missing.append(spec.binaries[0])
            missing += [h for h in spec.helpers if _find(h) is None]
        return missing

    @classmethod
    def ensure_tools(cls, install: bool = True, server: str = "dunst") -> str | None:
        """Make sure the required tools exist; return None if so, else the reason why not.

        Why return a reason instead of raising: the fixture turns it into ``pytest.skip``. If
        something is missing and ``install`` is true and we run as root with apt-get, the
        Debian packages are installed (``apt-get update`` + ``install --no-install-recommends``).
        Missing optional tools alone never trigger an install.
        """
        missing = cls.missing_tools(server=server)
        if not missing:
            return None
        packages = APT_PACKAGES if server == "dunst" else (*APT_PACKAGES, *MATRIX_PACKAGES)
        wanted = f"missing tools: {', '.join(missing)} (Debian packages: {' '.join(packages)})"
        if not install:
            return f"{wanted}; installing is disabled"
        if os.name != "posix" or os.geteuid() != 0:
            return f"{wanted}; not root, so not installing them"
        apt = shutil.which("apt-get")
        if apt is None:
            return f"{wanted}; no apt-get to install them with"
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (
            [apt, "update", "-qq"],
            [apt, "install", "-y", "-qq", "--no-install-recommends", *packages],
        ):
            try:
                res = subprocess.run(
                    cmd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    text=True,
                    timeout=600,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                return f"{wanted}; `{' '.join(cmd)}` failed: {exc}"
            if res.returncode != 0:
                out = (res.stderr or res.stdout).strip().splitlines()[-5:]
                return f"{wanted}; `{' '.join(cmd)}` exited {res.returncode}: {' | '.join(out)}"
        still = cls.missing_tools(server=server)
        if still:
            return f"still missing after apt-get install: {', '.join(still)}"
        return None

    # ------------------------------------------------------------ lifecycle

    def __enter__(self) -> DunstStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> DunstStack:
        """Start bus, Xvfb, dunst (and dbus-monitor); on any failure stop what already runs."""
        if self._started:
            raise StackError("already started")
        missing = self.missing_tools(server=self.spec.key)
        if missing:
            raise StackError(f"missing tools: {', '.join(missing)} (see ensure_tools())")
        self._started = True
        atexit.register(self.stop)
        try:
            self._make_dir()
            self._start_bus()
            self._start_xvfb()
            self.start_server()
            if self._want_monitor and shutil.which("dbus-monitor"):
                self._start_monitor()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop our processes by PID (TERM, KILL after 3 s, reap) and delete the temp dir.

        Safe to call more than once and after a failed start().
        """
        helpers = [n for n in self._procs if n.startswith("helper:")]
        for name in ("dbus-monitor", "server", *helpers, "Xvfb", "dbus-daemon"):
            proc = self._procs.pop(name, None)
            if proc is not None:
                self._terminate(proc)
        self._procs.clear()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        self._bus_address = self._display = ""
        self._seen_floor = self._monitor_offset = 0
        self._started = False
        atexit.unregister(self.stop)

    @staticmethod
    def _terminate(proc: subprocess.Popen[bytes]) -> None:
        """TERM, wait up to 3 s, then KILL; always reap so no zombie is left."""
        terminate(proc)

    @property
    def running(self) -> bool:
        """True while dbus-daemon, Xvfb and the server are all alive."""
        return self._started and all(
            name in self._procs and self._procs[name].poll() is None
            for name in ("dbus-daemon", "Xvfb", "server")
        )

    # ------------------------------------------------------------ start steps

    def _make_dir(self) -> None:
        base = Path(tempfile.gettempdir())
        # unix socket paths are limited to ~108 bytes
        if len(str(base)) > 60:
            base = Path("/tmp")
        _sweep_stale_dirs(base)
        self._dir = Path(tempfile.mkdtemp(prefix=DIR_PREFIX, dir=base))
        self._dir.chmod(0o700)
        (self._dir / "owner.pid").write_text(f"{os.getpid()}\n")
        self.seen_log.touch()

    @property
    def dir(self) -> Path:
        """The private temp dir (logs, configs, bus socket)."""
        if self._dir is None:
            raise StackError("stack is not started")
        return self._dir

    @property
    def seen_log(self) -> Path:
        """File the dunst rule script appends to (one line per notification)."""
        return self.dir / "seen.log"

    @property
    def monitor_log_path(self) -> Path:
        """dbus-monitor output (exists only if the monitor runs)."""
        return self.dir / "monitor.log"

    @property
    def dunst_log_path(self) -> Path:
        """The server's stdout/stderr (dunst's by default)."""
        return self.dir / f"{self.spec.key}.log"

    @property
    def server_log_path(self) -> Path:
        return self.dunst_log_path

    @property
    def dunst_pid(self) -> int:
        """PID of the server (e.g. to SIGSTOP it in a hung-server test)."""
        return self._procs["server"].pid

    @property
    def server_pid(self) -> int:
        return self.dunst_pid

    def _spawn(
        self,
        name: str,
        argv: list[str],
        log: Path,
        env: Mapping[str, str] | None = None,
        pass_fds: tuple[int, ...] = (),
    ) -> subprocess.Popen[bytes]:
        """Start one of our processes with stdout/stderr to ``log`` and remember it by name."""
        with log.open("ab") as out:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                pass_fds=pass_fds,
                close_fds=True,
                preexec_fn=_pdeathsig_preexec(),  # noqa: PLW1509 (one prctl call, see there)
            )
        self._procs[name] = proc
        return proc

    def _read_line_from(self, fd: int, proc: subprocess.Popen[bytes], what: str, log: Path) -> str:
        """Read the first line a child writes to pipe ``fd`` (deadline, child-death aware)."""
        try:
            return read_line(fd, proc, what, self._start_timeout, log)
        except BusError as exc:
            raise (StackTimeout if "did not report" in str(exc) else StackError)(str(exc)) from None

    def _start_bus(self) -> None:
        conf = self.dir / "bus.conf"
        conf.write_text(bus_conf(self.dir / "bus"))
        r, w = os.pipe()
        try:
            # --nofork: the daemon stays our child, so we can reap it (no zombie under PID 1)
            proc = self._spawn(
                "dbus-daemon",
                ["dbus-daemon", f"--config-file={conf}", "--nofork", f"--print-address={w}"],
                self.dir / "dbus.log",
                pass_fds=(w,),
            )
            os.close(w)
            w = -1
            self._bus_address = self._read_line_from(r, proc, "dbus-daemon", self.dir / "dbus.log")
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)

    def _start_xvfb(self) -> None:
        r, w = os.pipe()
        log = self.dir / "xvfb.log"
        try:
            proc = self._spawn(
                "Xvfb",
                [
                    "Xvfb",
                    "-displayfd",
                    str(w),
                    "-screen",
                    "0",
                    self._screen,
                    "-nolisten",
                    "tcp",
                    "-noreset",
                ],
                log,
                pass_fds=(w,),
            )
            os.close(w)
            w = -1
            number = self._read_line_from(r, proc, "Xvfb", log)
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)
        if not number.isdigit():
            raise StackError(f"Xvfb reported a strange display {number!r}\n{_tail(log)}")
        self._display = f":{number}"

    def _start_dunst(self) -> None:
        record_py = self.dir / "record.py"
        record_py.write_text(_record_script(self.seen_log))
        record_sh = self.dir / "record.sh"
        record_sh.write_text(
            "#!/bin/sh\n# dunst rule script: record what dunst received\n"
            f"exec {shlex.quote(sys.executable)} -I -S {shlex.quote(str(record_py))}\n"
        )
        record_sh.chmod(0o700)
        rc = self.dir / "dunstrc"
        rc.write_text(_dunstrc(record_sh, self._timeout))
        proc = self._spawn("server", ["dunst", "-config", str(rc)], self.dunst_log_path, self.env)
        self._wait_server(proc)

    def _wait_server(self, proc: subprocess.Popen[bytes]) -> None:
        """Until the server answers GetServerInformation with its own name."""
        name, log = self.spec.name, self.dunst_log_path

        def ready() -> bool | None:
            if proc.poll() is not None:
                raise StackError(f"{self.spec.key} exited ({proc.returncode})\n{_tail(log)}")
            res = self._dbus_send(
                NOTIF_NAME + ".GetServerInformation", check=False, reply_timeout_ms=500
            )
            return True if res.returncode == 0 and f'"{name}"' in res.stdout else None

        try:
            _poll(ready, self._start_timeout, f"{self.spec.key} to own {NOTIF_NAME}", interval=0.05)
        except StackTimeout as exc:
            raise StackTimeout(f"{exc}\n{_tail(log)}") from None

    @property
    def server_env(self) -> dict[str, str]:
        """The server's environment: its config and cache in the stack's dir, no a11y bus."""
        home = self.dir / "home"
        env = {**self.env, "HOME": str(home), "NO_AT_BRIDGE": "1"}
        for var, sub in (
            ("XDG_CONFIG_HOME", ".config"),
            ("XDG_CACHE_HOME", ".cache"),
            ("XDG_DATA_HOME", ".local/share"),
        ):
            (home / sub).mkdir(parents=True, exist_ok=True)
            env[var] = str(home / sub)
        return env

    def start_server(self) -> None:
        """Start the notification server (again, after stop_server()) and wait until it
        owns org.freedesktop.Notifications."""
        if "server" in self._procs and self._procs["server"].poll() is None:
            raise StackError(f"{self.spec.key} already runs")
        if self.spec.key == "dunst":
            self._start_dunst()
            return
        for helper in self.spec.helpers:
            name = f"helper:{Path(helper).name}"
            if name not in self._procs or self._procs[name].poll() is not None:
                path = _find(helper)
                if path is None:
                    raise StackError(f"{helper} is not installed ({self.spec.package})")
                self._spawn(name, [path], self.dir / f"{Path(helper).name}.log", self.server_env)
        binary = self.spec.binary()
        if binary is None:
            raise StackError(f"{self.spec.binaries[0]} is not installed ({self.spec.package})")
        proc = self._spawn("server", [binary], self.dunst_log_path, self.server_env)
        self._wait_server(proc)

    def stop_server(self) -> None:
        """Stop the server (SIGTERM, by PID) and wait until its name has no owner."""
        proc = self._procs.pop("server", None)
        if proc is not None:
            self._terminate(proc)

        def gone() -> bool | None:
            res = self.run(
                [
                    "dbus-send",
                    "--session",
                    "--print-reply",
                    "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.NameHasOwner",
                    f"string:{NOTIF_NAME}",
                ],
                check=False,
            )
            return True if "boolean false" in res.stdout else None

        _poll(gone, self._start_timeout, f"{NOTIF_NAME} to have no owner", interval=0.05)

    def restart_server(self) -> None:
        """A new server instance: its ids start again at 1."""
        self.stop_server()
        if self.spec.key == "dunst":
            # seen() drops ids up to the last reset's; the new dunst counts from 1 again.
            self._seen_floor = 0
            with self.seen_log.open("w"):
                pass
        self.start_server()

    def _start_monitor(self) -> None:
        log = self.monitor_log_path
        proc = self._spawn(
            "dbus-monitor",
            [
                "dbus-monitor",
                "--address",
                self._bus_address,
                f"interface='{NOTIF_NAME}'",
                # the answers (Notify's ids) and refusals, to pair with the calls
                "type='method_return'",
                "type='error'",
                f"type='signal',member='NameOwnerChanged',arg0='{NOTIF_NAME}'",
            ],
            log,
        )

        # dbus-monitor prints its own NameLost once it has become a monitor
        def ready() -> bool | None:
            if proc.poll() is not None:
                raise StackError(f"dbus-monitor exited ({proc.returncode})\n{_tail(log)}")
            return True if "NameLost" in log.read_text(errors="replace") else None

        _poll(ready, self._start_timeout, "dbus-monitor to become a monitor", interval=0.05)
        self._monitor_offset = log.stat().st_size

    # ------------------------------------------------------------ environment

    @property
    def bus_address(self) -> str:
        """The private bus address (DBUS_SESSION_BUS_ADDRESS)."""
        return self._bus_address

    @property
    def display(self) -> str:
        """The Xvfb display, e.g. ``:1``."""
        return self._display

    @property
    def env(self) -> dict[str, str]:
        """A full environment for child processes: os.environ pointed at this stack.

        WAYLAND_DISPLAY is removed (dunst and friends would try Wayland first).
        """
        env = {k: v for k, v in os.environ.items() if k != "WAYLAND_DISPLAY"}
        if self._bus_address:
            env["DBUS_SESSION_BUS_ADDRESS"] = self._bus_address
        if self._display:
            env["DISPLAY"] = self._display
        return env

    @contextlib.contextmanager
    def use_env(self) -> Iterator[None]:
        """Point os.environ at this stack for the block, then restore it exactly.

        Why: in-process clients (dbus-fast inside desktop-notifier) read
        DBUS_SESSION_BUS_ADDRESS from os.environ when they connect.
        """
        keys = ("DBUS_SESSION_BUS_ADDRESS", "DISPLAY", "WAYLAND_DISPLAY")
        saved = {k: os.environ.get(k) for k in keys}
        os.environ["DBUS_SESSION_BUS_ADDRESS"] = self._bus_address
        os.environ["DISPLAY"] = self._display
        os.environ.pop("WAYLAND_DISPLAY", None)
        try:
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    # ------------------------------------------------------------ talking to dunst

    def run(
        self, argv: list[str], *, check: bool = True, timeout: float = 10.0
    ) -> subprocess.CompletedProcess[str]:
        """Run a command against this stack (with :attr:`env`), capturing text output."""
        try:
            res = subprocess.run(
                argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise StackTimeout(f"`{shlex.join(argv)}` took more than {timeout}s") from exc
        if check and res.returncode != 0:
            raise StackError(f"`{shlex.join(argv)}` exited {res.returncode}: {res.stderr.strip()}")
        return res

    def _dbus_send(
        self, method: str, *args: str, check: bool = True, reply_timeout_ms: int = 5000
    ) -> subprocess.CompletedProcess[str]:
        """Call a method on dunst's object with dbus-send (full-format reply)."""
        return self.run(
            [
                "dbus-send",
                "--session",
                "--print-reply",
                f"--reply-timeout={reply_timeout_ms}",
                f"--dest={NOTIF_NAME}",
                NOTIF_PATH,
                method,
                *args,
            ],
            check=check,
        )

    def _dbus_call(self, method: str, *args: str) -> list[Any]:
        """Call a method and return its parsed reply values."""
        return _ReplyParser(self._dbus_send(method, *args).stdout).reply()

    def server_information(self) -> tuple[str, str, str, str]:
        """GetServerInformation: (name, vendor, version, spec_version)."""
        name, vendor, version, spec = self._dbus_call(NOTIF_NAME + ".GetServerInformation")
        return name, vendor, version, spec

    def _dunst_property(self, prop: str) -> Any:
        (value,) = self._dbus_call(
            "org.freedesktop.DBus.Properties.Get", f"string:{DUNST_IFACE}", f"string:{prop}"
        )
        return value

    def count_displayed(self) -> int:
        """How many notifications dunst shows right now (dunst's ``displayedLength``)."""
        return int(self._dunst_property("displayedLength"))

    def count_waiting(self) -> int:
        """Notifications queued but not shown (``waitingLength``)."""
        return int(self._dunst_property("waitingLength"))

    def count_history(self) -> int:
        """Notifications in dunst's history (``historyLength``)."""
        return int(self._dunst_property("historyLength"))

    def action(self, index: int = 0) -> None:
        """``dunstctl action N``: invoke the default action of the N-th displayed notification.

        Emits ActionInvoked(nid, "default") to the sender (so desktop-notifier's on_clicked
        fires). dunst does NOT close the notification for this.
        """
        self.run(["dunstctl", "action", str(index)])

    def close(self) -> None:
        """``dunstctl close``: close the top notification as dismissed by the user (reason 2)."""
        self.run(["dunstctl", "close"])

    def close_all(self) -> None:
        """``dunstctl close-all``: close every displayed notification (reason 2 each)."""
        self.run(["dunstctl", "close-all"])

    def history(self) -> list[dict[str, Any]]:
        """dunst history (newest first) via NotificationListHistory, as plain dicts.

        Why not ``dunstctl history``: that shells out to busctl (systemd), which is absent on
        minimal machines. Keys are dunst's (id, appname, summary, body, icon_path, ...); values
        are unwrapped from their variants. History has no urgency; :meth:`seen` does.
        """
        (entries,) = self._dbus_call(DUNST_IFACE + ".NotificationListHistory")
        if entries == []:
            return []
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise StackError(f"unexpected NotificationListHistory reply: {entries!r}")
        return entries

    # ------------------------------------------------------------ observation

    def seen(self) -> list[dict[str, str]]:
        """What dunst received since the last reset(), one dict per notification.

        Parsed from the rule-script log; keys: id appname summary body icon urgency (LOW,
        NORMAL or CRITICAL) category desktop_entry stack_tag timeout. Lines for notifications
        from before the last reset() (a late-running script) are dropped by id.
        """
        try:
            text = self.seen_log.read_text(encoding="utf-8", errors="surrogateescape")
        except FileNotFoundError:
            return []
        records: list[dict[str, str]] = []
        for line in text.split("\n"):
            if not line:
                continue
            rec: dict[str, str] = {}
            for field in line.split("\t"):
                key, _, value = field.partition("=")
                rec[key] = _unescape(value)
            if rec.get("id", "").isdigit() and int(rec["id"]) <= self._seen_floor:
                continue
            records.append(rec)
        return records

    def wait_seen(self, n: int = 1, timeout: float = 5.0) -> list[dict[str, str]]:
        """Wait until dunst recorded at least ``n`` notifications; return them all."""

        def check() -> list[dict[str, str]] | None:
            got = self.seen()
            return got if len(got) >= n else None

        try:
            return _poll(check, timeout, f"{n} notification(s) to reach dunst")
        except StackTimeout as exc:
            raise StackTimeout(f"{exc}; seen so far: {self.seen()!r}") from None

    def wait_displayed(self, n: int, timeout: float = 5.0) -> int:
        """Wait until exactly ``n`` notifications are displayed; return the count."""
        try:
            return _poll(
                lambda: n if self.count_displayed() == n else None,
                timeout,
                f"{n} displayed notification(s)",
            )
        except StackTimeout as exc:
            raise StackTimeout(f"{exc}; displayed now: {self.count_displayed()}") from None

    def monitor_log(self, since_reset: bool = True) -> str:
        """dbus-monitor text of org.freedesktop.Notifications traffic ('' if not running).

        Shows Notify arguments including hints (e.g. replaces_id, category), ActionInvoked and
        NotificationClosed. By default only what was logged since the last reset().
        """
        if "dbus-monitor" not in self._procs:
            return ""
        with self.monitor_log_path.open("rb") as f:
            if since_reset:
                f.seek(self._monitor_offset)
            return f.read().decode(errors="replace")

    def dunst_log(self) -> str:
        """dunst's own output (warnings about markup, icons, ...)."""
        try:
            return self.dunst_log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # ------------------------------------------------------------ any server

    def notify_calls(self, since_reset: bool = True) -> list[dict[str, Any]]:
        """Every Notify call on the bus (from the monitor log), oldest first, with the id
        the server answered (``id``; None before the answer, or ``error``).

        Keys: sender app_name replaces_id icon summary body actions hints timeout id.
        """
        calls: list[dict[str, Any]] = []
        by_serial: dict[tuple[str, int], dict[str, Any]] = {}
        for header, values in _monitor_messages(self.monitor_log(since_reset)):
            if header.startswith("method call") and "member=Notify" in header:
                fields = dict(re.findall(r"(\w+)=(\S+?)[;]?(?=\s|$)", header))
                if len(values) != 8:
                    continue
                app, replaces, icon, summary, body, actions, hints, timeout = values
                call = {
                    "sender": fields.get("sender", ""),
                    "app_name": app,
                    "replaces_id": replaces,
                    "icon": icon,
                    "summary": summary,
                    "body": body,
                    "actions": actions,
                    "hints": hints if isinstance(hints, dict) else {},
                    "timeout": timeout,
                    "id": None,
                }
                calls.append(call)
                by_serial[(call["sender"], int(fields.get("serial", "-1")))] = call
            elif header.startswith(("method return", "error")):
                fields = dict(re.findall(r"(\w+)=(\S+)", header))
                key = (fields.get("destination", ""), int(fields.get("reply_serial", "-1")))
                answered = by_serial.get(key)
                if answered is not None:
                    call = answered
                    if header.startswith("error"):
                        call["error"] = fields.get("error_name", "error")
                    elif values:
                        call["id"] = values[0]
        return calls

    def wait_notify(
        self, n: int = 1, timeout: float = 5.0, answered: bool = True
    ) -> list[dict[str, Any]]:
        """Wait until ``n`` Notify calls were made (and answered); return them all."""

        def check() -> list[dict[str, Any]] | None:
            got = self.notify_calls()
            done = [c for c in got if not answered or c["id"] is not None or "error" in c]
            return got if len(done) >= n else None

        try:
            return _poll(check, timeout, f"{n} Notify call(s)", interval=0.05)
        except StackTimeout as exc:
            raise StackTimeout(f"{exc}; calls so far: {self.notify_calls()!r}") from None

    def popups(self) -> list[Popup]:
        """Viewable top-level windows bigger than an icon, oldest window first (X ids
        grow, so the newest popup is the last)."""
        tree = self.run(["xwininfo", "-root", "-children"]).stdout
        found: list[Popup] = []
        for wid in re.findall(r"^\s+(0x[0-9a-f]+)", tree, re.M):
            res = self.run(["xwininfo", "-id", wid], check=False)
            if "IsViewable" not in res.stdout:
                continue
            num = {
                key: int(val)
                for key, val in re.findall(
                    r"(Absolute upper-left X|Absolute upper-left Y|Width|Height):\s+(-?\d+)",
                    res.stdout,
                )
            }
            w, h = num.get("Width", 0), num.get("Height", 0)
            if w > 40 and h > 20 and w < self.screen_size[0]:
                found.append(
                    Popup(
                        int(wid, 16),
                        num.get("Absolute upper-left X", 0),
                        num.get("Absolute upper-left Y", 0),
                        w,
                        h,
                    )
                )
        return sorted(found, key=lambda p: p.window)

    def wait_popups(self, n: int, timeout: float = 5.0) -> list[Popup]:
        """Wait until exactly ``n`` popups are on the screen."""
        try:
            return _poll(
                lambda: got if len(got := self.popups()) == n else None,
                timeout,
                f"{n} popup(s)",
                interval=0.1,
            )
        except StackTimeout as exc:
            raise StackTimeout(f"{exc}; on screen: {self.popups()!r}") from None

    @property
    def screen_size(self) -> tuple[int, int]:
        width, height, *_ = (int(x) for x in self._screen.split("x"))
        return width, height

    def click(self, popup: Popup | None = None, dunst_index: int = 0) -> None:
        """Click a notification the way a user makes its default action on this server:
        ``dunstctl action N`` on dunst (N = ``dunst_index``: dunst draws every notification
        in one window), else a left click with xdotool on the popup's body (or on its
        action button, xfce). ``popup`` defaults to the newest one."""
        if self.spec.click == "dunstctl":
            self.action(dunst_index)
            return
        if self.spec.click == "none":
            raise StackError(f"{self.spec.key} has no actions: nothing to click")
        target = popup or self.wait_popups_at_least(1)[-1]
        x = target.x + target.width // 2
        # xfce draws the labelled default action as a button along the bottom edge.
        y = target.y + (target.height - 30 if self.spec.click == "button" else 20)
        self._xclick(x, y)

    def click_newest(self, shown: int) -> None:
        """With ``shown`` notifications on the screen, click the newest one as a user
        would: the newest window, the bottom of a stacked window (dunst, LXQt), or, on a
        server that shows one at a time, close the older ones first (their x button)."""
        if self.spec.click == "none":
            raise StackError(f"{self.spec.key} has no actions: nothing to click")
        if self.spec.layout == "stack":
            if self.spec.key == "dunst":
                self.wait_displayed(shown)
            popup = self.wait_popups_at_least(1)[0]
            self._xclick(popup.x + popup.width // 2, popup.y + popup.height - 25)
            return
        if self.spec.layout == "queue":
            for _ in range(shown - 1):
                old = self.wait_popups_at_least(1)[-1]
                self._xclick(old.x + old.width - 24, old.y + 28)  # its x button
                _poll(
                    lambda old=old: True if old not in self.popups() else None,  # type: ignore[misc]
                    5,
                    "the older popup to close",
                    interval=0.1,
                )
            self.click(self.wait_popups_at_least(1)[-1])
            return
        popups = self.wait_popups_at_least(shown)
        self.click(max(popups, key=lambda p: p.window))

    def _xclick(self, x: int, y: int) -> None:
        # Not ``mousemove --sync``: it waits for a motion event, for ever when the pointer
        # is already there.
        self.run(["xdotool", "mousemove", str(x), str(y), "sleep", "0.1", "click", "1"])

    def wait_popups_at_least(self, n: int, timeout: float = 5.0) -> list[Popup]:
        return _poll(
            lambda: got if len(got := self.popups()) >= n else None,
            timeout,
            f"at least {n} popup(s)",
            interval=0.1,
        )

    def screenshot(self, path: Path) -> Path | None:
        """The whole screen as a PNG (ImageMagick's import), for a failed test's report."""
        if shutil.which("import") is None:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        res = self.run(["import", "-window", "root", str(path)], check=False, timeout=20)
        return path if res.returncode == 0 else None

    def close_notification(self, nid: int) -> None:
        """CloseNotification(nid), as any client may call it."""
        self._dbus_send(NOTIF_NAME + ".CloseNotification", f"uint32:{nid}", check=False)

    def clear(self) -> None:
        """A clean screen on any server, then forget the bus traffic so far. dunst is
        reset (:meth:`reset`); the others are restarted (0.2 to 0.3 s), since
        notification-daemon and notify-osd ignore CloseNotification from another client."""
        if self.spec.key == "dunst":
            self.reset()
            return
        if not self.running:
            raise StackError(f"stack is not running\n{_tail(self.dunst_log_path)}")
        self.restart_server()
        self.wait_popups(0, timeout=3)
        if "dbus-monitor" in self._procs:
            self._monitor_offset = self.monitor_log_path.stat().st_size

    def reset(self) -> None:
        """Give the next test a clean screen: close all, forget what was seen so far.

        Closing makes dunst send NotificationClosed(reason 2) to whoever sent them, so a
        notifier an earlier test left connected would see on_dismissed; disconnect it.
        """
        if not self.running:
            raise StackError(f"stack is not running\n{_tail(self.dunst_log_path)}")
        self.run(["dunstctl", "set-paused", "false"])
        self.close_all()
        self.wait_displayed(0)
        # dunst ids only grow: ignore recorded lines for anything up to the newest closed one
        ids = [int(e["id"]) for e in self.history() if isinstance(e.get("id"), int)]
        ids.extend(int(r["id"]) for r in self.seen() if r.get("id", "").isdigit())
        self._seen_floor = max([self._seen_floor, *ids])
        with self.seen_log.open("w"):
            pass
        if "dbus-monitor" in self._procs:
            self._monitor_offset = self.monitor_log_path.stat().st_size


#: The stack under its general name (any server of :data:`SERVERS`; dunst by default).
NotifStack = DunstStack


def require_tools(server: str = "dunst") -> None:
    """For a pytest fixture: the tools of ``server``'s stack are there (installed if
    root may), else fail under CI, where dev.sh installs them and a skip would hide a
    broken install step, and skip with the reason elsewhere."""
    import pytest

    install = os.environ.get("UNIPUSH_E2E_NO_INSTALL", "0") != "1"
    reason = NotifStack.ensure_tools(install=install, server=server)
    if reason is None:
        return
    what = "notification stack" if server == "dunst" else server
    if os.environ.get("CI"):
        pytest.fail(f"{what} unavailable in CI: {reason}")
    pytest.skip(f"{what} unavailable: {reason}")
