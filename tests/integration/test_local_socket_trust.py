"""Issue 10 items 7 and 8: who may stand at either end of the local API socket.

Item 7 (socket-directory squatting): without XDG_RUNTIME_DIR the default directory
``$TMPDIR/unipush-bridge-<uid>`` is predictable, so another user may create it first.
The daemon (LocalApiServer) and the clients refuse a directory that is a symlink, owned
by another uid, or open to group/others; and each end checks the other's uid with
SO_PEERCRED. Other users are real processes of uid 12345 (``setpriv``), which needs
root; without it these tests skip and say so.

Item 8: ``--socket`` in an existing shared directory (mode 1777, like /tmp) leaves the
directory's mode alone; only a directory the daemon created is made 0700.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.unit.runtime.test_localapi import FakeApi, status
from unipush_bridge import paths
from unipush_bridge.clients import PushClient, SyncPushClient
from unipush_bridge.paths import UnsafePath
from unipush_bridge.runtime.localapi import LocalApiServer

OTHER_UID = 12345
APPID = "__UNI__TRUST"
as_root = pytest.mark.skipif(
    os.getuid() != 0 or shutil.which("setpriv") is None,
    reason="needs root and setpriv (util-linux) to run a process as another uid",
)


def as_other_user(code: str) -> list[str]:
    return [
        "setpriv",
        f"--reuid={OTHER_UID}",
        f"--regid={OTHER_UID}",
        "--clear-groups",
        sys.executable,
        "-c",
        textwrap.dedent(code),
    ]


#: A squatter: listens on argv[1] as another user, answers every line with a fake cid
#: and prints what it received.
SQUATTER = """
    import json, os, socket, sys
    s = socket.socket(socket.AF_UNIX)
    s.bind(sys.argv[1])
    os.chmod(sys.argv[1], 0o777)
    s.listen()
    print("ready", flush=True)
    s.settimeout(10)
    try:
        conn, _ = s.accept()
    except TimeoutError:
        sys.exit(0)
    conn.settimeout(2)
    got = b""
    try:
        while chunk := conn.recv(65536):
            got += chunk
            answer = {"id": 1, "result": {"errMsg": "getPushClientId:ok", "cid": "f" * 32}}
            conn.sendall(json.dumps(answer).encode() + b"\\n")
    except (TimeoutError, OSError):
        pass
    print("got", got.decode(errors="replace"), flush=True)
