"""Names and places every part agrees on, with no heavy imports: the client library
and the daemon need them without loading the config machinery.

Also the rules that keep another local user out of the socket and the state: the
default socket directory is predictable (``$TMPDIR/unipush-bridge-<uid>`` without
``XDG_RUNTIME_DIR``), so whoever creates it first would own it. Both ends check it
with ``lstat`` (a symlink is never followed) and check who is on the other end of the
socket (``SO_PEERCRED``).
"""

from __future__ import annotations

import _socket  # socket.py's enums and selectors cost the one-shot commands ~5 ms (issue 13)
import os
import stat
import struct
import sys

from .errors import EXIT_USAGE, UnipushError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pathlib and typing load only where a Path is made (issue 13)
    from pathlib import Path
    from typing import Any

APP = "unipush-bridge"
DEFAULT_APPID = "__UNI__DESKTOP"


class UnsafePath(UnipushError):
    """A socket or state directory another user could control (or a peer of another
    uid): restarting cannot fix it, so it is a usage error."""

    exit_code = EXIT_USAGE


def runtime_dir_name() -> str:
    """Where local sockets live: $XDG_RUNTIME_DIR/unipush-bridge, else a private /tmp dir."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base:
        return os.path.normpath(os.path.join(base, APP))
    import tempfile  # only here: the CLI's local commands import this module (issue 13)

    return os.path.join(tempfile.gettempdir(), f"{APP}-{os.getuid()}")


def default_socket_name(appid: str) -> str:
    return os.path.join(runtime_dir_name(), f"{appid}.sock")


#: The longest socket path bind() and connect() take: sun_path less its NUL (108 bytes
#: on Linux, 104 on macOS and the BSDs).
SOCKET_PATH_MAX = 107 if sys.platform.startswith("linux") else 103


def socket_path_error(path: str | os.PathLike[str], given: bool) -> str | None:
    """Why ``path`` cannot be a Unix socket's (too long), naming where it came from:
    ``given`` by --socket / the socket key, or made from XDG_RUNTIME_DIR and the appid.
    Asked before anything starts, so the error is not a bare 'AF_UNIX path too long'."""
    size = len(os.fsencode(path))
    if size <= SOCKET_PATH_MAX:
        return None
    fix = (
        "use a shorter path"
        if given
        else "it is made from XDG_RUNTIME_DIR and the appid: set a shorter XDG_RUNTIME_DIR "
        "or give a shorter socket path"
    )
    limit = f"{size} bytes, at most {SOCKET_PATH_MAX}"
    return f"socket path {path} is too long for AF_UNIX ({limit}); {fix}"


def runtime_dir() -> Path:
    from pathlib import Path

    return Path(runtime_dir_name())


def default_socket(appid: str) -> Path:
    from pathlib import Path

    return Path(default_socket_name(appid))


# -- directories ---------------------------------------------------------------------------


def make_private_dirs(path: Path) -> bool:
    """Create ``path`` and whichever of its parents are missing, each 0700 (whatever
    the umask); an existing directory is left as it is. True if ``path`` was created
    here, so only then may the caller change its mode."""
    missing: list[Path] = []
    probe = path
    while not os.path.lexists(probe):
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:  # made meanwhile by someone else: not ours to chmod
            if directory == path:
                return False
            continue
        os.chmod(directory, 0o700)  # the umask may have taken bits; never added any
    return bool(missing) and missing[0] == path


def write_replacing(path: Path, text: str, prefix: str) -> None:
    """``text`` into ``path`` through a 0600 temp file (``prefix``...) beside it, renamed
    into place: no reader sees half a file, and no symlink or file already at ``path``
    is written through."""
    import contextlib  # here: the one-shot commands import this module (issue 13)
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _real_dir(path: str | os.PathLike[str], what: str) -> os.stat_result:
    """lstat, so a symlink planted in the path's place is seen, not followed."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise UnsafePath(f"{what} {path} does not exist") from None
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePath(f"{what} {path} is a symlink; it must be a real directory")
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafePath(f"{what} {path} is not a directory")
    return st


def check_private_dir(path: str | os.PathLike[str], what: str = "socket directory") -> None:
    """The directory must be a real directory (not a symlink), owned by this user, with
    no access for group or others: anyone else who can enter it could answer in the
    daemon's place or read what apps send it."""
    uid = os.getuid()
    st = _real_dir(path, what)
    if st.st_uid != uid:
        raise UnsafePath(
            f"{what} {path} is owned by uid {st.st_uid}, not by this user (uid {uid}); "
            "another user may have created it: remove it, or set XDG_RUNTIME_DIR"
        )
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise UnsafePath(
            f"{what} {path} has mode {stat.S_IMODE(st.st_mode):04o}; it must give group "
            f"and others no access (chmod 700 {path})"
        )


def check_shared_dir(path: str | os.PathLike[str], what: str = "socket directory") -> None:
    """A directory named by ``--socket``: it may be shared (``/tmp``), but nobody else
    may replace entries in it, i.e. it is owned by this user or root and is writable by
    others only when sticky. The socket's own mode (0600) and the peer check do the
    rest."""
    uid = os.getuid()
    st = _real_dir(path, what)
    if st.st_uid not in (uid, 0):
        raise UnsafePath(
            f"{what} {path} is owned by uid {st.st_uid}, neither this user (uid {uid}) "
            "nor root; another user controls it"
        )
    if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
        raise UnsafePath(
            f"{what} {path} has mode {stat.S_IMODE(st.st_mode):04o}: others may write "
            "there and it is not sticky, so they could replace the socket"
        )


def check_socket_dir(socket_path: str | os.PathLike[str]) -> None:
    """The default place (the runtime dir) must be private; a directory given with
    ``--socket`` must at least be one nobody else can replace entries in."""
    parent = os.path.dirname(os.path.normpath(os.fspath(socket_path))) or "."
    if _is_runtime_dir(parent):
        check_private_dir(parent)
    else:
        check_shared_dir(parent)


def _is_runtime_dir(path: str) -> bool:
    if not os.environ.get("XDG_RUNTIME_DIR") and os.path.basename(path) != f"{APP}-{os.getuid()}":
        return False  # not the temp-dir fallback's name: no need to import tempfile to see it
    return path == runtime_dir_name()


# -- the peer -------------------------------------------------------------------------------


def peer_uid(sock: Any) -> int | None:
    """The uid of the process at the other end of a connected Unix socket (``sock``
    is a socket or asyncio's TransportSocket). None where the platform cannot tell:
    there only the file modes protect the socket."""
    if sys.platform.startswith("linux") and hasattr(_socket, "SO_PEERCRED"):
        raw = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", raw)
        return int(uid)
    if sys.platform == "darwin":
        # LOCAL_PEERCRED (level SOL_LOCAL = 0, option 1) answers a struct xucred:
        # u_int cr_version, uid_t cr_uid, short cr_ngroups, gid_t cr_groups[16].
        raw = sock.getsockopt(0, 1, struct.calcsize("IIh16I"))
        _version, uid = struct.unpack_from("II", raw)
        return int(uid)
    return None  # other platforms (the BSDs' getpeereid is not in Python): skipped


def check_peer(sock: Any, who: str) -> None:
    """Refuse a peer running as another user (``who`` names it in the error)."""
    uid = peer_uid(sock)
    if uid is not None and uid != os.getuid():
        raise UnsafePath(f"{who} runs as uid {uid}, not as this user (uid {os.getuid()})")
