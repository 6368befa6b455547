"""The daemon speaks sd_notify to a real NOTIFY_SOCKET that the test reads (issue 14 item 1).

A real daemon process, a real AF_UNIX datagram socket (a path, and the abstract
namespace), real signals: what systemd would see from a ``Type=notify`` unit with
``WatchdogSec``.
"""

from __future__ import annotations

import os
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.procs import DaemonProc, GatewayProc, Proc, free_port

pytestmark = pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="needs AF_UNIX")


class NotifySocket:
    """What the service manager would read: one dict per datagram."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(b"\0" + address[1:].encode() if address.startswith("@") else address)
        self.seen: list[dict[str, str]] = []

    def next(self, key: str, timeout: float = 10.0, value: str | None = None) -> dict[str, str]:
        """The next message with ``key`` (equal to ``value`` if given), reading on."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {key} message in {timeout} s; saw {self.seen[-5:]}")
            self.sock.settimeout(left)
            try:
                raw = self.sock.recv(4096)
            except TimeoutError:
                continue
            msg = dict(line.split("=", 1) for line in raw.decode().splitlines() if "=" in line)
            self.seen.append(msg)
            if key in msg and (value is None or msg[key] == value):
                return msg

    def drain(self, seconds: float) -> list[dict[str, str]]:
        got: list[dict[str, str]] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                raw = self.sock.recv(4096)
            except TimeoutError:
                break
            got.append(dict(x.split("=", 1) for x in raw.decode().splitlines() if "=" in x))
        return got

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_path(tmp_path: Path) -> Iterator[NotifySocket]:
    ns = NotifySocket(str(tmp_path / "notify.sock"))
    yield ns
    ns.close()


def start(tmp_path: Path, procs: list[Proc], env: dict[str, str]) -> tuple[DaemonProc, GatewayProc]:
    gw = GatewayProc(tmp_path / "gw").start()
    procs.append(gw)
    daemon = DaemonProc(tmp_path / "d", gw.ws_url, env=env)
    procs.append(daemon)
    daemon.start(wait_registered=False)
    return daemon, gw


def test_ready_after_socket_status_watchdog_reload_stopping(
    tmp_path: Path, procs: list[Proc], notify_path: NotifySocket
) -> None:
    """issue 14 item 1: READY=1 once the socket is bound, STATUS= with the link state and
    backlog, WATCHDOG=1 at half WATCHDOG_USEC (none while the process is stopped),
    RELOADING=1 then READY=1 around SIGHUP, STOPPING=1 on SIGTERM."""
    daemon, _gw = start(
        tmp_path, procs, {"NOTIFY_SOCKET": notify_path.address, "WATCHDOG_USEC": "400000"}
    )
    ready = notify_path.next("READY")
    assert ready["READY"] == "1"
    assert daemon.socket.exists()  # bound before READY
    assert ready["STATUS"].startswith("link ")
    status = notify_path.next("STATUS", value="link connected, backlog 0")
    assert status["STATUS"] == "link connected, backlog 0"

    # Pings at about 0.2 s (half of 0.4 s).
    notify_path.next("WATCHDOG")
    t0 = time.monotonic()
    notify_path.next("WATCHDOG")
    notify_path.next("WATCHDOG")
    assert 0.2 <= time.monotonic() - t0 < 1.5

    # A process that does not run sends no pings (systemd would then kill it).
    daemon.send_signal(signal.SIGSTOP)
    time.sleep(0.1)
    notify_path.drain(0.05)
    assert not [m for m in notify_path.drain(0.6) if "WATCHDOG" in m]
    daemon.send_signal(signal.SIGCONT)
    notify_path.next("WATCHDOG")

    daemon.send_signal(signal.SIGHUP)
    reloading = notify_path.next("RELOADING")
    assert reloading["RELOADING"] == "1"
    assert int(reloading["MONOTONIC_USEC"]) > 0
    assert notify_path.next("READY")["READY"] == "1"

    daemon.send_signal(signal.SIGTERM)
    assert notify_path.next("STOPPING")["STOPPING"] == "1"
    assert daemon.proc is not None
    assert daemon.proc.wait(10) == 0


def test_abstract_namespace_and_no_watchdog(tmp_path: Path, procs: list[Proc]) -> None:
    """issue 14 item 1: an ``@name`` NOTIFY_SOCKET (abstract namespace) works, and without
    WATCHDOG_USEC no WATCHDOG=1 is sent; the link state change arrives as STATUS=."""
    ns = NotifySocket(f"@unipush-test-{uuid.uuid4().hex}")
    try:
        gw = GatewayProc(tmp_path / "gw", port=free_port())  # the daemon needs it first
        daemon = DaemonProc(tmp_path / "d", gw.ws_url, env={"NOTIFY_SOCKET": ns.address})
        procs.append(daemon)
        daemon.start(wait_registered=False)  # the gateway is not up yet
        first = ns.next("READY")
        assert "connected" not in first["STATUS"].split(",")[0].split()
        gw.start()
        procs.append(gw)
        assert ns.next("STATUS", value="link connected, backlog 0", timeout=15)
        assert not [m for m in ns.seen if "WATCHDOG" in m]
    finally:
        ns.close()


def test_watchdog_for_another_pid_is_ignored(
    tmp_path: Path, procs: list[Proc], notify_path: NotifySocket
) -> None:
    """issue 14 item 1: WATCHDOG_PID naming another process means the watchdog is not ours."""
    start(
        tmp_path,
        procs,
        {
            "NOTIFY_SOCKET": notify_path.address,
            "WATCHDOG_USEC": "200000",
            "WATCHDOG_PID": str(os.getpid()),
        },
    )
    notify_path.next("READY")
    assert not [m for m in notify_path.drain(0.6) if "WATCHDOG" in m]
