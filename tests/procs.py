"""Real processes for tests and benchmarks: the gateway and the daemon, on loopback.

Each runs ``python -m unipush_bridge.launch`` (what the installed command runs, so
the local commands' fast path is what the tests exercise) as its own process, logs JSON lines to a
file, and is stopped with a real signal. Helpers poll with deadlines, never sleep blind.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from unipush_bridge.testing.stack import free_port, listening_port, log_size
from unipush_bridge.testing.stack import wait_until as wait_for

CLI = [sys.executable, "-m", "unipush_bridge.launch"]


def cli(
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        env=_env(env),
        timeout=timeout,
        input=input,
        check=False,
    )


def _env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("UNIPUSH_BRIDGE_GATEWAY", None)
    if extra:
        env.update(extra)
    return env


class Proc:
    """A CLI process with its stderr in a file; stopped by signal, reaped on exit."""

    #: Start in a process group of its own (a subclass that stops the whole group).
    new_session = False

    def __init__(self, args: list[str], log: Path, env: Mapping[str, str] | None = None) -> None:
        self.args = args
        self.log_path = log
        self._env = _env(env)
        self.proc: subprocess.Popen[str] | None = None
        self.stdout_path = log.with_suffix(".out")

    def start(self) -> Proc:
        with self.log_path.open("a") as err, self.stdout_path.open("a") as out:
            self.proc = subprocess.Popen(
                [*CLI, *self.args],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=self._env,
                text=True,
                start_new_session=self.new_session,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig: int) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.proc is None:
            return 0
        self.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def logs(self) -> list[dict[str, Any]]:
        entries = []
        for line in self.log_path.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                entries.append(json.loads(line))
        return entries

    def stdout(self) -> str:
        return self.stdout_path.read_text()


class GatewayProc(Proc):
    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        extra: list[str] | None = None,
    ) -> None:
        # 0: the gateway picks one, read from its JSON "gateway listening" line when
        # ready; another log level or format has no such line: a port picked here.
        quiet = {"--log-level", "--log-format"} & set(extra or [])
        self.port = port or (free_port() if quiet else 0)
        data_dir.mkdir(parents=True, exist_ok=True)
        super().__init__(
            [
                "gateway",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--data-dir",
                str(data_dir),
                "--log-format",
                "json",
                *(extra or []),
            ],
            data_dir / "gateway.log",
            env,
        )

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.bound_port()}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.bound_port()}"

    def bound_port(self) -> int:
        if not self.port:
            raise RuntimeError(
                "the gateway picks its port when it starts: start() it first, "
                "or pass port=free_port() for a daemon started before it"
            )
        return self.port

    def start(self) -> GatewayProc:
        self._log_from = log_size(self.log_path)
        super().start()
        wait_for(self._healthy, 15, "the gateway to answer /healthz")
        return self

    def _healthy(self) -> bool:
        if not self.alive():
            raise RuntimeError(f"gateway exited: {self.log_path.read_text()[-2000:]}")
        if not self.port:
            self.port = listening_port(self.log_path, self._log_from)
            if not self.port:
                return False
            # A restart of this object binds the same port again.
            self.args[self.args.index("--port") + 1] = str(self.port)
        try:
            with urllib.request.urlopen(f"{self.http_url}/healthz", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def send(
        self,
        body: dict[str, Any],
        appid: str = "__UNI__DESKTOP",
        method: str = "sendMessage",
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        return post_json(f"{self.http_url}/api/{appid}/{method}", body, headers)


def post_json(
    url: str, body: Any, headers: Mapping[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(
        url,
        data=data,
        method="POST",
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


class DaemonProc(Proc):
    def __init__(
        self,
        state_dir: Path,
        gateway: str | None,
        env: Mapping[str, str] | None = None,
        appid: str = "__UNI__DESKTOP",
        extra: list[str] | None = None,
    ) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.socket = state_dir / "api.sock"
        self.appid = appid
        args = [
            "run",
            "--state-dir",
            str(state_dir),
            "--socket",
            str(self.socket),
            "--appid",
            appid,
            "--log-format",
            "json",
            "--log-level",
            "debug",
        ]
        if gateway is None:
            args += ["--embedded-port", "0"]
        else:
            args += ["--gateway", gateway]
        super().__init__([*args, *(extra or [])], state_dir / "daemon.log", env)

    def start(self, wait_registered: bool = True) -> DaemonProc:
        super().start()
        wait_for(self._socket_up, 15, "the daemon's socket")
        if wait_registered:
            wait_for(lambda: self.status()["cid"], 15, "registration")
        return self

    def _socket_up(self) -> bool:
        if not self.alive():
            raise RuntimeError(f"daemon exited: {self.log_path.read_text()[-2000:]}")
        if not self.socket.exists():
            return False
        # The file appears at bind(), a moment before listen(): a connect in between is
        # refused (seen under -n 2 load), so the socket is up once one is accepted.
        with socket.socket(socket.AF_UNIX) as probe:
            probe.settimeout(2)
            try:
                probe.connect(str(self.socket))
            except OSError:
                return False
        return True

    def status(self) -> dict[str, Any]:
        res = cli("status", "--json", "--socket", str(self.socket))
        if res.returncode != 0:
            raise RuntimeError(res.stderr)
        data: dict[str, Any] = json.loads(res.stdout)
        return data

    def cid(self) -> str:
        res = cli("cid", "--socket", str(self.socket))
        assert res.returncode == 0, res.stderr
        return res.stdout.strip()


class Listener(Proc):
    """``unipush-bridge listen --json`` as a real process; events read from its stdout."""

    def __init__(self, socket_path: Path, log: Path, env: Mapping[str, str] | None = None) -> None:
        super().__init__(["listen", "--json", "--socket", str(socket_path)], log, env)

    def events(self) -> list[dict[str, Any]]:
        if not self.stdout_path.exists():
            return []
        return [json.loads(line) for line in self.stdout().splitlines() if line.strip()]

    def wait_events(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        return wait_for(
            lambda: (ev := self.events()) and len(ev) >= n and ev,
            timeout,
            f"{n} events on the listener",
        )


def wait_listeners(daemon: DaemonProc, n: int, timeout: float = 10.0) -> None:
    wait_for(lambda: daemon.status()["listeners"] == n, timeout, f"{n} listeners")