"""


@pytest.fixture
def base() -> Iterator[Path]:
    """A short temp dir (AF_UNIX paths are short) that stands in for TMPDIR."""
    path = Path(tempfile.mkdtemp(prefix="upt-"))
    os.chmod(path, 0o755)  # other users must reach what is inside, as in /tmp
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def no_xdg(base: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """XDG_RUNTIME_DIR unset and TMPDIR = ``base``: the predictable fallback."""
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(base))
    runtime = paths.runtime_dir()
    assert runtime == base / f"unipush-bridge-{os.getuid()}"
    return runtime


def squat(runtime: Path) -> None:
    """As another user would: the fallback directory, first, open to all."""
    runtime.mkdir(mode=0o777)
    os.chmod(runtime, 0o777)
    os.chown(runtime, OTHER_UID, OTHER_UID)


def prepare(runtime: Path, base: Path, how: str) -> str:
    """Make ``runtime`` unsafe in one way; returns the rule the refusal must name."""
    if how == "mode 0777":
        runtime.mkdir()
        os.chmod(runtime, 0o777)
        return "mode 0777; it must give group and others no access"
    if how == "owned by another uid":
        runtime.mkdir(mode=0o700)
        os.chown(runtime, OTHER_UID, OTHER_UID)
        return f"owned by uid {OTHER_UID}, not by this user"
    target = base / "elsewhere"
    target.mkdir(mode=0o700)
    runtime.symlink_to(target)
    return "is a symlink; it must be a real directory"


def sockets_under(base: Path) -> list[Path]:
    return [p for p in base.rglob("*") if p.name.endswith(".sock")]


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def make_dir(path: Path, dir_mode: int, owner: int | None = None) -> Path:
    path.mkdir()
    os.chmod(path, dir_mode)
    if owner is not None:
        os.chown(path, owner, owner)
    return path


async def start_server(path: Path) -> LocalApiServer:
    server = LocalApiServer(FakeApi(), path, status, cid_timeout=1.0)
    await server.start()
    return server


@pytest.fixture
async def squatter(no_xdg: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """Another user made the fallback directory first and listens in it."""
    squat(no_xdg)
    sock = no_xdg / f"{APPID}.sock"
    proc = await asyncio.create_subprocess_exec(
        *as_other_user(SQUATTER), str(sock), stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    assert (await asyncio.wait_for(proc.stdout.readline(), 10)).strip() == b"ready"
    yield proc
    if proc.returncode is None:
        proc.kill()
        await proc.wait()


async def squatter_got(proc: asyncio.subprocess.Process) -> bytes:
    proc.kill()
    out, _ = await proc.communicate()
    return out


# item 7: the directory, at the daemon's end ------------------------------------------


@as_root
@pytest.mark.parametrize("how", ["mode 0777", "owned by another uid", "a symlink"])
async def test_daemon_refuses_a_squatted_default_dir(no_xdg: Path, base: Path, how: str) -> None:
    """issue 10 item 7: the daemon refuses the fallback dir unless it is ours and private."""
    rule = prepare(no_xdg, base, how)
    server = LocalApiServer(FakeApi(), no_xdg / f"{APPID}.sock", status)
    with pytest.raises(UnsafePath) as refused:
        await server.start()
    assert str(no_xdg) in str(refused.value) and rule in str(refused.value)
    assert not sockets_under(base)  # nothing was bound
    assert UnsafePath.exit_code == 2  # restarting cannot fix it


async def test_daemon_makes_the_default_dir_private(no_xdg: Path) -> None:
    """issue 10 item 7: a fallback dir the daemon creates is 0700 and accepted."""
    server = await start_server(no_xdg / f"{APPID}.sock")
    try:
        st = os.lstat(no_xdg)
        assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == os.getuid()
        async with PushClient(appid=APPID) as push:
            assert (await push.status())["errMsg"] == "status:ok"
    finally:
        await server.stop()


# item 7: the directory and the peer, at the client's end ------------------------------


@as_root
async def test_async_client_refuses_a_squatters_dir_and_sends_nothing(
    squatter: asyncio.subprocess.Process, no_xdg: Path
) -> None:
    """issue 10 item 7: the victim's createPushMessage text never reaches the squatter."""
    push = PushClient(appid=APPID)
    with pytest.raises(UnsafePath, match=f"owned by uid {OTHER_UID}"):
        await push.create_push_message(content="my secret text")
    await push.close()
    assert b"secret" not in await squatter_got(squatter)


@as_root
async def test_sync_client_refuses_a_squatters_dir(
    squatter: asyncio.subprocess.Process, no_xdg: Path
) -> None:
    """issue 10 item 7: SyncPushClient (and so the CLI's calls) refuse it too."""

    def connect() -> None:
        SyncPushClient(appid=APPID)

    with pytest.raises(UnsafePath, match=str(no_xdg)):
        await asyncio.to_thread(connect)
    assert b"getPushClientId" not in await squatter_got(squatter)


