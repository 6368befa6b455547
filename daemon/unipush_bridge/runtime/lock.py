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
from dataclasses import dataclass
from pathlib import Path

from .. import paths
from ..errors import AlreadyRunning


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


def acquire(state_dir: Path, appid: str) -> InstanceLock:
    """Take the lock or raise AlreadyRunning naming the daemon that has it."""
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
        who = f"pid {holder.pid}, socket {holder.socket}" if holder else "pid unknown"
        raise AlreadyRunning(
            f"a daemon for appid {appid} is already running with state dir {state_dir} "
            f"({who}); stop it first (`unipush-bridge status --appid {appid}` shows it), "
            "or give this one another --appid or --state-dir"
        ) from None
    return InstanceLock(fd, path)


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
