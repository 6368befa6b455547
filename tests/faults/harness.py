"""Shared pieces of the fault tests: environments, a reconnecting listener process, a
fast status call over the local API, numbered sends, and log reading."""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.faults.proxy import FaultProxy
from tests.gatewaykit import Kit, running_gateway
from tests.procs import DaemonProc, GatewayProc, Proc, wait_for

if TYPE_CHECKING:
    from tests.faults.conftest import Cleanup
    from tests.redisstack import RedisServer

#: No notification server: a push with no listener is held for the next listener, so
#: every message must end up at a listener. No logind watcher either.
NO_SERVER = {
    "DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/bus",
    "DISPLAY": "",
    "UNIPUSH_BRIDGE_SLEEP_BUS": "off",
}
PING_INTERVAL = 1.0
PING_TIMEOUT = 1.0
#: A daemon that finds a dead link within ping_interval + ping_timeout.
FAST_PINGS = {
    **NO_SERVER,
    "UNIPUSH_BRIDGE_PING_INTERVAL": str(PING_INTERVAL),
    "UNIPUSH_BRIDGE_PING_TIMEOUT": str(PING_TIMEOUT),
}
LISTENER_SCRIPT = Path(__file__).with_name("listener.py")


# the local API, without starting a CLI process ------------------------------------------


def api_call(sock: Path, method: str, timeout: float = 2.0) -> dict[str, Any]:
    """One request on the daemon's socket; raises OSError if no daemon answers."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(sock))
        s.sendall(json.dumps({"id": 1, "method": method}).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionResetError("the daemon closed the connection")
            buf += chunk
    result: dict[str, Any] = json.loads(buf)["result"]
    return result


def quick_status(daemon: DaemonProc) -> dict[str, Any] | None:
    """The daemon's status, or None while it cannot answer (starting, killed)."""
    try:
        return api_call(daemon.socket, "status")
    except (OSError, ValueError, KeyError):
        return None


def start_daemon_fast(daemon: DaemonProc) -> DaemonProc:
    """Start without the CLI round trips of DaemonProc.start: wait for the socket only."""
    Proc.start(daemon)
    wait_for(lambda: quick_status(daemon), 15, "the daemon's local API")
    return daemon


def wait_registered(daemon: DaemonProc, timeout: float = 15.0) -> str:
    return str(
        wait_for(
            lambda: (st := quick_status(daemon)) and st["cid"], timeout, "the daemon to register"
        )
    )


# a listener that outlives daemon restarts -------------------------------------------------


class ReconnectingListener:
    """``tests/faults/listener.py`` as a process: one PushClient across daemon runs."""

    def __init__(self, sock: Path, out: Path) -> None:
        self.sock = sock
        self.out = out
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ReconnectingListener:
        with self.out.open("ab") as out, self.out.with_suffix(".err").open("ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(LISTENER_SCRIPT), str(self.sock)],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **NO_SERVER},
            )
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def lines(self) -> list[dict[str, Any]]:
        if not self.out.exists():
            return []
        out = []
        for line in self.out.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                out.append(json.loads(line))
        return out

    def subscriptions(self) -> int:
        return sum("subscribed" in line for line in self.lines())

    def wait_subscribed(self, count: int = 1, timeout: float = 15.0) -> None:
        wait_for(lambda: self.subscriptions() >= count, timeout, f"subscription #{count}")

    def numbers(self) -> list[int]:
        """The ``n`` of every push handed to the callback, in order."""
        return [
            line["payload"]["n"]
            for line in self.lines()
            if line.get("type") == "receive" and isinstance(line.get("payload"), dict)
        ]

    def suppressed(self) -> int:
        return sum("suppressed" in line for line in self.lines())

    def wait_numbers(self, expected: set[int], timeout: float) -> list[int]:
        """Wait until every expected n arrived; returns all that arrived (dups included)."""
        try:
            wait_for(lambda: expected <= set(self.numbers()), timeout, "every message")
        except TimeoutError:
            got = self.numbers()
            missing = sorted(expected - set(got))
            raise AssertionError(
                f"{len(missing)} of {len(expected)} messages never reached the listener "
                f"(first missing: {missing[:20]}); {len(got)} events received"
            ) from None
        return self.numbers()


def settle(
    listener: ReconnectingListener,
    daemon: DaemonProc,
    expected: set[int],
    timeout: float,
    quiet: float = 2.0,
) -> list[int]:
    """Wait until every expected n arrived, or until nothing more can come: the daemon
    is connected with nothing pending or held, a listener is subscribed, and no event
    arrived for ``quiet`` seconds. Returns every n received (duplicates included)."""
    deadline = time.monotonic() + timeout
    last_count, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        numbers = listener.numbers()
        if expected <= set(numbers):
            return numbers
        if len(numbers) != last_count:
            last_count, last_change = len(numbers), time.monotonic()
        st = quick_status(daemon)
        idle = (
            st is not None
            and st["connection"]["state"] == "connected"
            and st["listeners"] >= 1
            and st.get("backlog", 0) == 0
            and st["held_for_listener"] == 0
        )
        if idle and time.monotonic() - last_change >= quiet:
            return numbers
        time.sleep(0.1)
    return listener.numbers()


