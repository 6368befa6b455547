"""Real gateway and daemon processes on loopback, with private dirs, for the plugin.

Each child runs ``python -m unipush_bridge.cli`` in a process group of its own, so
stopping it (TERM, then KILL after :data:`STOP_TIMEOUT_S`) takes whatever it started
too. Readiness is read, not slept on: the daemon's sd_notify READY=1 datagram, then its
local API; the gateway's /healthz. The gateway and the daemon start at the same time
(the daemon is given the gateway's port up front and connects as soon as it listens).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "Child",
    "DaemonProcess",
    "GatewayProcess",
    "InProcessListener",
    "StackTimeout",
    "child_env",
    "free_port",
    "own_config",
    "wait_until",
]

T = TypeVar("T")
#: How long a stopped child gets before SIGKILL.
STOP_TIMEOUT_S = 3.0
#: How long a child gets to become ready.
START_TIMEOUT_S = 20.0
POLL_S = 0.005


class StackTimeout(TimeoutError):
    """A deadline passed; the message says what was awaited and what the log said."""


def wait_until(check: Callable[[], T | None], timeout: float = 10.0, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise StackTimeout(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(POLL_S)


def free_port() -> int:
    """A port free now; another process may take it before it is bound (prefer
    ``--port 0`` and :func:`listening_port` for a gateway)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log_size(log: Path) -> int:
    """Where a child's log ends now, so a new start's lines can be read apart."""
    try:
        return log.stat().st_size
    except FileNotFoundError:
        return 0


def listening_port(log: Path, offset: int = 0) -> int:
    """The port a gateway started with ``--port 0`` bound, from its JSON "gateway
    listening" line past ``offset``; 0 while it has not said. Picking a free port and
    passing it loses a race with parallel tests that do the same."""
    try:
        with log.open("rb") as f:
            f.seek(offset)
            lines = f.read().splitlines()
    except FileNotFoundError:
        return 0
    for line in lines:
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict) and entry.get("event") == "gateway listening":
                return int(entry["port"])
    return 0