@as_root
def test_cli_refuses_a_squatters_dir(no_xdg: Path, base: Path) -> None:
    """issue 10 item 7: the CLI names the directory and the rule, exit 2, no traceback."""
    no_xdg.mkdir()
    os.chmod(no_xdg, 0o777)
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    env["TMPDIR"] = str(base)
    res = subprocess.run(
        [sys.executable, "-m", "unipush_bridge.cli", "cid", "--appid", APPID],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert res.returncode == 2, res.stderr
    assert str(no_xdg) in res.stderr and "mode 0777" in res.stderr
    assert "Traceback" not in res.stderr


@as_root
async def test_client_refuses_a_daemon_of_another_uid(base: Path) -> None:
    """issue 10 item 7: in a shared sticky dir (where the dir check passes) the peer
    check finds a socket served by another user and refuses before writing."""
    shared = make_dir(base / "shared", 0o1777)
    sock = shared / "d.sock"
    proc = await asyncio.create_subprocess_exec(
        *as_other_user(SQUATTER), str(sock), stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    try:
        assert (await asyncio.wait_for(proc.stdout.readline(), 10)).strip() == b"ready"
        push = PushClient(sock)
        with pytest.raises(UnsafePath, match=f"runs as uid {OTHER_UID}, not as this user"):
            await push.create_push_message(content="my secret text")
        await push.close()
    finally:
        got = await squatter_got(proc)
    assert b"secret" not in got


@as_root
async def test_daemon_refuses_a_client_of_another_uid(base: Path) -> None:
    """issue 10 item 7: even with the socket made reachable (chmod 0666), a client of
    another uid gets no answer: SO_PEERCRED refuses it. Ours is served as before."""
    server = await start_server(base / "run" / "d.sock")
    os.chmod(base / "run", 0o755)
    os.chmod(server.path, 0o666)
    client = """
        import socket, sys
        s = socket.socket(socket.AF_UNIX)
        s.connect(sys.argv[1])
        s.settimeout(5)
        try:
            s.sendall(b'{"id": 1, "method": "getPushClientId"}\\n')
            print(repr(s.recv(65536)), flush=True)
        except OSError:  # cut before it could even write
            print(repr(b""), flush=True)
    """
    try:
        proc = await asyncio.create_subprocess_exec(
            *as_other_user(client),
            str(server.path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 10)
        assert proc.returncode == 0, err
        assert out.strip() == b"b''", out  # closed with nothing said
        async with PushClient(server.path) as push:
            assert (await push.get_push_client_id())["cid"]
    finally:
        await server.stop()


# item 8: a shared directory keeps its mode -------------------------------------------


async def test_socket_in_a_shared_sticky_dir_leaves_its_mode_alone(base: Path) -> None:
    """issue 10 item 8: ``--socket /tmp/demo.sock`` must not chmod /tmp to 0700."""
    shared = make_dir(base / "tmp", 0o1777)
    server = await start_server(shared / "demo.sock")
    try:
        assert mode(shared) == 0o1777
        assert mode(server.path) == 0o600
        async with PushClient(server.path) as push:
            assert (await push.status())["errMsg"] == "status:ok"
    finally:
        await server.stop()
    assert mode(shared) == 0o1777


async def test_missing_socket_dirs_are_created_private(base: Path) -> None:
    """issue 10 item 8: directories the daemon creates for the socket are 0700."""
    old = os.umask(0o022)
    try:
        server = await start_server(base / "a" / "b" / "d.sock")
    finally:
        os.umask(old)
    try:
        for d in (base / "a", base / "a" / "b"):
            assert mode(d) == 0o700, d
    finally:
        await server.stop()


@as_root
async def test_a_shared_dir_that_others_can_replace_entries_in_is_refused(base: Path) -> None:
    """issue 10 items 7 and 8: a non-sticky world-writable dir, or one owned by another
    user, could have the socket swapped under us: refused, named."""
    loose = make_dir(base / "loose", 0o777)
    with pytest.raises(UnsafePath, match="not sticky"):
        await start_server(loose / "d.sock")
    theirs = make_dir(base / "theirs", 0o755, OTHER_UID)
    with pytest.raises(UnsafePath, match=f"owned by uid {OTHER_UID}"):
        await start_server(theirs / "d.sock")


@as_root
async def test_a_socket_held_by_another_user_is_named_not_taken_for_a_daemon(base: Path) -> None:
    """``--socket`` in a shared sticky dir where another user listens first: the start
    names that user, rather than "another daemon is already listening", whose advice
    (talk to it with ``status --socket ...``) leads to the squatter."""
    shared = make_dir(base / "shared", 0o1777)
    sock = shared / "d.sock"
    proc = await asyncio.create_subprocess_exec(
        *as_other_user(SQUATTER), str(sock), stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    try:
        assert (await asyncio.wait_for(proc.stdout.readline(), 10)).strip() == b"ready"
        with pytest.raises(UnsafePath, match=rf"{sock} is held by uid {OTHER_UID}, not this"):
            await start_server(sock)
        assert os.lstat(sock).st_uid == OTHER_UID  # left as it was
    finally:
        await squatter_got(proc)