def exactly_once(numbers: list[int], expected: set[int]) -> None:
    counts = Counter(numbers)
    dups = sorted(n for n, c in counts.items() if c > 1)
    missing = sorted(expected - set(counts))
    extra = sorted(set(counts) - expected)
    assert not dups and not missing and not extra, (
        f"duplicates: {len(dups)} {dups[:20]}; missing: {len(missing)} {missing[:20]}; "
        f"unexpected: {extra[:20]}"
    )


# sending ------------------------------------------------------------------------------------


@dataclass
class Sent:
    """A sendMessage that got an answer (the gateway committed it)."""

    n: int
    status: str
    attempts: int


def send_n(
    gateway: GatewayProc, cid: str, n: int, run: str, deadline: float, timeout: float = 3.0
) -> Sent:
    """Send message ``n`` until one attempt is answered 200; every attempt carries the
    same request_id, so a retry after an unanswered attempt is not stored twice."""
    body = {
        "push_clientid": cid,
        "title": "fault",
        "content": f"n={n}",
        "payload": {"n": n},
        "request_id": f"{run}-{n:08d}",
    }
    data = json.dumps(body).encode()
    attempts = 0
    while True:
        attempts += 1
        req = urllib.request.Request(
            f"{gateway.http_url}/api/__UNI__DESKTOP/sendMessage",
            data=data,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                answer = json.loads(resp.read())
                ((per_cid,),) = [answer["data"].values()]
                return Sent(n, per_cid[cid], attempts)
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"sendMessage {n}: HTTP {exc.code}: {exc.read()!r}") from None
        except (OSError, ValueError):
            # No answer (refused, reset, cut short): it may or may not be stored.
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# logs -----------------------------------------------------------------------------------------


def log_events(proc: Proc, event: str) -> list[dict[str, Any]]:
    return [e for e in proc.logs() if e.get("event") == event]


def log_time(entry: dict[str, Any]) -> float:
    """A log entry's wall-clock time (structlog's ISO UTC timestamp)."""
    return datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00")).timestamp()


def env_with(base: Mapping[str, str], **extra: str) -> dict[str, str]:
    return {**base, **extra}


def proxied_daemon(
    tmp_path: Path, cleanup: Cleanup, gateway: GatewayProc
) -> tuple[FaultProxy, DaemonProc, str, ReconnectingListener]:
    """A daemon with fast pings that reaches the gateway through a fault proxy, and a
    reconnecting listener subscribed to it: (proxy, daemon, cid, listener)."""
    proxy = FaultProxy(gateway.port).start()
    cleanup.add(proxy.close)
    return (proxy, *listening_daemon(tmp_path, cleanup, proxy.url, FAST_PINGS))


def listening_daemon(
    tmp_path: Path, cleanup: Cleanup, url: str, env: Mapping[str, str]
) -> tuple[DaemonProc, str, ReconnectingListener]:
    """A registered daemon on ``url`` and a reconnecting listener subscribed to it."""
    daemon = DaemonProc(tmp_path / "daemon", url, env=env)
    cleanup.proc(daemon)
    start_daemon_fast(daemon)
    cid = wait_registered(daemon)
    listener = ReconnectingListener(daemon.socket, tmp_path / "listener.out").start()
    cleanup.add(listener.stop)
    listener.wait_subscribed()
    return daemon, cid, listener


def seeded_rng() -> random.Random:
    """Random kill moments that a failed run can replay: FAULT_SEED=<printed seed>."""
    seed = int(os.environ.get("FAULT_SEED", time.time_ns() % 2**32))
    print(f"seed {seed} (set FAULT_SEED to replay the same kill moments)")
    return random.Random(seed)


# two gateway nodes on one Redis, one of them through a fault proxy -------------------------


@contextlib.asynccontextmanager
async def nodes_one_proxied(
    tmp_path: Path, redis: RedisServer, **config: Any
) -> AsyncIterator[tuple[FaultProxy, Kit, Kit]]:
    """Nodes A and B on one redis-server, in this process: A reaches Redis through a
    FaultProxy the test stalls or cuts, B directly. (proxy, a, b)."""
    with FaultProxy(0, target_unix=str(redis.socket)) as proxy:
        async with (
            running_gateway(tmp_path / "a", store=f"redis://127.0.0.1:{proxy.port}", **config) as a,
            running_gateway(tmp_path / "b", store=redis.url, **config) as b,
        ):
            yield proxy, a, b