class Child:
    """One ``unipush-bridge`` process: stdout/stderr to ``log``, its own process group.

    Forked by the session's :mod:`.zygote` (modules already imported) where Linux has
    pidfds, so its exit can be awaited though it is not our child; else a plain Popen.
    ``UNIPUSH_TEST_NO_ZYGOTE=1`` forces the plain way.
    """

    def __init__(self, args: list[str], log: Path, env: Mapping[str, str]) -> None:
        self.args = args
        self.log_path = log
        self.proc: subprocess.Popen[bytes] | None = None
        self._pidfd = -1
        if hasattr(os, "pidfd_open") and os.environ.get("UNIPUSH_TEST_NO_ZYGOTE") != "1":
            from .zygote import zygote

            self.pid = zygote().spawn(args, dict(env), str(log))
            try:
                self._pidfd = os.pidfd_open(self.pid)
            except ProcessLookupError:
                # Exited already (a bad option, a taken port) and reaped by the kernel
                # (the zygote ignores SIGCHLD): no pidfd, so alive() says it is gone.
                self._pidfd = -1
            return
        with log.open("ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "unipush_bridge.cli", *args],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                env=dict(env),
                start_new_session=True,
            )
        self.pid = self.proc.pid

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        if self._pidfd < 0:
            return False
        return not select.select([self._pidfd], [], [], 0)[0]

    def _wait(self, timeout: float) -> bool:
        """True once it has exited (within ``timeout``)."""
        if self.proc is not None:
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        return self._pidfd < 0 or bool(select.select([self._pidfd], [], [], timeout)[0])

    def check_alive(self, what: str) -> None:
        if not self.alive():
            code = "" if self.proc is None else f" ({self.proc.returncode})"
            raise RuntimeError(f"{what} exited{code}:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def logs(self) -> list[dict[str, Any]]:
        """The JSON log lines so far."""
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """TERM the group, KILL it after ``timeout``; always reaped. Idempotent."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if not self.alive():
                break
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)
            if self._wait(timeout):
                break
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)  # what it left behind in its group
        if self._pidfd >= 0:
            os.close(self._pidfd)
            self._pidfd = -1


def own_config(path: Path) -> Path:
    """An empty config file of the child's own: without ``--config`` it would read the
    user's ``~/.config/unipush-bridge/*.toml`` (quiet hours, a web_port, relaxed limits
    of the daemon they run day to day), and a test would see their settings, not the
    defaults. Kept if it exists, so a caller can write settings there first."""
    path.touch(exist_ok=True)
    return path


def child_env(bus_address: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UNIPUSH_BRIDGE_", "NOTIFY_"))}
    env["DBUS_SESSION_BUS_ADDRESS"] = bus_address
    env.update(extra or {})
    return env


class GatewayProcess:
    """``unipush-bridge gateway`` on 127.0.0.1 with its data in ``data_dir``."""

    def __init__(self, data_dir: Path, env: Mapping[str, str], port: int | None = None) -> None:
        self.port = port or 0  # 0: the gateway picks one, read from its log when ready
        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        self._log_from = log_size(data_dir / "gateway.log")
        self.child = Child(
            ["gateway", "--config", str(own_config(data_dir / "gateway.toml")),
             "--host", "127.0.0.1", "--port", str(self.port),
             "--data-dir", str(data_dir), "--log-format", "json"],
            data_dir / "gateway.log",
            env,
        )  # fmt: skip

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.listening()}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.listening()}"

    def listening(self, timeout: float = START_TIMEOUT_S) -> int:
        """The bound port; waits for the gateway to say it when it picked one, so a
        daemon started next still overlaps the gateway's own start."""
        if not self.port:
            wait_until(self._port_known, timeout, "the gateway to say which port it bound")
        return self.port

    def _port_known(self) -> bool:
        self.child.check_alive("the gateway")
        self.port = listening_port(self.data_dir / "gateway.log", self._log_from)
        return bool(self.port)

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> GatewayProcess:
        wait_until(self._healthy, timeout, "the gateway to answer /healthz")
        return self

    def _healthy(self) -> bool:
        self.child.check_alive("the gateway")
        if not self.port and not self._port_known():
            return False
        try:
            with urllib.request.urlopen(f"{self.http_url}/healthz", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def call(
        self, method: str, body: Any, appid: str = "__UNI__DESKTOP"
    ) -> tuple[int, dict[str, Any]]:
        """POST uni-push's server API (``/api/<appid>/<method>``); (status, answer)."""
        req = urllib.request.Request(
            f"{self.http_url}/api/{appid}/{method}",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def stop(self) -> None:
        self.child.stop()


class DaemonProcess:
    """``unipush-bridge run`` against a gateway, with its state and socket in ``state_dir``.

    Readiness: the daemon sends sd_notify READY=1 once its socket is bound (we give it a
    NOTIFY_SOCKET of our own), then the local API says when the cid is registered.
    """

    def __init__(
        self,
        state_dir: Path,
        gateway_ws: str,
        env: Mapping[str, str],
        appid: str = "__UNI__DESKTOP",
    ) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir = state_dir
        self.socket = state_dir / "api.sock"
        self.appid = appid
        self._ready = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._ready.bind(str(state_dir / "notify.sock"))
        self.child = Child(
            ["run", "--config", str(own_config(state_dir / "daemon.toml")),
             "--state-dir", str(state_dir), "--socket", str(self.socket),
             "--appid", appid, "--gateway", gateway_ws,
             "--log-format", "json", "--log-level", "debug"],
            state_dir / "daemon.log",
            {**env, "NOTIFY_SOCKET": str(state_dir / "notify.sock")},
        )  # fmt: skip
        self.cid = ""

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> DaemonProcess:
        deadline = time.monotonic() + timeout
        try:
            while True:
                self.child.check_alive("the daemon")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StackTimeout(f"the daemon sent no READY=1 in {timeout:g}s")
                ready, _, _ = select.select([self._ready], [], [], min(left, 0.05))
                if ready and b"READY=1" in self._ready.recv(4096):
                    break
        finally:
            self._ready.close()
        self.cid = wait_until(
            lambda: self._alive() and self.status().get("cid"),
            max(deadline - time.monotonic(), 0.1),
            "the daemon to register with the gateway (a cid)",
        )
        return self

    def _alive(self) -> bool:
        self.child.check_alive("the daemon")
        return True

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """One local API request on a connection of its own; the daemon's result."""
        from ..wire.local import Answer, Request, encode_request, parse_daemon_line

        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(str(self.socket))
            s.sendall(encode_request(Request(1, method, params or {})))
            with s.makefile("rb") as f:
                while line := f.readline():
                    parsed = parse_daemon_line(line)
                    if isinstance(parsed, Answer):
                        return parsed.result
        raise RuntimeError(f"the daemon closed the socket without answering {method}")

    def status(self) -> dict[str, Any]:
        return self.call("status")

    def stop(self) -> None:
        self.child.stop()
        with contextlib.suppress(OSError):
            self._ready.close()


class InProcessListener:
    """An app listening with onPushMessage (the project's Python client, on the real
    socket); events are kept in order and can be awaited by type."""

    def __init__(self, socket_path: Path) -> None:
        from ..clients.push import SyncPushClient

        self.events: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self._client = SyncPushClient(socket_path)
        self._client.on_push_message(self._on_event)

    def _on_event(self, event: dict[str, Any]) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def wait_for_event(self, kind: str | None = None, timeout: float = 10.0) -> dict[str, Any]:
        """The first event of ``kind`` ("receive" or "click"; None: any) not yet taken."""

        def first() -> dict[str, Any] | None:
            for i, event in enumerate(self.events):
                if kind is None or event.get("type") == kind:
                    return self.events.pop(i)
            return None

        with self._changed:
            found: list[dict[str, Any]] = []

            def take() -> bool:
                event = None if found else first()
                if event is not None:
                    found.append(event)
                return bool(found)

            ok = self._changed.wait_for(take, timeout)
            if not ok or not found:
                seen = [e.get("type") for e in self.events]
                raise StackTimeout(f"no {kind or 'any'} event within {timeout:g}s (have {seen})")
            return found[0]

    def close(self) -> None:
        self._client.close()
