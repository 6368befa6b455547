"""A private D-Bus session bus (dbus-daemon) started and stopped by this process.

The bus has no ``<servicedir>``: nothing is D-Bus-activated behind a test's back, so a
client talks to exactly the server the test started (or to nobody). The address is read
from ``--print-address`` on a pipe: ready the moment it is printed, no polling.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from xml.sax.saxutils import escape as xml_escape

from ..errors import UnipushError

__all__ = [
    "BusError",
    "PrivateBus",
    "bus_conf",
    "pdeathsig_preexec",
    "read_line",
    "require_dbus_daemon",
    "terminate",
]

#: How long a started process gets to exit after SIGTERM before SIGKILL.
TERM_TIMEOUT_S = 3.0


class BusError(UnipushError, RuntimeError):
    """dbus-daemon is missing, would not start, or did not print its address."""


def bus_conf(socket_path: Path) -> str:
    """Session-bus config WITHOUT <servicedir>: nothing gets D-Bus-activated."""
    return f"""\
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={xml_escape(str(socket_path))}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def pdeathsig_preexec() -> Callable[[], None] | None:
    """A preexec_fn that SIGTERMs the child if this Python process dies without stop().

    Why: a SIGKILLed pytest must not leave dbus-daemon (or dunst, Xvfb) running. Linux only, best
    effort. libc is resolved here, in the parent, so the forked child only makes one call.
    PR_SET_PDEATHSIG follows the *thread* that forked, so it is not used off the main thread.
    """
    if sys.platform != "linux" or threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def preexec() -> None:
        prctl(1, signal.SIGTERM)  # 1 == PR_SET_PDEATHSIG

    return preexec


def read_line(
    fd: int, proc: subprocess.Popen[bytes], what: str, timeout: float, log: Path | None = None
) -> str:
    """The first line a child writes to pipe ``fd`` (deadline, aware of the child dying)."""
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise BusError(f"{what} did not report within {timeout}s{_tail(log)}")
        ready, _, _ = select.select([fd], [], [], min(left, 0.1))
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
        elif proc.poll() is not None:
            break
    line = buf.decode(errors="replace").strip()
    if not line:
        raise BusError(f"{what} exited ({proc.poll()}) without reporting{_tail(log)}")
    return line.splitlines()[0]


def _tail(log: Path | None) -> str:
    if log is None:
        return ""
    try:
        return "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    except OSError:
        return ""


def terminate(proc: subprocess.Popen[bytes], timeout: float = TERM_TIMEOUT_S) -> None:
    """TERM, wait up to ``timeout``, then KILL; always reap so no zombie is left."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
            proc.send_signal(signal.SIGCONT)  # in case a test SIGSTOPped it
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()


def require_dbus_daemon() -> None:
    """For a pytest fixture: dbus-daemon is installed, else fail under CI (where the
    install step put it, so a skip would hide a broken step) and skip elsewhere."""
    if shutil.which("dbus-daemon") is not None:
        return
    import pytest

    reason = "dbus-daemon is not installed (Debian package: dbus)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; it is needed in CI")
    pytest.skip(reason)


class PrivateBus:
    """``with PrivateBus() as bus:`` gives :attr:`address`; the daemon is our child
    (``--nofork``), so it is reaped, and it is killed when stopped."""

    def __init__(self, directory: Path | None = None, start_timeout: float = 10.0) -> None:
        self._given_dir = directory
        self._dir: Path | None = None
        self._start_timeout = start_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.address = ""

    @property
    def dir(self) -> Path:
        if self._dir is None:
            raise BusError("the bus is not started")
        return self._dir

    def start(self) -> PrivateBus:
        exe = shutil.which("dbus-daemon")
        if exe is None:
            raise BusError("dbus-daemon is not installed (Debian package: dbus)")
        if self._given_dir is not None:
            self._dir = self._given_dir
        else:
            # unix socket paths are limited to ~108 bytes
            base = Path(tempfile.gettempdir())
            self._dir = Path(
                tempfile.mkdtemp(prefix="unipush-bus-", dir=base if len(str(base)) < 60 else "/tmp")
            )
        conf = self._dir / "bus.conf"
        conf.write_text(bus_conf(self._dir / "bus"))
        log = self._dir / "dbus.log"
        r, w = os.pipe()
        try:
            with log.open("ab") as out:
                self.proc = subprocess.Popen(
                    [exe, f"--config-file={conf}", "--nofork", f"--print-address={w}"],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    pass_fds=(w,),
                    close_fds=True,
                    preexec_fn=pdeathsig_preexec(),  # noqa: PLW1509 (one prctl call)
                )
            os.close(w)
            w = -1
            self.address = read_line(r, self.proc, "dbus-daemon", self._start_timeout, log)
        except BaseException:
            self.stop()
            raise
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc)
            self.proc = None
        if self._dir is not None and self._given_dir is None:
            shutil.rmtree(self._dir, ignore_errors=True)
        self._dir = None
        self.address = ""

    def __enter__(self) -> PrivateBus:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
