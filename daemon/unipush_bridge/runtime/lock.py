"""One daemon per appid and state directory, held by a lock for the daemon's life.

Two daemons on one state file would both replay its inbox and both hold the cid.
The lock is ``flock`` on ``<state_dir>/<appid>.lock``: the kernel drops it when the
process dies however it dies, so a stale lock never blocks a restart. The file says
who holds it (pid, socket, embedded gateway port), so a refused start can name the
running daemon, and a taken port can be traced to the daemon that holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shlex
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import paths
from ..errors import AlreadyRunning, UnipushError
from ..wire import local


@dataclass(frozen=True)
class Holder:
    appid: str
    pid: int
    socket: str
    port: int | None


class InstanceLock:
    def __init__(self, fd: int, path: Path) -> None:
        self._fd = fd
        self.path = path

    def note(self, holder: Holder) -> None:
        """Say who holds the lock, for a second start to read."""
        text = json.dumps(holder.__dict__).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, text, 0)

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing drops the flock
            self._fd = -1


def lock_path(state_dir: Path, appid: str) -> Path:
    return state_dir / f"{appid}.lock"


def acquire(state_dir: Path, appid: str, program: str = "unipush-bridge") -> InstanceLock:
    """Take the lock or raise AlreadyRunning naming the daemon that has it, with the
    commands that talk to it or stop it (``program`` is how to spell the command)."""
    # 0700 for the state dir and each parent made here, whatever the umask: it holds
    # the cid's secret and every message. An existing directory is left as it is.
    paths.make_private_dirs(state_dir)
    path = lock_path(state_dir, appid)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read(fd)
        os.close(fd)
        if holder is None:
            raise AlreadyRunning(
                f"a daemon for appid {appid} is already running with state dir {state_dir} "
                f"(pid unknown); `{program} status --appid {appid}` shows it"
            ) from None
        raise AlreadyRunning(
            f"a daemon for appid {appid} is already running with state dir {state_dir} "
            f"(pid {holder.pid}, socket {holder.socket}); "
            f"{use_it(program, appid, holder.socket, holder.pid)} "
            "(another --appid can run beside it)"
        ) from None
    return InstanceLock(fd, path)


def use_it(program: str, appid: str, socket_path: str, pid: int) -> str:
    """How to use the daemon that already runs for ``appid``, or stop it: what a
    refused start should lead to, not a second daemon (and a second cid) for the
    same appid (issue 12 item 8)."""
    where = _socket_args(appid, socket_path)
    status = shlex.join([program, "status", *where])
    listen = shlex.join([program, "listen", "--json", *where])
    return (
        f"talk to it with `{status}` or `{listen}`, "
        f"or stop it with `{stop_command(pid)}` before starting this one"
    )


def _socket_args(appid: str, socket_path: str) -> list[str]:
    """The shortest flags that find this socket: none for the default appid's default."""
    if socket_path != str(paths.default_socket(appid)):
        return ["--socket", socket_path]
    return [] if appid == paths.DEFAULT_APPID else ["--appid", appid]


_SERVICE = re.compile(r"/(unipush-bridge[^/]*\.service)$", re.MULTILINE)


def stop_command(pid: int) -> str:
    """``systemctl --user stop <unit>`` for a daemon run by a systemd user unit (kill
    would only make systemd start it again), else ``kill <pid>``."""
    with contextlib.suppress(OSError):
        found = _SERVICE.search(Path(f"/proc/{pid}/cgroup").read_text())
        if found is not None:
            return f"systemctl --user stop {found.group(1)}"
    return f"kill {pid}"


def running_daemon(sockets: Iterable[Path], timeout: float = 0.5) -> dict[str, Any] | None:
    """The status of the first daemon that answers on one of ``sockets`` (a daemon of
    this user only: the peer is checked), or None."""
    for path in dict.fromkeys(sockets):
        with contextlib.suppress(OSError, ValueError, UnipushError):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(str(path))
                paths.check_peer(sock, f"the daemon on {path}")
                sock.sendall(local.encode_request(local.Request(1, "status")))
                line = sock.makefile("rb").readline(1 << 20)
            answer = local.parse_daemon_line(line)
            if isinstance(answer, local.Answer) and not answer.failed:
                return answer.result
    return None


def holder_of_port(state_dir: Path, port: int) -> Holder | None:
    """The running daemon (of any appid in this state dir) whose embedded gateway
    holds ``port``, if there is one."""
    for path in sorted(state_dir.glob("*.lock")):
        with contextlib.suppress(OSError):
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:  # held: a live daemon
                    holder = _read(fd)
                    if holder is not None and holder.port == port:
                        return holder
                else:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
    return None


def _read(fd: int) -> Holder | None:
    try:
        raw = json.loads(os.pread(fd, 4096, 0) or b"null")
        return Holder(str(raw["appid"]), int(raw["pid"]), str(raw["socket"]), raw.get("port"))
    except (ValueError, TypeError, KeyError):
        return None
