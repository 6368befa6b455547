"""The daemon as a real process: the directories it makes and how it stops.

issue 10 item 20: the state dir and the parents the daemon creates for it are 0700
(they hold the cid's secret and every message), whatever the umask.
issue 10 item 22: SIGTERM with local clients attached stops cleanly: no traceback, no
CancelledError, one per connection as before.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.procs import DaemonProc, Proc, cli, wait_for, wait_listeners
from unipush_bridge.wire import local as wire


@pytest.fixture
def base() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="upd-"))  # short: AF_UNIX paths are short
    yield path
    shutil.rmtree(path, ignore_errors=True)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_state_dir_and_its_new_parents_are_private(base: Path, procs: list[Proc]) -> None:
    """issue 10 item 20: a fresh ``--state-dir a/b/state`` under umask 022 is 0700 all
    the way down from the first directory the daemon made."""
    state = base / "a" / "b" / "state"
    sock = base / "api.sock"
    old = os.umask(0o022)
    try:
        daemon = Proc(
            [
                "run",
                "--state-dir",
                str(state),
                "--socket",
                str(sock),
                "--embedded-port",
                "0",
                "--log-format",
                "json",
            ],
            base / "daemon.log",
        ).start()
    finally:
        os.umask(old)
    procs.append(daemon)
    wait_for(lambda: sock.exists() or not daemon.alive(), 15, "the daemon's socket")
    assert daemon.alive(), (base / "daemon.log").read_text()
    for d in (base / "a", base / "a" / "b", state, state / "embedded-gateway"):
        assert mode(d) == 0o700, f"{d} is {mode(d):04o}"
    assert mode(base) == 0o700  # existed before: mkdtemp's mode, left alone
    assert daemon.stop() == 0


def test_sigterm_with_clients_attached_logs_no_traceback(base: Path, procs: list[Proc]) -> None:
    """issue 10 item 22: three clients attached (two listening, one idle), SIGTERM: the
    daemon exits 0 and its stderr has no Traceback and no CancelledError."""
    daemon = DaemonProc(base / "state", None)
    procs.append(daemon)
    daemon.start()
    clients = []
    for n in range(3):
        c = socket.socket(socket.AF_UNIX)
        c.connect(str(daemon.socket))
        if n < 2:
            c.sendall(wire.encode_request(wire.Request(n, "onPushMessage", {"ack": n == 0})))
        clients.append(c)
    wait_listeners(daemon, 2)
    daemon.send_signal(signal.SIGTERM)
    assert daemon.proc is not None
    assert daemon.proc.wait(15) == 0
    err = daemon.log_path.read_text()
    assert "Traceback" not in err and "CancelledError" not in err, err[-3000:]
    assert '"stopped"' in err
    for c in clients:
        c.close()


#: Runs the daemon in this process (as ``run`` does after it execs) with one start step
#: wrapped to SIGTERM the process the moment that step is done.
_SELF_TERM = """
import os, signal, sys
from unipush_bridge.cli import _run_in_process
from unipush_bridge.gateway.server import Gateway
from unipush_bridge.runtime.daemon import main
from unipush_bridge.runtime.driver import Driver
from unipush_bridge.runtime.localapi import LocalApiServer
cls = {"gateway": Gateway, "socket": LocalApiServer, "store": Driver}[sys.argv[1]]
start = cls.start
async def start_then_term(self):
    await start(self)
    os.kill(os.getpid(), signal.SIGTERM)
cls.start = start_then_term
sys.exit(_run_in_process(main, sys.argv[2]))
"""


@pytest.mark.parametrize("step", ["gateway", "socket", "store"])
def test_sigterm_while_starting_stops_cleanly(base: Path, step: str) -> None:
    """A SIGTERM that lands while the daemon is still coming up (the CI run that saw
    -15 from the test above) exits 0 through the normal shutdown: the signal handlers
    go in before the first thing that is started, not after the socket is bound."""
    sock = base / "api.sock"
    args = ["run", "--state-dir", str(base / "state"), "--socket", str(sock)]
    options = cli(*args, "--embedded-port", "0", "--log-format", "json", "--print-config")
    assert options.returncode == 0, options.stderr
    proc = subprocess.run(
        [sys.executable, "-c", _SELF_TERM, step, options.stdout],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert '"stopped"' in proc.stderr
    assert not sock.exists()
