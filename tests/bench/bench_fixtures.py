"""The plugin's full fixture set set up and torn down (issue 16 item 5): private bus +
capture server + gateway + daemon (registered) + listener, beside the bare cost of
starting and stopping dbus-daemon, in the same run.

    .venv/bin/python tests/bench/bench_fixtures.py [--rounds 15]

Each round starts the set exactly as the ``unipush`` fixtures do (the same calls), then
stops it; the phases are timed on their own so the table shows where the time goes.
The gateway and the daemon are forked from the session's zygote (testing/zygote.py);
its one start per session is printed beside the table.
Target: a median under 300 ms for the full set.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from unipush_bridge.testing.bus import PrivateBus
from unipush_bridge.testing.servers import CaptureBackend
from unipush_bridge.testing.stack import (
    DaemonProcess,
    GatewayProcess,
    InProcessListener,
    child_env,
)
from unipush_bridge.testing.zygote import zygote

TARGET_MS = 300.0


def ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def bare_bus() -> float:
    start = time.perf_counter()
    PrivateBus().start().stop()
    return ms(start)


def full_set() -> dict[str, float]:
    phases: dict[str, float] = {}
    t0 = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="unipush-b-", dir="/tmp"))
    server = CaptureBackend()
    phases["bus + capture"] = ms(t0)
    t = time.perf_counter()
    env = child_env(server.address, server.env)
    gateway = GatewayProcess(root / "gw", env)
    daemon = DaemonProcess(root / "d", gateway.ws_url, env)
    with ThreadPoolExecutor(2) as pool:
        g = pool.submit(gateway.wait_ready)
        d = pool.submit(daemon.wait_ready)
        g.result()
        phases["gateway ready"] = ms(t)
        d.result()
    phases["daemon registered"] = ms(t)
    t = time.perf_counter()
    listener = InProcessListener(daemon.socket)
    phases["listener"] = ms(t)
    setup = ms(t0)
    t = time.perf_counter()
    listener.close()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda p: p.stop(), (daemon, gateway)))
    server.stop()
    shutil.rmtree(root, ignore_errors=True)
    phases["teardown"] = ms(t)
    phases["setup"] = setup
    phases["full set (setup + teardown)"] = ms(t0)
    return phases


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    t = time.perf_counter()
    zygote().spawn(["--version"], {}, os.devnull)  # started once per pytest session
    once = ms(t)
    full_set()  # warm the page cache and the bytecode
    rows: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        rows.setdefault("bare dbus-daemon start + stop", []).append(bare_bus())
        for name, value in full_set().items():
            rows.setdefault(name, []).append(value)
    print(f"{'what (ms, ' + str(args.rounds) + ' rounds)':<34} {'median':>8} {'min':>8} {'max':>8}")
    for name, values in rows.items():
        print(f"{name:<34} {statistics.median(values):8.1f} {min(values):8.1f} {max(values):8.1f}")
    print(f"{'zygote start (once per session)':<34} {once:8.1f}")
    median = statistics.median(rows["full set (setup + teardown)"])
    verdict = "meets" if median < TARGET_MS else "misses"
    print(f"target: full set median < {TARGET_MS:.0f} ms: {median:.0f} ms, {verdict} it")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
